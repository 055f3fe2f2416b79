"""The import graph of a package of this checkout, read from its source: every import
counts, at the top of a module, inside a function or under TYPE_CHECKING (a lazy import
is still a dependency). Used by the tests that keep a package's modules one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` (dotted, e.g. "edge.logic") it imports."""
    base = ROOT.joinpath(*package.split("."))
    modules = {}
    for path in base.rglob("*.py"):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[dotted.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            deps |= {m for m in found if m in modules}
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports a -> b where b leads back to a (empty: the graph has no cycle)."""
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    return sorted((a, b) for a in graph for b in graph[a] if reaches(b, a))

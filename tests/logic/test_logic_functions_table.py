"""The standard functions are one table read by the checker and the compiler; the logic
package's modules import each other one way (no cycle, compiler and functions apart)."""

import ast
import re
from pathlib import Path

import pytest

from edge.logic import LogicError, compile_expression
from edge.logic.arith import Emitter
from edge.logic.functions import FUNCTIONS, Function
from edge.logic.nodes import REAL
from edge.logic.quality import QUALITY_FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edge" / "logic"


def _imports() -> dict[str, set[str]]:
    """Module -> the edge.logic modules it imports anywhere: at the top, inside functions
    and under TYPE_CHECKING alike (a lazy import is still a dependency)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n.split(".")[2] for n in names
                     if n.startswith("edge.logic.") and n.split(".")[2] in modules}
        graph[path.stem] = deps - {path.stem}
    return graph


def test_compiler_and_functions_do_not_import_each_other():
    graph = _imports()
    assert not {"compiler", "checker"} & graph["functions"]
    assert not {"compiler", "checker", "functions"} & graph["arith"]


def test_the_logic_package_has_no_import_cycle():
    graph = _imports()

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

    cycles = sorted((a, b) for a in graph for b in graph[a] if reaches(b, a))
    assert not cycles, f"edge/logic modules import each other: {cycles}"


def test_the_documented_functions_are_the_table():
    doc = (ROOT / "docs" / "logic.md").read_text(encoding="utf-8")
    listed = doc[doc.index("Functions: `"):doc.index("(below).")]
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\b(?![#])", listed))
    assert names == set(FUNCTIONS)
    assert set(QUALITY_FUNCTIONS) <= set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_arity_the_checker_refuses_is_the_table_s(name):
    fn = FUNCTIONS[name]
    wrong = fn.min_args - 1 if fn.min_args > 1 else fn.max_args + 1   # the parser takes <= 32
    args = ", ".join(["x"] * wrong)
    with pytest.raises(LogicError, match=rf"{name} takes {fn.min_args}\b"):
        compile_expression(f"{name}({args})", {"x": "REAL"})


def test_a_new_function_is_one_table_entry(monkeypatch):
    def twice(c: Emitter, node) -> tuple:
        a = c.fn(c.compile(node.args[0]))
        return ("f", lambda m: 2.0 * a(m))

    def real_argument(t, node) -> str:
        t.expect(node.args[0], REAL, what=" as the argument of TWICE")
        return REAL

    monkeypatch.setitem(FUNCTIONS, "TWICE", Function("TWICE", 1, 1, real_argument, twice))
    f = compile_expression("TWICE(x) + 1.0", {"x": "REAL"})
    assert f({"x": 3.0}) == 7.0 and f.result_type == REAL
    with pytest.raises(LogicError, match="expected REAL as the argument of TWICE, got BOOL"):
        compile_expression("TWICE(b)", {"b": "BOOL"})
    with pytest.raises(LogicError, match="TWICE takes 1 arguments, got 2"):
        compile_expression("TWICE(x, x)", {"x": "REAL"})

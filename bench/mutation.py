"""`edge bench mutation`: how strong the tests of the safety-critical code are.

Small, realistic bugs (mutants) are planted one at a time in a copy of the source tree and
the tests that cover the module are run on it; a mutant the tests catch (a failure, an
error or a timeout) is killed, one they pass is a survivor, reported with file:line and
the change. The score is killed / mutants per module.

- Python modules: a small AST mutator (comparison and boolean operator swaps, + / -
  swaps, integer and float constants off by one, a dropped `not`, a statement of an `if`
  body removed), the mutated module written back with `ast.unparse`;
- C files (native/safety.c, native/observer.c): a scripted set on the text (`<` / `<=`
  and `>` / `>=` swaps, `+` / `-` swaps, `fabs` dropped, `fmin` / `fmax` swapped, one
  operand of an `&&` / `||` condition dropped, integer constants off by one), the native
  extension rebuilt in the copy for each mutant.

It needs a source checkout (it copies the tree, tests and native sources included) and
the `.venv` the checkout's `./dev` made; an installed edge cannot run it.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One module under mutation: its source files and the tests that must catch it."""

    sources: tuple[str, ...]          # paths (globs allowed) relative to the checkout
    tests: tuple[str, ...]            # test files or folders relative to the checkout
    native: bool = False              # C: rebuild the extension for every mutant


TARGETS: dict[str, Target] = {
    "safety": Target(("edge/motion/safety.py",),
                     ("tests/motion/test_safety.py", "tests/motion/test_safety_edges.py",
                      "tests/motion/test_observer.py",
                      "tests/test_board_checks.py")),
    "safety_monitor": Target(("edge/motion/safety_monitor.py",),
                             ("tests/motion/test_safety.py", "tests/motion/test_observer.py")),
    "executor": Target(("edge/rt/executor.py",),
                       ("tests/rt/test_executor.py", "tests/rt/test_native_realtime.py")),
    "journal": Target(("edge/rt/journal.py",),
                      ("tests/rt/test_journal.py", "tests/rt/test_journal_recovery.py",
                       "tests/rt/test_journal_durability.py",
                       "tests/rt/test_journal_diskfull.py", "tests/rt/test_journal_crash.py",
                       "tests/rt/test_journal_edges.py")),
    "commands": Target(("edge/rt/commands.py",),
                       ("tests/rt/test_commands.py", "tests/rt/test_mqtt.py")),
    "logic": Target(("edge/logic/*.py",), ("tests/logic",)),
    "channel": Target(("edge/acquisition/channel.py", "edge/acquisition/filters.py"),
                      ("tests/acquisition/test_channel.py", "tests/acquisition/test_sampler.py",
                       "tests/acquisition/test_kinds.py")),
    "native_safety": Target(("native/safety*.c",),
                            ("tests/motion/test_safety.py", "tests/motion/test_safety_edges.py",
                             "tests/motion/test_safety_config_check.py"), native=True),
    "native_observer": Target(("native/observer.c",), ("tests/motion/test_observer.py",),
                              native=True),
}

@dataclass
class Mutant:
    path: str                  # relative to the checkout
    line: int
    description: str           # "a < b -> a <= b"
    site: int                  # index among the file's sites
    kind: str = ""             # the class of mutation: the sample is stratified by it
    new_text: str = ""         # C: the replacement for [start, end)
    start: int = 0
    end: int = 0

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class ModuleResult:
    name: str
    sites: int = 0
    mutants: int = 0
    killed: int = 0
    timeout: int = 0
    survived: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""               # why the module could not be measured

    @property
    def score(self) -> float:
        return (self.killed + self.timeout) / self.mutants if self.mutants else 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Mutation testing of the safety-critical modules. Runs from a "
                          "source checkout only: it copies the tree (tests and native "
                          "sources) and rebuilds the native extension for C mutants.")
    parser.add_argument("--modules", default=",".join(TARGETS),
                        help=f"comma-separated, from: {', '.join(TARGETS)} (default all)")
    parser.add_argument("--max-mutants", type=int, default=40,
                        help="mutants sampled per module (default 40; 0 = every site)")
    parser.add_argument("--sample-seed", type=int, default=12,
                        help="seed of the sample of sites (default 12)")
    parser.add_argument("--timeout-factor", type=float, default=3.0,
                        help="a mutant's tests time out at this many times the clean run "
                             "plus 20 s (default 3)")
    parser.add_argument("--only", default="", metavar="FILE:LINE,...",
                        help="instead of a sample, every mutant on these lines (to check "
                             "that new tests kill the survivors of a run)")
    parser.add_argument("--checkout", default=None,
                        help="source checkout to copy (default: the one edge runs from)")


# -- Python mutants -------------------------------------------------------------------

_CMP_SWAPS: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                                ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
                                ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
                                ast.NotIn: ast.In}
_BIN_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add}
_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
            ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.And: "and", ast.Or: "or"}


def _quiet_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes where a mutant changes nothing a test should see: docstrings,
    annotations, logging calls and `if TYPE_CHECKING:` blocks."""
    quiet: set[int] = set()

    def mark(node: ast.AST) -> None:
        quiet.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            mark(body[0])
        if isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None:
            mark(node.annotation)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            mark(node.returns)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logging"):
            mark(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
                node.test.id == "TYPE_CHECKING":
            mark(node)
    return quiet


def _sites(tree: ast.AST) -> Iterator[tuple[ast.AST, str, Any]]:
    """(node, kind, detail) for every mutation site, in a fixed order."""
    quiet = _quiet_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in quiet:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMP_SWAPS:
                    yield node, "cmp", i
        elif isinstance(node, ast.BoolOp):
            yield node, "bool", None
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_SWAPS:
            yield node, "bin", None
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", None
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            yield node, "const+", None
            yield node, "const-", None
        elif isinstance(node, ast.If):
            if len(node.body) > 1 or not isinstance(node.body[0], ast.Pass):
                for i in range(len(node.body)):
                    yield node, "drop", i


def _apply(tree: ast.Module, index: int) -> tuple[ast.Module, int, str]:
    """A copy of tree with site `index` mutated; (tree, line, description)."""
    tree = copy.deepcopy(tree)
    node, kind, detail = list(_sites(tree))[index]
    line = getattr(node, "lineno", 0)
    if kind == "cmp":
        old = node.ops[detail]
        new = _CMP_SWAPS[type(old)]()
        node.ops[detail] = new
        desc = f"{_OP_TEXT[type(old)]} -> {_OP_TEXT[type(new)]}"
    elif kind == "bool":
        new_op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        desc = f"{_OP_TEXT[type(node.op)]} -> {_OP_TEXT[type(new_op)]}"
        node.op = new_op
    elif kind == "bin":
        new_op = _BIN_SWAPS[type(node.op)]()
        desc = f"{_OP_TEXT[type(node.op)]} -> {_OP_TEXT[type(new_op)]}"
        node.op = new_op
    elif kind == "not":
        desc = "dropped `not`"
        node.op = ast.UAdd()           # +bool(x) is x for what a condition sees
        node.operand = ast.Call(ast.Name("bool", ast.Load()), [node.operand], [])
    elif kind in ("const+", "const-"):
        step = 1 if kind == "const+" else -1
        old = node.value
        node.value = old + step
        desc = f"constant {old!r} -> {node.value!r}"
    else:
        stmt = node.body[detail]
        line = stmt.lineno
        desc = f"removed `{ast.unparse(stmt).splitlines()[0][:60]}` from an if body"
        node.body[detail] = ast.Pass()
    return ast.fix_missing_locations(tree), line, desc


def python_mutants(root: Path, rel: str) -> tuple[int, list[Mutant]]:
    tree = ast.parse((root / rel).read_text(), rel)
    out = []
    for i, (node, kind, detail) in enumerate(_sites(tree)):
        line = node.body[detail].lineno if kind == "drop" else getattr(node, "lineno", 0)
        out.append(Mutant(rel, line, kind, i, kind.rstrip("+-")))
    return len(out), out


def write_python_mutant(root: Path, original: str, m: Mutant) -> None:
    tree, line, desc = _apply(ast.parse(original, m.path), m.site)
    m.line, m.description = line, desc
    (root / m.path).write_text(ast.unparse(tree) + "\n")


# -- C mutants ------------------------------------------------------------------------

def _mask_c(text: str) -> str:
    """text with comments, string/char literals and preprocessor lines blanked (same
    length, newlines kept), so sites are found in code only."""
    out = list(text)
    pattern = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|"
                         r"^[ \t]*#[^\n]*(?:\\\n[^\n]*)*", re.S | re.M)
    for m in pattern.finditer(text):
        for i in range(m.start(), m.end()):
            if out[i] != "\n":
                out[i] = " "
    return "".join(out)


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """Top-level operands of text[start:end] split on && / ||: (start, end, operator
    that follows or '')."""
    parts, depth, begin, i = [], 0, start, start
    while i < end:
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and text[i:i + 2] in ("&&", "||"):
            parts.append((begin, i, text[i:i + 2]))
            begin = i + 2
            i += 1
        i += 1
    parts.append((begin, end, ""))
    return parts


def c_mutants(root: Path, rel: str) -> tuple[int, list[Mutant]]:
    text = (root / rel).read_text()
    code = _mask_c(text)
    found: list[tuple[int, int, str, str]] = []      # start, end, new text, description
    # array sizes and error return codes off by one say nothing about the tests
    quiet = [(m.start(), m.end()) for m in re.finditer(r"\[[^\]\n]*\]|return -\d+", code)]

    for m in re.finditer(r"(?<![<>=!-])(<=|>=|<|>)(?![<>=])", code):
        op = m.group(1)
        if op == ">" and code[m.start() - 1] == "-":
            continue
        new = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}[op]
        found.append((m.start(), m.end(), new, f"{op} -> {new}"))
    for m in re.finditer(r"(?<=[\w)\]] )([+-])(?= [\w(])", code):   # binary, spaced
        new = "-" if m.group(1) == "+" else "+"
        found.append((m.start(), m.end(), new, f"{m.group(1)} -> {new}"))
    for m in re.finditer(r"\bfabs\(", code):
        found.append((m.start(), m.end(), "(", "dropped fabs"))
    for m in re.finditer(r"\bf(min|max)\(", code):
        new = "fmax(" if m.group(1) == "min" else "fmin("
        found.append((m.start(), m.end(), new, f"f{m.group(1)} -> {new[:-1]}"))
    for m in re.finditer(r"(?<![\w.])(\d+)(?![\w.])", code):
        if any(a <= m.start() < b for a, b in quiet):
            continue
        v = int(m.group(1))
        found.append((m.start(), m.end(), str(v + 1), f"constant {v} -> {v + 1}"))
    for m in re.finditer(r"\b(if|while)\s*\(", code):
        open_at = m.end() - 1
        close = _matching_paren(code, open_at)
        parts = _split_top(code, open_at + 1, close)
        if len(parts) < 2:
            continue
        for k, (a, b, op) in enumerate(parts):
            if op:                                   # drop operand and its operator
                s, e = a, parts[k + 1][0]
            else:                                    # last: drop the operator before it
                s, e = parts[k - 1][1], b
            cond = " ".join(text[a:b].split())
            found.append((s, e, "", f"dropped condition `{cond[:60]}`"))
    found.sort()
    mutants = [Mutant(rel, text.count("\n", 0, s) + 1, d, i, _c_kind(d), new, s, e)
               for i, (s, e, new, d) in enumerate(found)]
    return len(mutants), mutants


def _c_kind(description: str) -> str:
    return "fabs" if "fabs" in description else description.split(" ")[0]


def write_c_mutant(root: Path, original: str, m: Mutant) -> None:
    (root / m.path).write_text(original[:m.start] + m.new_text + original[m.end:])


# -- running --------------------------------------------------------------------------

def _checkout(arg: str | None) -> Path:
    root = Path(arg) if arg else Path(__file__).resolve().parent.parent
    if not (root / "native" / "build_ffi.py").is_file() or not (root / "tests").is_dir():
        raise EdgeError(f"{root}: not a source checkout of edge (tests/ and native/ are "
                        f"needed); `edge bench mutation` runs from a checkout only")
    return root


def _copy_tree(src: Path, dst: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".hypothesis", "build",
                                    "*.egg-info", ".pytest_cache", ".ruff_cache")
    shutil.copytree(src, dst, ignore=ignore, symlinks=True)


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"     # a stale .pyc must never hide a mutant
    return env


def _build_native(root: Path, timeout_s: float) -> bool:
    proc = subprocess.run([sys.executable, "native/build_ffi.py"], cwd=root, env=_env(root),
                          capture_output=True, timeout=timeout_s)
    return proc.returncode == 0


def _run_tests(root: Path, tests: list[str], timeout_s: float,
               failures: list[str] | None = None) -> str:
    """'passed', 'failed' or 'timeout'; the names of failed tests go to `failures`."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--no-header", "-rf", *tests]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=root, env=_env(root), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)                # the test run and whatever it started
            proc.wait()
            return "timeout"
        if failures is not None:
            out.seek(0)
            failures += [line.split()[1] for line in out.read().decode(errors="replace")
                         .splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return "passed" if code == 0 else "failed"


def _sources(root: Path, target: Target) -> list[str]:
    out = []
    for pattern in target.sources:
        out += sorted(str(p.relative_to(root)) for p in root.glob(pattern))
    return out


def _sample(every: list[Mutant], n: int, rng: random.Random) -> list[Mutant]:
    """n mutants, the classes of mutation taken in turn (constants, the most numerous
    sites, would otherwise crowd out the operator swaps), each class shuffled."""
    if n <= 0 or len(every) <= n:
        return list(every)
    groups: dict[str, list[Mutant]] = {}
    for m in every:
        groups.setdefault(m.kind, []).append(m)
    queues = [rng.sample(g, len(g)) for _, g in sorted(groups.items())]
    chosen: list[Mutant] = []
    while len(chosen) < n:
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop())
    return chosen


def _only_lines(spec: str) -> set[str]:
    lines = {w.strip() for w in spec.split(",") if w.strip()}
    bad = [w for w in lines if not re.fullmatch(r"[^:]+:\d+", w)]
    if bad or not lines:
        raise EdgeError(f"--only: expected FILE:LINE[,FILE:LINE...], got {spec!r}")
    return lines


def mutate_module(name: str, target: Target, root: Path, args: argparse.Namespace
                  ) -> ModuleResult:
    result = ModuleResult(name)
    began = time.monotonic()
    tests = [t for t in target.tests if (root / t).exists()]
    if not tests:
        raise EdgeError(f"module '{name}': none of its tests exist ({', '.join(target.tests)})")
    every: list[Mutant] = []
    for rel in _sources(root, target):
        n, found = (c_mutants if target.native else python_mutants)(root, rel)
        result.sites += n
        every += found
    if args.only:
        lines = _only_lines(args.only)
        chosen = [m for m in every if m.where() in lines]
    else:
        chosen = _sample(every, args.max_mutants, random.Random(f"{args.sample_seed}:{name}"))
    chosen.sort(key=lambda m: (m.path, m.site))
    # The clean run, twice at most: real-time tests on a loaded machine may fail once.
    for _attempt in range(2):
        t0 = time.monotonic()
        failures: list[str] = []
        if _run_tests(root, tests, 600, failures) == "passed":
            break
        log.warning("%s: the unmutated tree fails %s", name, ", ".join(failures) or tests)
    else:
        result.error = (f"its tests fail on the unmutated tree: {', '.join(failures)}; "
                        f"not measured")
        return result
    timeout_s = (time.monotonic() - t0) * args.timeout_factor + 20
    originals = {m.path: (root / m.path).read_text() for m in chosen}
    for number, m in enumerate(chosen, start=1):
        try:
            if target.native:
                write_c_mutant(root, originals[m.path], m)
                outcome = _run_tests(root, tests, timeout_s) \
                    if _build_native(root, 300) else "failed"    # does not compile: caught
            else:
                write_python_mutant(root, originals[m.path], m)
                outcome = _run_tests(root, tests, timeout_s)
        finally:
            (root / m.path).write_text(originals[m.path])
        result.mutants += 1
        if outcome == "failed":
            result.killed += 1
        elif outcome == "timeout":
            result.timeout += 1
        else:
            result.survived.append({"where": m.where(), "mutation": m.description})
        log.info("%s %d/%d %s %s: %s", name, number, len(chosen), m.where(), m.description,
                 "survived" if outcome == "passed" else outcome)
    if target.native:
        _build_native(root, 300)               # the next module sees the original again
    result.seconds = time.monotonic() - began
    return result


def run(args: argparse.Namespace) -> BenchReport:
    names = [n.strip() for n in args.modules.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise EdgeError(f"--modules: unknown {', '.join(unknown) or '(none)'}; "
                        f"choose from {', '.join(TARGETS)}")
    if args.max_mutants < 0:
        raise EdgeError("--max-mutants must be 0 (every site) or more")
    if args.only:
        _only_lines(args.only)                 # a bad spec is an error before any work
    src = _checkout(args.checkout)
    results = []
    with tempfile.TemporaryDirectory(prefix="edge-mutation-") as tmp:
        root = Path(tmp) / "tree"
        _copy_tree(src, root)
        if not _build_native(root, 600):
            raise EdgeError("the native extension does not build in the copy of the tree")
        for name in names:
            results.append(mutate_module(name, TARGETS[name], root, args))
    return BenchReport(_table(results), {
        "machine": machine_facts(), "sample_seed": args.sample_seed,
        "max_mutants": args.max_mutants, "only": args.only,
        "modules": {r.name: {**dataclasses.asdict(r), "score": round(r.score, 4)}
                    for r in results}})


def _table(results: list[ModuleResult]) -> str:
    lines = ["mutation testing (killed = tests failed or timed out)",
             f"{'module':<16} {'sites':>6} {'mutants':>8} {'killed':>7} {'timeout':>8} "
             f"{'survived':>9} {'score':>7}"]
    for r in results:
        lines.append(f"{r.name:<16} {r.sites:>6} {r.mutants:>8} {r.killed:>7} {r.timeout:>8} "
                     f"{len(r.survived):>9} {r.score:>6.1%}")
    total = sum(r.mutants for r in results)
    caught = sum(r.killed + r.timeout for r in results)
    if total:
        lines.append(f"{'all':<16} {'':>6} {total:>8} {'':>7} {'':>8} "
                     f"{total - caught:>9} {caught / total:>6.1%}")
    for r in results:
        if r.error:
            lines.append(f"  {r.name}: {r.error}")
        for s in r.survived:
            lines.append(f"  survived  {s['where']}  {s['mutation']}")
    return "\n".join(lines)

"""The standard functions are one table read by the checker and the compiler; the logic
package's modules import each other one way (no cycle, compiler and functions apart)."""

import re
from pathlib import Path

import pytest

from edge.logic import LogicError, compile_expression
from edge.logic.arith import Emitter
from edge.logic.functions import FUNCTIONS, Function
from edge.logic.nodes import REAL
from edge.logic.quality import QUALITY_FUNCTIONS
from tests.import_graph import cycles, imports

ROOT = Path(__file__).resolve().parents[2]


def test_compiler_and_functions_do_not_import_each_other():
    graph = imports("edge.logic")
    assert not {"edge.logic.compiler", "edge.logic.checker"} & graph["edge.logic.functions"]
    assert not {"edge.logic.compiler", "edge.logic.checker", "edge.logic.functions"} & \
        graph["edge.logic.arith"]


def test_the_logic_package_has_no_import_cycle():
    assert not cycles(imports("edge.logic"))


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

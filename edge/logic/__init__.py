"""The logic engine: a small, safe Structured-Text-like language with PLC semantics.

`compile_expression(text, signals)` gives a fast callable over a mapping of signal
values; `compile_program(text, signals)` gives a program of statements, function blocks
and `WHEN ... [FOR ...] THEN ... END_WHEN` rules with a `scan(inputs, tick)` method.
Text is parsed, type-checked and compiled to Python closures; it is never executed as
Python. Every error is a LogicError with `.line` and `.column`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge.errors import LogicError
from edge.logic.checker import Checker, signal_scope
from edge.logic.compiler import DIV_ZERO, DOMAIN, OVERFLOW, ExprCompiler, Faults
from edge.logic.parser import parse_expression

__all__ = ["LogicError", "compile_expression", "compile_program", "Faults", "OVERFLOW",
           "DIV_ZERO", "DOMAIN"]


def compile_expression(text: str, signals: Mapping[str, str], *,
                       source: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """Compile one expression over `signals` (name -> "BOOL" | "INT" | "REAL" | "TIME").

    Returns a function f(values) -> bool | int | float (TIME: int nanoseconds), where
    `values` maps every signal name to its value of the declared type. The function has
    attributes `result_type` (the type name), `faults` (a Faults word, sticky until
    `faults.flags = 0`) and `text`. Raises LogicError (with .line, .column) when the text
    is not a valid, well-typed expression.
    """
    scope = signal_scope(dict(signals), source)
    tree = parse_expression(text, source)
    result_type = Checker(scope).check(tree)
    faults = Faults()
    compiler = ExprCompiler(scope, faults)
    fn = _fresh(compiler.fn(compiler.compile(tree)))
    fn.result_type = result_type
    fn.faults = faults
    fn.text = text
    return fn


def _fresh(fn: Callable) -> Callable:
    """A distinct function object (attributes must not land on a shared closure)."""
    import types

    if isinstance(fn, types.FunctionType):
        return types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
    return lambda m: fn(m)


def compile_program(text: str, signals: Mapping[str, str], *, period_ns: int = 1_000_000,
                    source: str | None = None, vectorize: bool = True, banks: bool = True,
                    on_bad: Mapping[str, Any] | None = None):
    """Compile a program (edge.logic.program.Program) over `signals` (name -> type name).

    period_ns: the length of one tick (timers and FOR delays count ticks x period).
    vectorize / banks: the numpy path and rule banks (on by default; off gives the plain
    rule-by-rule scan, same results, slower). on_bad: signal -> edge.logic.quality.OnBad
    (None: the default; the mapping itself None: no rule is forced), see docs/logic.md.
    Raises LogicError with .line and .column.
    """
    from edge.logic.program import Program

    return Program(text, signals, period_ns=period_ns, source=source, vectorize=vectorize,
                   banks=banks, on_bad=on_bad)

"""Type checker: resolves names and gives every expression one of BOOL, INT, REAL, TIME.

Names are case-insensitive, as in Structured Text. The only implicit conversion is INT to
REAL (a REAL operand makes the operation REAL); nothing is ever narrowed silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import LogicError
from edge.logic.functions import FUNCTIONS
from edge.logic.nodes import (
    BOOL,
    INT,
    REAL,
    TIME,
    VALUE_TYPES,
    Binary,
    Call,
    Cond,
    Expr,
    Lit,
    Logic,
    Name,
    Unary,
)

NUMERIC = (INT, REAL)

@dataclass(frozen=True)
class Symbol:
    name: str          # as declared (inputs are read from the mapping under this key)
    kind: str          # "input", "var", "output", "fbout"
    type: str
    writable: bool = False


class Scope:
    """Names visible to expressions, keyed case-insensitively."""

    def __init__(self, source: str | None = None) -> None:
        self.symbols: dict[str, Symbol] = {}
        self.source = source

    def add(self, sym: Symbol, line: int | None = None, column: int | None = None) -> None:
        key = sym.name.upper()
        if key in self.symbols:
            raise LogicError(f"'{sym.name}' is already defined (as {self.symbols[key].kind} "
                             f"'{self.symbols[key].name}'; names are case-insensitive)",
                             line, column, source=self.source)
        self.symbols[key] = sym

    def lookup(self, node: Name) -> Symbol:
        sym = self.symbols.get(node.name.upper())
        if sym is None:
            raise LogicError(f"unknown name '{node.name}' (expected a declared signal, "
                             "variable or function block output)", node.line, node.column,
                             source=self.source)
        return sym


def signal_scope(signals: dict[str, str], source: str | None = None) -> Scope:
    """A scope of input signals; signals maps name -> "BOOL" | "INT" | "REAL" | "TIME"."""
    from edge.logic.lexer import KEYWORDS

    if not isinstance(signals, dict):
        raise LogicError("signals must be a mapping of name -> type", source=source)
    scope = Scope(source)
    for name, type_name in signals.items():
        if not (isinstance(name, str) and name.isascii() and name.isidentifier()
                and "__" not in name and len(name) <= 64):
            raise LogicError(f"invalid signal name {name!r} (ASCII letters, digits and '_', "
                             "no '__', at most 64 characters)", source=source)
        if name.upper() in KEYWORDS:
            raise LogicError(f"signal name '{name}' is a keyword", source=source)
        t = type_name.upper() if isinstance(type_name, str) else type_name
        if t not in VALUE_TYPES:
            raise LogicError(f"signal '{name}' has unknown type {type_name!r} (expected one of "
                             f"{', '.join(VALUE_TYPES)})", source=source)
        scope.add(Symbol(name, "input", t))
    return scope


class Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def error(self, node: Expr, message: str) -> LogicError:
        return LogicError(message, node.line, node.column, source=self.scope.source)

    def expect(self, node: Expr, *types: str, what: str = "") -> str:
        t = self.check(node)
        if t not in types and not (t == INT and REAL in types):
            names = " or ".join(types)
            raise self.error(node, f"expected {names}{what}, got {t}")
        return t

    def check(self, node: Expr) -> str:
        t = self._check(node)
        node.type = t
        return t

    def _check(self, node: Expr) -> str:
        if isinstance(node, Lit):
            return node.lit_type
        if isinstance(node, Name):
            sym = self.scope.lookup(node)
            if sym.kind == "block":
                raise self.error(node, f"'{sym.name}' is a function block; read one of its "
                                       f"outputs (e.g. {sym.name}.Q)")
            return sym.type
        if isinstance(node, Unary):
            if node.op == "NOT":
                self.expect(node.operand, BOOL, what=" after NOT")
                return BOOL
            return self.expect(node.operand, INT, REAL, TIME, what=f" after unary '{node.op}'")
        if isinstance(node, Logic):
            for item in node.items:
                self.expect(item, BOOL, what=f" as an operand of {node.op}")
            return BOOL
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Cond):
            for cond, _ in node.branches:
                self.expect(cond, BOOL, what=" as the IF condition")
            types = [self.check(v) for _, v in node.branches] + [self.check(node.otherwise)]
            return self.common(node, types, "the branches of IF")
        raise self.error(node, "unsupported expression")   # pragma: no cover

    def common(self, node: Expr, types: list[str], what: str) -> str:
        if all(t == types[0] for t in types):
            return types[0]
        if all(t in NUMERIC for t in types):
            return REAL
        raise self.error(node, f"{what} must have the same type, got {', '.join(types)}")

    def _binary(self, node: Binary) -> str:
        op = node.op
        lt, rt = self.check(node.left), self.check(node.right)
        pair = f"{lt} {op} {rt}"
        if op == "XOR":
            if lt == rt == BOOL:
                return BOOL
            raise self.error(node, f"expected BOOL operands for XOR, got {pair}")
        if op in ("=", "<>"):
            if lt == rt or (lt in NUMERIC and rt in NUMERIC):
                return BOOL
            raise self.error(node, f"cannot compare {pair} (expected operands of one type)")
        if op in ("<", ">", "<=", ">="):
            if (lt in NUMERIC and rt in NUMERIC) or lt == rt == TIME:
                return BOOL
            raise self.error(node, f"cannot order {pair} (expected numbers or durations)")
        if op == "MOD":
            if lt == rt == INT:
                return INT
            raise self.error(node, f"MOD needs INT operands, got {pair}")
        if op == "**":
            if lt in NUMERIC and rt in NUMERIC:
                return REAL
            raise self.error(node, f"'**' needs numbers, got {pair}")
        if op in ("+", "-"):
            if lt in NUMERIC and rt in NUMERIC:
                return INT if lt == rt == INT else REAL
            if lt == rt == TIME:
                return TIME
            raise self.error(node, f"'{op}' needs two numbers or two durations, got {pair}")
        if op in ("*", "/"):
            if lt in NUMERIC and rt in NUMERIC:
                return INT if lt == rt == INT else REAL
            if lt == TIME and rt in NUMERIC:
                return TIME
            if op == "*" and rt == TIME and lt in NUMERIC:
                return TIME
            raise self.error(node, f"'{op}' needs numbers (or a duration and a number), "
                                   f"got {pair}")
        raise self.error(node, f"unknown operator '{op}'")   # pragma: no cover

    def _call(self, node: Call) -> str:
        f = node.func
        if f not in FUNCTIONS:
            raise self.error(node, f"unknown function '{f}' (expected one of "
                                   f"{', '.join(sorted(FUNCTIONS))})")
        fn = FUNCTIONS[f]
        lo, hi, n = fn.min_args, fn.max_args, len(node.args)
        if not lo <= n <= hi:
            count = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.error(node, f"{f} takes {count} arguments, got {n}")
        return fn.type_of(self, node)

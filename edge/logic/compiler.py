"""Compiler of checked expressions to trees of Python closures (no text is ever executed).

Speed comes from shape: a test of one input against a constant becomes a C-level
predicate (`functools.partial(operator.gt, c)`) applied to `m[name]`; an AND/OR of such
tests becomes one `all(map(...))` over an `operator.itemgetter`, with no Python frame per
term; constant sub-expressions are folded at compile time. Arithmetic never raises: a
division by zero, an overflow or a domain error gives a defined result (0, the saturated
value) and sets a bit in a `Faults` word that stays set until cleared.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any

from edge.errors import LogicError
from edge.logic.arith import MAXF, TIME_MAX, TIME_MIN, Fn, arith, fused_arith, widen
from edge.logic.checker import Scope, Symbol
from edge.logic.functions import FUNCTIONS
from edge.logic.lexer import INT_MAX, INT_MIN
from edge.logic.nodes import (
    BOOL,
    INT,
    REAL,
    Binary,
    Call,
    Cond,
    Expr,
    Lit,
    Logic,
    Name,
    Unary,
)

OVERFLOW, DIV_ZERO, DOMAIN = 1, 2, 4
FAULT_NAMES = {OVERFLOW: "overflow", DIV_ZERO: "division_by_zero", DOMAIN: "domain"}
_call = operator.call
_not = operator.not_

# x OP c  ==  c SWAP(OP) x  (exact for IEEE NaN too: both sides are False)
_SWAP = {"<": operator.gt, ">": operator.lt, "<=": operator.ge, ">=": operator.le,
         "=": operator.eq, "<>": operator.ne}
_DIRECT = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
           "=": operator.eq, "<>": operator.ne}


class Faults:
    """A sticky fault word shared by everything one compile produced."""

    __slots__ = ("flags",)

    def __init__(self) -> None:
        self.flags = 0

    def names(self) -> list[str]:
        return [name for bit, name in FAULT_NAMES.items() if self.flags & bit]


def _pred_group(is_and: bool, terms: list[tuple[str, Callable]]) -> Fn:
    """AND (OR) of 2..6 input predicates, unrolled: no Python frame per term."""
    (n0, p0), (n1, p1) = terms[:2]
    k = len(terms)
    if k == 2:
        return (lambda m: p0(m[n0]) and p1(m[n1])) if is_and else \
            (lambda m: p0(m[n0]) or p1(m[n1]))
    n2, p2 = terms[2]
    if k == 3:
        return (lambda m: p0(m[n0]) and p1(m[n1]) and p2(m[n2])) if is_and else \
            (lambda m: p0(m[n0]) or p1(m[n1]) or p2(m[n2]))
    n3, p3 = terms[3]
    if k == 4:
        return (lambda m: p0(m[n0]) and p1(m[n1]) and p2(m[n2]) and p3(m[n3])) if is_and \
            else (lambda m: p0(m[n0]) or p1(m[n1]) or p2(m[n2]) or p3(m[n3]))
    n4, p4 = terms[4]
    if k == 5:
        return (lambda m: p0(m[n0]) and p1(m[n1]) and p2(m[n2]) and p3(m[n3])
                and p4(m[n4])) if is_and else \
            (lambda m: p0(m[n0]) or p1(m[n1]) or p2(m[n2]) or p3(m[n3]) or p4(m[n4]))
    n5, p5 = terms[5]
    return (lambda m: p0(m[n0]) and p1(m[n1]) and p2(m[n2]) and p3(m[n3]) and p4(m[n4])
            and p5(m[n5])) if is_and else \
        (lambda m: p0(m[n0]) or p1(m[n1]) or p2(m[n2]) or p3(m[n3]) or p4(m[n4])
         or p5(m[n5]))


def _cmp_closures(op: str, a: Fn, b: Fn) -> Fn:
    if op == "<":
        return lambda m: a(m) < b(m)
    if op == ">":
        return lambda m: a(m) > b(m)
    if op == "<=":
        return lambda m: a(m) <= b(m)
    if op == ">=":
        return lambda m: a(m) >= b(m)
    if op == "=":
        return lambda m: a(m) == b(m)
    return lambda m: a(m) != b(m)


def _cmp_const(op: str, a: Fn, k: Any) -> Fn:
    if op == "<":
        return lambda m: a(m) < k
    if op == ">":
        return lambda m: a(m) > k
    if op == "<=":
        return lambda m: a(m) <= k
    if op == ">=":
        return lambda m: a(m) >= k
    if op == "=":
        return lambda m: a(m) == k
    return lambda m: a(m) != k


def _cmp_inputs(op: str, x: str, y: str) -> Fn:
    if op == "<":
        return lambda m: m[x] < m[y]
    if op == ">":
        return lambda m: m[x] > m[y]
    if op == "<=":
        return lambda m: m[x] <= m[y]
    if op == ">=":
        return lambda m: m[x] >= m[y]
    if op == "=":
        return lambda m: m[x] == m[y]
    return lambda m: m[x] != m[y]


class ExprCompiler:
    """Compiles checked expressions of one scope; `read` gives closures for non-inputs."""

    def __init__(self, scope: Scope, faults: Faults,
                 read: Callable[[Symbol], Fn] | None = None) -> None:
        self.scope = scope
        self.faults = faults
        self.read = read
        f = faults

        def int_fix(r: int) -> int:
            f.flags |= OVERFLOW
            return INT_MAX if r > 0 else INT_MIN

        def time_fix(r: int) -> int:
            f.flags |= OVERFLOW
            return TIME_MAX if r > 0 else TIME_MIN

        def real_fix(r: float) -> float:
            f.flags |= OVERFLOW
            if r != r:
                return 0.0
            return MAXF if r > 0 else -MAXF

        def div_zero(zero: Any) -> Any:
            f.flags |= DIV_ZERO
            return zero

        def domain(zero: Any) -> Any:
            f.flags |= DOMAIN
            return zero

        self.int_fix, self.time_fix, self.real_fix = int_fix, time_fix, real_fix
        self.div_zero, self.domain = div_zero, domain

    # -- forms ---------------------------------------------------------------------
    # ("c", value) constant, ("in", key) input read, ("p", key, pred) predicate of an
    # input (pred is a C callable), ("f", closure)
    def fn(self, form: tuple) -> Fn:
        kind = form[0]
        if kind == "f":
            return form[1]
        if kind == "c":
            v = form[1]
            return lambda m: v
        if kind == "in":
            k = form[1]
            return lambda m: m[k]
        k, p = form[1], form[2]
        if p is bool:
            return lambda m: True if m[k] else False
        if p is _not:
            return lambda m: not m[k]
        return lambda m: p(m[k])

    def error(self, node: Expr, message: str) -> LogicError:
        return LogicError(message, node.line, node.column, source=self.scope.source)

    def compile(self, node: Expr) -> tuple:
        form = self._compile(node)
        if form[0] == "f" and self._constant(node):
            before = self.faults.flags
            self.faults.flags = 0
            value = form[1]({})
            bad = self.faults.names()
            self.faults.flags = before
            if bad:
                raise self.error(node, f"constant expression gives a {', '.join(bad)} fault")
            return ("c", value)
        return form

    def _constant(self, node: Expr) -> bool:
        from edge.logic.parser import children

        stack = [node]
        while stack:
            e = stack.pop()
            if isinstance(e, Name):
                return False
            stack.extend(children(e))
        return True

    def _compile(self, node: Expr) -> tuple:
        if isinstance(node, Lit):
            v = node.value
            if node.type == REAL or (node.lit_type == INT and node.type == REAL):
                v = float(v)
            return ("c", v)
        if isinstance(node, Name):
            sym = self.scope.lookup(node)
            if sym.kind == "input":
                if sym.type == BOOL:
                    return ("p", sym.name, bool)
                return ("in", sym.name)
            if self.read is None:
                raise self.error(node, f"'{node.name}' cannot be read here")
            return ("f", self.read(sym))
        if isinstance(node, Unary):
            return self._unary(node)
        if isinstance(node, Logic):
            return self._logic(node)
        if isinstance(node, Binary):
            if node.op in _SWAP:
                return self._compare(node)
            if node.op == "XOR":
                a, b = self.fn(self.compile(node.left)), self.fn(self.compile(node.right))
                return ("f", lambda m: a(m) != b(m))
            return self._arith(node)
        if isinstance(node, Call):
            return FUNCTIONS[node.func].emit(self, node)
        if isinstance(node, Cond):
            return self._cond(node)
        raise self.error(node, "cannot compile this expression")   # pragma: no cover

    # -- boolean -------------------------------------------------------------------
    def _unary(self, node: Unary) -> tuple:
        form = self.compile(node.operand)
        if node.op == "+":
            return form
        if node.op == "NOT":
            if form[0] == "c":
                return ("c", not form[1])
            if form[0] == "p" and form[2] is bool:
                return ("p", form[1], _not)
            a = self.fn(form)
            return ("f", lambda m: not a(m))
        a = self.fn(form)
        if node.type == REAL:
            return ("f", lambda m: -a(m))
        lo, hi, fix = (INT_MIN, INT_MAX, self.int_fix) if node.type == INT else \
            (TIME_MIN, TIME_MAX, self.time_fix)

        def neg(m):
            r = -a(m)
            return r if lo <= r <= hi else fix(r)
        return ("f", neg)

    def _logic(self, node: Logic) -> tuple:
        is_and = node.op == "AND"
        items = node.flat_items()
        forms = []
        for item in items:
            form = self.compile(item)
            if form[0] == "c":
                if bool(form[1]) != is_and:        # FALSE in AND, TRUE in OR decides
                    return ("c", not is_and)
                continue                            # TRUE in AND, FALSE in OR is neutral
            forms.append(form)
        if not forms:
            return ("c", is_and)
        if len(forms) == 1:
            return forms[0] if forms[0][0] != "in" else ("f", self.fn(forms[0]))
        preds = [f for f in forms if f[0] == "p"]
        others = [self.fn(f) for f in forms if f[0] != "p"]
        if len(preds) == 1 and len(others) == 1:        # one input test and one closure
            (_, k, p), (b,) = preds[0], others
            return ("f", (lambda m: p(m[k]) and b(m)) if is_and else
                    (lambda m: p(m[k]) or b(m)))
        fns = []
        for i in range(0, len(preds), 6):
            chunk = preds[i:i + 6]
            if len(chunk) == 1:
                fns.append(self.fn(chunk[0]))
            else:
                fns.append(_pred_group(is_and, [(p[1], p[2]) for p in chunk]))
        fns += others
        if len(fns) == 1:
            return ("f", fns[0])
        if len(fns) == 2:
            a, b = fns
            return ("f", (lambda m: a(m) and b(m)) if is_and else (lambda m: a(m) or b(m)))
        if len(fns) == 3:
            a, b, c = fns
            return ("f", (lambda m: a(m) and b(m) and c(m)) if is_and
                    else (lambda m: a(m) or b(m) or c(m)))
        tfns = tuple(fns)
        if is_and:
            def and_n(m):
                for g in tfns:
                    if not g(m):
                        return False
                return True
            return ("f", and_n)

        def or_n(m):
            for g in tfns:
                if g(m):
                    return True
            return False
        return ("f", or_n)

    def _compare(self, node: Binary) -> tuple:
        op = node.op
        lf, rf = self.compile(node.left), self.compile(node.right)
        if lf[0] == "in" and rf[0] == "c":
            return ("p", lf[1], partial(_SWAP[op], rf[1]))
        if lf[0] == "c" and rf[0] == "in":
            return ("p", rf[1], partial(_DIRECT[op], lf[1]))
        if lf[0] == "in" and rf[0] == "in":
            return ("f", _cmp_inputs(op, lf[1], rf[1]))
        if rf[0] == "c":
            fused = fused_arith(self, node.left, partial(_SWAP[op], rf[1]))
            if fused is not None:
                return ("f", fused)
            return ("f", _cmp_const(op, self.fn(lf), rf[1]))
        return ("f", _cmp_closures(op, self.fn(lf), self.fn(rf)))

    def _cond(self, node: Cond) -> tuple:
        t = node.type
        otherwise = self.fn(widen(self, self.compile(node.otherwise), node.otherwise.type, t))
        if len(node.branches) == 1:
            (cn, vn), = node.branches
            cf, v = self.compile(cn), self.fn(widen(self, self.compile(vn), vn.type, t))
            if cf[0] == "p":                   # the condition tests an input: no frame
                k, p = cf[1], cf[2]
                return ("f", lambda m: v(m) if p(m[k]) else otherwise(m))
            c = self.fn(cf)
            return ("f", lambda m: v(m) if c(m) else otherwise(m))
        branches = [(self.fn(self.compile(c)), self.fn(widen(self, self.compile(v), v.type, t)))
                    for c, v in node.branches]
        tb = tuple(branches)

        def cond(m):
            for c, v in tb:
                if c(m):
                    return v(m)
            return otherwise(m)
        return ("f", cond)

    # -- arithmetic ----------------------------------------------------------------
    def _arith(self, node: Binary) -> tuple:
        return arith(self, node)


def as_type(value: Any, type_name: str) -> Any:
    """Coerce a Python or numpy value to a logic type (BOOL -> bool, INT -> int,
    REAL -> float, TIME -> int ns); raises LogicError when it cannot be represented.
    A BOOL is not a number here, and a number is a BOOL only when it is 0 or 1."""
    import numpy as np

    is_bool = isinstance(value, bool | np.bool_)
    try:
        if type_name == BOOL:
            if is_bool:
                return bool(value)
            if isinstance(value, int | np.integer) and value in (0, 1):
                return bool(value)
            raise TypeError
        if is_bool or isinstance(value, str | bytes):
            raise TypeError
        if type_name == REAL:
            return float(value)
        if isinstance(value, float | np.floating):
            if not float(value).is_integer():
                raise TypeError
            value = int(value)
        v = operator.index(value)
        lo, hi = (INT_MIN, INT_MAX) if type_name == INT else (TIME_MIN, TIME_MAX)
        if not lo <= v <= hi:
            raise LogicError(f"value {v} is out of range for {type_name}")
        return v
    except (TypeError, ValueError, OverflowError):
        raise LogicError(f"value {value!r} cannot be read as {type_name}") from None

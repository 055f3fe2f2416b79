"""Arithmetic operators as closures with defined fault results, and the value ranges.

INT is 32-bit and saturates on overflow; REAL is IEEE double and an infinite or NaN
result becomes the largest finite value (NaN: 0.0); TIME is 64-bit nanoseconds. A
division by zero gives 0, a domain error (0 ** -1) gives 0.0; each sets its bit in the
shared fault word. Code here and in functions.py is generated through `Emitter`, the part
of the expression compiler it needs, so neither module imports the compiler.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable
from typing import Any, Protocol

from edge.errors import LogicError
from edge.logic.lexer import INT_MAX, INT_MIN
from edge.logic.nodes import INT, REAL, TIME, Binary, Expr

MAXF = sys.float_info.max
TIME_MIN, TIME_MAX = -(2**63), 2**63 - 1

Fn = Callable[[Any], Any]


class Emitter(Protocol):
    """What operator and function code asks of the expression compiler (ExprCompiler).

    Forms: ("c", value) constant, ("in", key) input read, ("p", key, pred) predicate of an
    input, ("f", closure). The *_fix, div_zero and domain callables set their fault bit
    and return the defined result."""

    scope: Any

    def compile(self, node: Expr) -> tuple: ...
    def fn(self, form: tuple) -> Fn: ...
    def error(self, node: Expr, message: str) -> LogicError: ...
    def int_fix(self, r: int) -> int: ...
    def time_fix(self, r: int) -> int: ...
    def real_fix(self, r: float) -> float: ...
    def div_zero(self, zero: Any) -> Any: ...
    def domain(self, zero: Any) -> Any: ...


_PY = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def widen(c: Emitter, form: tuple, from_type: str | None, to_type: str | None) -> tuple:
    """An INT value used where a REAL is expected becomes a float."""
    if from_type == INT and to_type == REAL:
        if form[0] == "c":
            return ("c", float(form[1]))
        a = c.fn(form)
        return ("f", lambda m: float(a(m)))
    return form


# One closure per operator and operand shape (f: closure, in: input read in place,
# k: constant) so that the operator is bytecode, not a call. r is range-checked: out of
# range (or NaN) goes through `fix`, which saturates and sets the overflow bit.
def _add(shape: str, a, b, lo, hi, fix) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] + m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "in,k":
        def f(m):
            r = m[a] + b
            return r if lo <= r <= hi else fix(r)
    elif shape == "k,in":
        def f(m):
            r = a + m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "f,k":
        def f(m):
            r = a(m) + b
            return r if lo <= r <= hi else fix(r)
    else:
        def f(m):
            r = a(m) + b(m)
            return r if lo <= r <= hi else fix(r)
    return f


def _sub(shape: str, a, b, lo, hi, fix) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] - m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "in,k":
        def f(m):
            r = m[a] - b
            return r if lo <= r <= hi else fix(r)
    elif shape == "k,in":
        def f(m):
            r = a - m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "f,k":
        def f(m):
            r = a(m) - b
            return r if lo <= r <= hi else fix(r)
    else:
        def f(m):
            r = a(m) - b(m)
            return r if lo <= r <= hi else fix(r)
    return f


def _mul(shape: str, a, b, lo, hi, fix) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] * m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "in,k":
        def f(m):
            r = m[a] * b
            return r if lo <= r <= hi else fix(r)
    elif shape == "k,in":
        def f(m):
            r = a * m[b]
            return r if lo <= r <= hi else fix(r)
    elif shape == "f,k":
        def f(m):
            r = a(m) * b
            return r if lo <= r <= hi else fix(r)
    else:
        def f(m):
            r = a(m) * b(m)
            return r if lo <= r <= hi else fix(r)
    return f


def _add_post(shape: str, a, b, lo, hi, fix, post) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] + m[b]
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "in,k":
        def f(m):
            r = m[a] + b
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "f,k":
        def f(m):
            r = a(m) + b
            return post(r if lo <= r <= hi else fix(r))
    else:
        def f(m):
            r = a(m) + b(m)
            return post(r if lo <= r <= hi else fix(r))
    return f


def _sub_post(shape: str, a, b, lo, hi, fix, post) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] - m[b]
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "in,k":
        def f(m):
            r = m[a] - b
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "f,k":
        def f(m):
            r = a(m) - b
            return post(r if lo <= r <= hi else fix(r))
    else:
        def f(m):
            r = a(m) - b(m)
            return post(r if lo <= r <= hi else fix(r))
    return f


def _mul_post(shape: str, a, b, lo, hi, fix, post) -> Fn:
    if shape == "in,in":
        def f(m):
            r = m[a] * m[b]
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "in,k":
        def f(m):
            r = m[a] * b
            return post(r if lo <= r <= hi else fix(r))
    elif shape == "f,k":
        def f(m):
            r = a(m) * b
            return post(r if lo <= r <= hi else fix(r))
    else:
        def f(m):
            r = a(m) * b(m)
            return post(r if lo <= r <= hi else fix(r))
    return f


_TEMPLATES = {"+": _add, "-": _sub, "*": _mul}
_POST_TEMPLATES = {"+": _add_post, "-": _sub_post, "*": _mul_post}


def _add_sub_mul(op: str, lf: tuple, rf: tuple, c: Emitter, lo, hi, fix,
                 post=None) -> Fn:
    """Shape-specialised + - *: inputs are read in place, constants bound. `post` (a C
    callable: abs, or a comparison with a constant) is applied to the result in the same
    frame, saving the parent's Python call."""
    if post is not None:
        make = _POST_TEMPLATES[op]
        if lf[0] == "in" and rf[0] == "in":
            return make("in,in", lf[1], rf[1], lo, hi, fix, post)
        if lf[0] == "in" and rf[0] == "c":
            return make("in,k", lf[1], rf[1], lo, hi, fix, post)
        if rf[0] == "c":
            return make("f,k", c.fn(lf), rf[1], lo, hi, fix, post)
        return make("f,f", c.fn(lf), c.fn(rf), lo, hi, fix, post)
    make = _TEMPLATES[op]
    if lf[0] == "in" and rf[0] == "in":
        return make("in,in", lf[1], rf[1], lo, hi, fix)
    if lf[0] == "in" and rf[0] == "c":
        return make("in,k", lf[1], rf[1], lo, hi, fix)
    if lf[0] == "c" and rf[0] == "in":
        return make("k,in", lf[1], rf[1], lo, hi, fix)
    if rf[0] == "c":
        return make("f,k", c.fn(lf), rf[1], lo, hi, fix)
    return make("f,f", c.fn(lf), c.fn(rf), lo, hi, fix)


def fused_arith(c: Emitter, node, post) -> Fn | None:
    """`post(node)` in one frame when node is a + - * on INT or REAL, else None."""
    if not (isinstance(node, Binary) and node.op in _PY and node.type in (INT, REAL)):
        return None
    lf, rf = c.compile(node.left), c.compile(node.right)
    if lf[0] == "c" and rf[0] == "c":
        return None
    if node.type == INT:
        return _add_sub_mul(node.op, lf, rf, c, INT_MIN, INT_MAX, c.int_fix, post)
    return _add_sub_mul(node.op, lf, rf, c, -MAXF, MAXF, c.real_fix, post)


def arith(c: Emitter, node: Binary) -> tuple:
    op, t = node.op, node.type
    lt, rt = node.left.type, node.right.type
    lf, rf = c.compile(node.left), c.compile(node.right)
    if op == "**":
        return ("f", power(c, c.fn(lf), c.fn(rf)))
    if t == TIME and lt != TIME:          # number * TIME: put the duration first
        lf, rf, lt, rt = rf, lf, rt, lt
    a = c.fn(lf)
    if t == INT or (t == TIME and rt in (INT, TIME)):
        lo, hi, fix = (INT_MIN, INT_MAX, c.int_fix) if t == INT else \
            (TIME_MIN, TIME_MAX, c.time_fix)
        if op in _PY:
            return ("f", _add_sub_mul(op, lf, rf, c, lo, hi, fix))
        b = c.fn(rf)
        dz = c.div_zero
        if op == "/":
            def idiv(m):
                x, y = a(m), b(m)
                if y == 0:
                    return dz(0)
                q = abs(x) // abs(y)
                if (x < 0) != (y < 0):
                    q = -q
                return q if lo <= q <= hi else fix(q)
            return ("f", idiv)

        def imod(m):           # MOD: the sign follows the dividend, as in ST and C
            x, y = a(m), b(m)
            if y == 0:
                return dz(0)
            r = abs(x) % abs(y)
            return -r if x < 0 else r
        return ("f", imod)
    if t == TIME:                          # TIME * REAL, TIME / REAL
        b = c.fn(rf)
        tf, dz, domain = c.time_fix, c.div_zero, c.domain

        def time_real(m):
            x, y = a(m), b(m)
            if op == "/":
                if y == 0:
                    return dz(0)
                r = x / y
            else:
                r = x * y
            if r != r:
                return domain(0)
            if not -9.2e18 <= r <= 9.2e18:
                return tf(r)
            return int(round(r))
        return ("f", time_real)
    # REAL
    fix = c.real_fix
    if op in _PY:
        return ("f", _add_sub_mul(op, lf, rf, c, -MAXF, MAXF, fix))
    if rf[0] == "c" and rf[1] != 0:        # a constant divisor cannot be zero
        k = rf[1]
        if lf[0] == "in":
            x = lf[1]

            def rdiv_input_const(m):
                r = m[x] / k
                return r if -MAXF <= r <= MAXF else fix(r)
            return ("f", rdiv_input_const)

        def rdiv_const(m):
            r = a(m) / k
            return r if -MAXF <= r <= MAXF else fix(r)
        return ("f", rdiv_const)
    b = c.fn(rf)
    dz = c.div_zero

    def rdiv(m):
        x, y = a(m), b(m)
        if y == 0:
            return dz(0.0)
        r = x / y
        return r if -MAXF <= r <= MAXF else fix(r)
    return ("f", rdiv)


def power(c: Emitter, a: Fn, b: Fn) -> Fn:
    """a ** b (EXPT) as a REAL: a domain error gives 0.0, an overflow ±the largest float."""
    fix, domain = c.real_fix, c.domain

    def expt(m):
        x, y = a(m), b(m)
        try:
            r = math.pow(x, y)
        except ValueError:
            return domain(0.0)
        except OverflowError:
            odd = float(y).is_integer() and int(y) % 2 == 1
            return fix(-math.inf if x < 0 and odd else math.inf)
        return r if -MAXF <= r <= MAXF else fix(r)
    return expt

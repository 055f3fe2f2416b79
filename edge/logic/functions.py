"""Arithmetic operators and standard functions as closures with defined fault results.

INT is 32-bit and saturates on overflow; REAL is IEEE double and an infinite or NaN
result becomes the largest finite value (NaN: 0.0); TIME is 64-bit nanoseconds. A
division by zero gives 0, a domain error (SQRT of a negative, LN of 0) gives 0.0; each
sets its bit in the shared fault word.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING

from edge.logic.compiler import MAXF, TIME_MAX, TIME_MIN
from edge.logic.lexer import INT_MAX, INT_MIN
from edge.logic.nodes import BOOL, INT, REAL, TIME, Binary, Call

if TYPE_CHECKING:
    from edge.logic.compiler import ExprCompiler, Fn

_PY = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def widen(c: ExprCompiler, form: tuple, from_type: str | None, to_type: str | None) -> tuple:
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


def _add_sub_mul(op: str, lf: tuple, rf: tuple, c: ExprCompiler, lo, hi, fix,
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


def fused_arith(c: ExprCompiler, node, post) -> Fn | None:
    """`post(node)` in one frame when node is a + - * on INT or REAL, else None."""
    if not (isinstance(node, Binary) and node.op in _PY and node.type in (INT, REAL)):
        return None
    lf, rf = c.compile(node.left), c.compile(node.right)
    if lf[0] == "c" and rf[0] == "c":
        return None
    if node.type == INT:
        return _add_sub_mul(node.op, lf, rf, c, INT_MIN, INT_MAX, c.int_fix, post)
    return _add_sub_mul(node.op, lf, rf, c, -MAXF, MAXF, c.real_fix, post)


def arith(c: ExprCompiler, node: Binary) -> tuple:
    op, t = node.op, node.type
    lt, rt = node.left.type, node.right.type
    lf, rf = c.compile(node.left), c.compile(node.right)
    if op == "**":
        return ("f", _expt(c, c.fn(lf), c.fn(rf)))
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


def _expt(c: ExprCompiler, a: Fn, b: Fn) -> Fn:
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


_REAL_FN = {"SQRT": math.sqrt, "EXP": math.exp, "LN": math.log, "LOG": math.log10,
            "SIN": math.sin, "COS": math.cos, "TAN": math.tan, "ASIN": math.asin,
            "ACOS": math.acos, "ATAN": math.atan}


def _real_fn(c: ExprCompiler, fn, a: Fn) -> Fn:
    fix, domain = c.real_fix, c.domain

    def f(m):
        try:
            r = fn(a(m))
        except ValueError:
            return domain(0.0)
        except OverflowError:
            return fix(math.inf)
        return r if -MAXF <= r <= MAXF else fix(r)
    return f


def _to_int(c: ExprCompiler, a: Fn, rounding) -> Fn:
    fix, domain = c.int_fix, c.domain

    def f(m):
        x = a(m)
        if x != x:
            return domain(0)
        if not -2.2e9 < x < 2.2e9:
            return fix(1 if x > 0 else -1)
        r = rounding(x)
        return r if INT_MIN <= r <= INT_MAX else fix(r)
    return f


def _round_half_away(x: float) -> int:
    r = math.floor(abs(x) + 0.5)
    return -r if x < 0 else r


def _quality_call(c: ExprCompiler, node: Call) -> tuple:
    """GOOD(x): a predicate on the input `x.good` (so it joins the AND/OR fast paths);
    AGE(x): the input `x.age`; STALE(x, d): NOT GOOD(x) OR AGE(x) > d. A mapping
    without these keys is the caller's choice of API: Program.scan fills them in."""
    from edge.logic.quality import age_key, good_key

    name = c.scope.symbols[node.args[0].name.upper()].name
    good, age = good_key(name), age_key(name)
    if node.func == "GOOD":
        return ("p", good, bool)
    if node.func == "AGE":
        return ("in", age)
    limit = c.compile(node.args[1])
    if limit[0] == "c":
        d = limit[1]
        return ("f", lambda m: not m[good] or m[age] > d)
    lim = c.fn(limit)
    return ("f", lambda m: not m[good] or m[age] > lim(m))


def compile_call(c: ExprCompiler, node: Call) -> tuple:
    f, t = node.func, node.type
    if f in ("GOOD", "AGE", "STALE"):
        return _quality_call(c, node)
    forms = [widen(c, c.compile(arg), arg.type,
                   t if f in ("MIN", "MAX", "LIMIT") else arg.type) for arg in node.args]
    fns = [c.fn(form) for form in forms]
    if f in _REAL_FN:
        return ("f", _real_fn(c, _REAL_FN[f], fns[0]))
    if f in ("EXPT",):
        return ("f", _expt(c, fns[0], fns[1]))
    if f == "ATAN2":
        y, x = fns
        return ("f", lambda m: math.atan2(y(m), x(m)))
    if f == "ABS":
        a = fns[0]
        if t == REAL:
            fused = fused_arith(c, node.args[0], abs)
            if fused is not None:
                return ("f", fused)
            return ("f", lambda m: abs(a(m)))
        hi, fix = (INT_MAX, c.int_fix) if t == INT else (TIME_MAX, c.time_fix)

        def absf(m):
            r = abs(a(m))
            return r if r <= hi else fix(r)
        return ("f", absf)
    if f in ("MIN", "MAX"):
        pick = min if f == "MIN" else max
        if len(fns) == 2:
            a, b = fns
            return ("f", lambda m: pick(a(m), b(m)))
        tf = tuple(fns)
        return ("f", lambda m: pick([g(m) for g in tf]))
    if f == "LIMIT":
        lo, x, hi = fns
        return ("f", lambda m: min(max(x(m), lo(m)), hi(m)))
    if f == "SEL":
        g = fns[0]
        a, b = (c.fn(widen(c, forms[i], node.args[i].type, t)) for i in (1, 2))
        return ("f", lambda m: b(m) if g(m) else a(m))
    if f == "TRUNC":
        return ("f", _to_int(c, fns[0], int))
    if f in ("ROUND", "REAL_TO_INT"):
        return ("f", _to_int(c, fns[0], _round_half_away))
    if f == "TO_INT":
        a = fns[0]
        at = node.args[0].type
        if at == REAL:
            return ("f", _to_int(c, a, _round_half_away))
        if at == BOOL:
            return ("f", lambda m: 1 if a(m) else 0)
        return forms[0]
    if f == "BOOL_TO_INT":
        a = fns[0]
        return ("f", lambda m: 1 if a(m) else 0)
    if f in ("TO_REAL", "INT_TO_REAL"):
        a = fns[0]
        return ("f", lambda m: float(a(m)))
    if f == "TIME_TO_REAL":
        a = fns[0]
        return ("f", lambda m: a(m) / 1e9)
    if f == "REAL_TO_TIME":
        a = fns[0]
        tfix, domain = c.time_fix, c.domain

        def to_time(m):
            r = a(m) * 1e9
            if r != r:
                return domain(0)
            if not -9.2e18 <= r <= 9.2e18:
                return tfix(r)
            return int(round(r))
        return ("f", to_time)
    raise c.error(node, f"function '{f}' has no implementation")   # pragma: no cover


__all__ = ["arith", "compile_call", "widen", "TIME"]

"""The standard functions of the logic language: one table read by the checker and the
compiler, each entry with its arity, its type rule and its code.

Results follow the arithmetic of arith.py: INT saturates, a REAL overflow becomes the
largest finite value, a domain error (SQRT of a negative, LN of 0) gives 0.0 and sets its
bit in the shared fault word. A type rule gets the checker's `TypeRules`, code gets the
compiler's `Emitter`: this module imports neither the checker nor the compiler, both
import it, so a new function is one entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edge.errors import LogicError
from edge.logic.arith import MAXF, TIME_MAX, Emitter, Fn, fused_arith, power, widen
from edge.logic.lexer import INT_MAX, INT_MIN
from edge.logic.nodes import BOOL, INT, REAL, TIME, Call, Expr, Name
from edge.logic.quality import QUALITY_FUNCTIONS, age_key, good_key


class TypeRules(Protocol):
    """What a function's type rule asks of the checker (Checker)."""

    scope: Any

    def check(self, node: Expr) -> str: ...
    def expect(self, node: Expr, *types: str, what: str = "") -> str: ...
    def common(self, node: Expr, types: list[str], what: str) -> str: ...
    def error(self, node: Expr, message: str) -> LogicError: ...


@dataclass(frozen=True)
class Function:
    """One standard function. `type_of` checks a call's arguments and gives its result
    type (raising LogicError at the offending argument); `emit` gives the compiled form of
    a checked call."""

    name: str
    min_args: int
    max_args: int
    type_of: Callable[[TypeRules, Call], str]
    emit: Callable[[Emitter, Call], tuple]


# -- type rules ----------------------------------------------------------------------------
def _takes(*types: str, gives: str | None = None) -> Callable[[TypeRules, Call], str]:
    """One argument of `types`; the result is `gives` (None: the argument's type)."""
    def type_of(t: TypeRules, node: Call) -> str:
        got = t.expect(node.args[0], *types, what=f" as the argument of {node.func}")
        return got if gives is None else gives
    return type_of


def _reals(t: TypeRules, node: Call) -> str:
    for a in node.args:
        t.expect(a, REAL, what=f" as an argument of {node.func}")
    return REAL


def _same_kind(t: TypeRules, node: Call) -> str:
    types = [t.expect(a, INT, REAL, TIME, what=f" as an argument of {node.func}")
             for a in node.args]
    return t.common(node, types, f"the arguments of {node.func}")


def _sel_type(t: TypeRules, node: Call) -> str:
    t.expect(node.args[0], BOOL, what=" as the selector of SEL")
    return t.common(node, [t.check(node.args[1]), t.check(node.args[2])], "the values of SEL")


def _quality_type(t: TypeRules, node: Call) -> str:
    """GOOD(x) BOOL, AGE(x) TIME, STALE(x, d) BOOL: x must name an input signal."""
    f, arg = node.func, node.args[0]
    sym = t.scope.lookup(arg) if isinstance(arg, Name) else None
    if sym is None or sym.kind != "input":
        raise t.error(arg, f"{f} takes the name of an input signal (its quality is "
                           "what the scan reads), not an expression or a variable")
    t.check(arg)
    if len(node.args) == 2:
        t.expect(node.args[1], TIME, what=f" as the age limit of {f}")
    return QUALITY_FUNCTIONS[f][1]


# -- code ----------------------------------------------------------------------------------
def _fns(c: Emitter, node: Call, to_type: str | None = None) -> list[Fn]:
    """The compiled arguments (INT widened to `to_type` when it is REAL)."""
    return [c.fn(widen(c, c.compile(a), a.type, to_type or a.type)) for a in node.args]


def _real_fn(c: Emitter, fn, a: Fn) -> Fn:
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


def _to_int(c: Emitter, a: Fn, rounding) -> Fn:
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


def _quality_call(c: Emitter, node: Call) -> tuple:
    """GOOD(x): a predicate on the input `x.good` (so it joins the AND/OR fast paths);
    AGE(x): the input `x.age`; STALE(x, d): NOT GOOD(x) OR AGE(x) > d. A mapping
    without these keys is the caller's choice of API: Program.scan fills them in."""
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


def _real_math(fn: Callable[[float], float]) -> Callable[[Emitter, Call], tuple]:
    return lambda c, node: ("f", _real_fn(c, fn, _fns(c, node)[0]))


def _to_int_by(rounding: Callable[[float], int]) -> Callable[[Emitter, Call], tuple]:
    return lambda c, node: ("f", _to_int(c, _fns(c, node)[0], rounding))


def _to_real(c: Emitter, node: Call) -> tuple:
    a, = _fns(c, node)
    return ("f", lambda m: float(a(m)))


def _bool_to_int(c: Emitter, node: Call) -> tuple:
    a, = _fns(c, node)
    return ("f", lambda m: 1 if a(m) else 0)


def _time_to_real(c: Emitter, node: Call) -> tuple:
    a, = _fns(c, node)
    return ("f", lambda m: a(m) / 1e9)


def _atan2(c: Emitter, node: Call) -> tuple:
    y, x = _fns(c, node)
    return ("f", lambda m: math.atan2(y(m), x(m)))


def _expt_call(c: Emitter, node: Call) -> tuple:
    a, b = _fns(c, node)
    return ("f", power(c, a, b))


def _abs(c: Emitter, node: Call) -> tuple:
    t = node.type
    a, = _fns(c, node)
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


def _pick(pick: Callable) -> Callable[[Emitter, Call], tuple]:
    def emit(c: Emitter, node: Call) -> tuple:
        fns = _fns(c, node, node.type)
        if len(fns) == 2:
            a, b = fns
            return ("f", lambda m: pick(a(m), b(m)))
        tf = tuple(fns)
        return ("f", lambda m: pick([g(m) for g in tf]))
    return emit


def _limit(c: Emitter, node: Call) -> tuple:
    lo, x, hi = _fns(c, node, node.type)
    return ("f", lambda m: min(max(x(m), lo(m)), hi(m)))


def _sel(c: Emitter, node: Call) -> tuple:
    t = node.type
    forms = [c.compile(a) for a in node.args]
    g = c.fn(forms[0])
    a, b = (c.fn(widen(c, forms[i], node.args[i].type, t)) for i in (1, 2))
    return ("f", lambda m: b(m) if g(m) else a(m))


def _to_int_any(c: Emitter, node: Call) -> tuple:
    form = c.compile(node.args[0])
    a = c.fn(form)
    at = node.args[0].type
    if at == REAL:
        return ("f", _to_int(c, a, _round_half_away))
    if at == BOOL:
        return ("f", lambda m: 1 if a(m) else 0)
    return form


def _real_to_time(c: Emitter, node: Call) -> tuple:
    a, = _fns(c, node)
    tfix, domain = c.time_fix, c.domain

    def to_time(m):
        r = a(m) * 1e9
        if r != r:
            return domain(0)
        if not -9.2e18 <= r <= 9.2e18:
            return tfix(r)
        return int(round(r))
    return ("f", to_time)


# -- the table -----------------------------------------------------------------------------
_REAL_MATH = {"SQRT": math.sqrt, "EXP": math.exp, "LN": math.log, "LOG": math.log10,
              "SIN": math.sin, "COS": math.cos, "TAN": math.tan, "ASIN": math.asin,
              "ACOS": math.acos, "ATAN": math.atan}

FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("ABS", 1, 1, _takes(INT, REAL, TIME), _abs),
    *(Function(name, 1, 1, _takes(REAL, gives=REAL), _real_math(fn))
      for name, fn in _REAL_MATH.items()),
    Function("ATAN2", 2, 2, _reals, _atan2),
    Function("EXPT", 2, 2, _reals, _expt_call),
    Function("MIN", 2, 32, _same_kind, _pick(min)),
    Function("MAX", 2, 32, _same_kind, _pick(max)),
    Function("LIMIT", 3, 3, _same_kind, _limit),
    Function("SEL", 3, 3, _sel_type, _sel),
    Function("TRUNC", 1, 1, _takes(REAL, gives=INT), _to_int_by(int)),
    Function("ROUND", 1, 1, _takes(REAL, gives=INT), _to_int_by(_round_half_away)),
    Function("REAL_TO_INT", 1, 1, _takes(REAL, gives=INT), _to_int_by(_round_half_away)),
    Function("TO_INT", 1, 1, _takes(BOOL, INT, REAL, gives=INT), _to_int_any),
    Function("BOOL_TO_INT", 1, 1, _takes(BOOL, gives=INT), _bool_to_int),
    Function("TO_REAL", 1, 1, _takes(REAL, gives=REAL), _to_real),
    Function("INT_TO_REAL", 1, 1, _takes(REAL, gives=REAL), _to_real),
    Function("TIME_TO_REAL", 1, 1, _takes(TIME, gives=REAL), _time_to_real),
    Function("REAL_TO_TIME", 1, 1, _takes(REAL, gives=TIME), _real_to_time),
    # signal quality (quality.py says which functions read it and what they give)
    *(Function(name, n, n, _quality_type, _quality_call)
      for name, (n, _) in QUALITY_FUNCTIONS.items()),
)}

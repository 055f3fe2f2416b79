"""The semantics table: expressions with hand-computed results (and fault bits).

Expected values come from IEC 61131-3 Structured Text rules and a hand computation,
never from running our compiler; generated rows use an independent oracle written here
with fractions (exact arithmetic), not the engine's own operators.
"""

import math
import re
from fractions import Fraction

import pytest

from edge.logic import DIV_ZERO, DOMAIN, OVERFLOW, LogicError, compile_expression

SIG = {"b": "BOOL", "c": "BOOL", "i": "INT", "j": "INT", "x": "REAL", "y": "REAL",
       "t": "TIME", "u": "TIME", "big": "INT", "small": "INT", "z": "REAL", "k0": "INT",
       "nan": "REAL", "huge": "REAL"}
VALUES = {"b": True, "c": False, "i": 7, "j": -3, "x": 2.5, "y": -0.5, "t": 1_500_000_000,
          "u": 200_000_000, "big": 2147483647, "small": -2147483648, "z": 0.0, "k0": 0,
          "nan": math.nan, "huge": 1e308}
MAXF = 1.7976931348623157e308
MS = 1_000_000
S = 1_000_000_000

# (expression, expected value, fault bits)
TABLE = [
    # literals
    ("1", 1, 0), ("-1", -1, 0), ("+5", 5, 0), ("0", 0, 0), ("1_000", 1000, 0),
    ("16#FF", 255, 0), ("16#ff", 255, 0), ("2#1010", 10, 0), ("8#17", 15, 0),
    ("2147483647", 2147483647, 0), ("-2147483648", -2147483648, 0),
    ("1.5", 1.5, 0), ("-0.25", -0.25, 0), ("1e3", 1000.0, 0), ("2.5E-1", 0.25, 0),
    ("TRUE", True, 0), ("FALSE", False, 0), ("true", True, 0), ("False", False, 0),
    ("200ms", 200 * MS, 0), ("2s", 2 * S, 0), ("1.5s", 1500 * MS, 0), ("T#1m30s", 90 * S, 0),
    ("TIME#10ms", 10 * MS, 0), ("t#1h", 3600 * S, 0), ("10us", 10_000, 0), ("5ns", 5, 0),
    ("1d", 86400 * S, 0), ("T#1s_500ms", 1500 * MS, 0), ("0.5ms", 500_000, 0),
    # signals
    ("b", True, 0), ("c", False, 0), ("i", 7, 0), ("x", 2.5, 0), ("t", 1500 * MS, 0),
    ("I", 7, 0), ("X", 2.5, 0),
    # integer arithmetic
    ("i + j", 4, 0), ("i - j", 10, 0), ("i * j", -21, 0), ("i / 2", 3, 0), ("-i / 2", -3, 0),
    ("i / j", -2, 0), ("j / 2", -1, 0), ("i MOD 3", 1, 0), ("-i MOD 3", -1, 0),
    ("i MOD j", 1, 0), ("j MOD 2", -1, 0), ("i mod 7", 0, 0), ("1 + 2 * 3", 7, 0),
    ("(1 + 2) * 3", 9, 0), ("10 - 4 - 3", 3, 0), ("100 / 10 / 5", 2, 0), ("2 * 3 MOD 4", 2, 0),
    ("-2 * -3", 6, 0), ("- -4", 4, 0), ("-(i)", -7, 0), ("+i", 7, 0),
    ("i + 0", 7, 0), ("i * 1", 7, 0), ("i * 0", 0, 0), ("k0 - i", -7, 0),
    # integer overflow saturates with a fault
    ("big + 1", 2147483647, OVERFLOW), ("small - 1", -2147483648, OVERFLOW),
    ("big * 2", 2147483647, OVERFLOW), ("small * 2", -2147483648, OVERFLOW),
    ("big * -2", -2147483648, OVERFLOW), ("-small", 2147483647, OVERFLOW),
    ("small / -1", 2147483647, OVERFLOW), ("ABS(small)", 2147483647, OVERFLOW),
    ("big + 0", 2147483647, 0), ("big - 1", 2147483646, 0), ("small + 1", -2147483647, 0),
    # division by zero: 0 with a fault
    ("i / k0", 0, DIV_ZERO), ("i MOD k0", 0, DIV_ZERO), ("x / z", 0.0, DIV_ZERO),
    ("x / (i - 7)", 0.0, DIV_ZERO), ("(i / k0) + 1", 1, DIV_ZERO),
    # real arithmetic
    ("x + y", 2.0, 0), ("x - y", 3.0, 0), ("x * y", -1.25, 0), ("x / y", -5.0, 0),
    ("x / 2", 1.25, 0), ("x / 2.0", 1.25, 0), ("i / 2.0", 3.5, 0), ("i * 0.5", 3.5, 0),
    ("x + 1", 3.5, 0), ("1 + x", 3.5, 0), ("-x", -2.5, 0), ("x * x", 6.25, 0),
    ("2.0 ** 10", 1024.0, 0), ("2 ** 3", 8.0, 0), ("x ** 2", 6.25, 0), ("4.0 ** 0.5", 2.0, 0),
    ("-2.0 ** 2", -4.0, 0), ("2 ** 3 ** 2", 64.0, 0), ("EXPT(3.0, 2.0)", 9.0, 0),
    ("huge * 10.0", MAXF, OVERFLOW), ("-huge * 10.0", -MAXF, OVERFLOW),
    ("huge + huge", MAXF, OVERFLOW), ("huge / 0.5", MAXF, OVERFLOW),
    ("(x * 4.0) ** 400", MAXF, OVERFLOW), ("(y * 16.0) ** 0.5", 0.0, DOMAIN),
    ("z ** -1", 0.0, DOMAIN), ("nan + 1.0", 0.0, OVERFLOW), ("huge - huge", 0.0, 0),
    # comparisons
    ("i > 5", True, 0), ("i < 5", False, 0), ("i >= 7", True, 0), ("i <= 6", False, 0),
    ("i = 7", True, 0), ("i <> 7", False, 0), ("x > 2", True, 0), ("x = 2.5", True, 0),
    ("i > x", True, 0), ("x < i", True, 0), ("7 = 7.0", True, 0), ("i = 7.0", True, 0),
    ("5 < i", True, 0), ("5 > i", False, 0), ("10 <= i", False, 0), ("7 >= i", True, 0),
    ("b = TRUE", True, 0), ("b <> c", True, 0), ("b = c", False, 0), ("c = FALSE", True, 0),
    ("t > 1s", True, 0), ("t = 1500ms", True, 0), ("t < u", False, 0), ("u <= 200ms", True, 0),
    ("nan > 0.0", False, 0), ("nan < 0.0", False, 0), ("nan = nan", False, 0),
    ("nan <> 1.0", True, 0), ("NOT (nan > 0.0)", True, 0), ("0.0 < nan", False, 0),
    ("y < 0", True, 0), ("-0.5 = y", True, 0), ("i + 1 > 7", True, 0), ("x * 2 >= 5", True, 0),
    ("i > j = TRUE", True, 0), ("(i > j) = (x > y)", True, 0),
    # boolean logic
    ("b AND c", False, 0), ("b OR c", True, 0), ("b XOR c", True, 0), ("b XOR b", False, 0),
    ("NOT b", False, 0), ("NOT c", True, 0), ("NOT NOT b", True, 0), ("b & c", False, 0),
    ("b AND NOT c", True, 0), ("NOT b OR c", False, 0), ("c OR c OR b", True, 0),
    ("b AND b AND b AND c", False, 0), ("b OR c AND c", True, 0), ("(b OR c) AND c", False, 0),
    ("b XOR c OR c", True, 0), ("c AND c XOR b", True, 0), ("b XOR b AND c", True, 0),
    ("TRUE AND b", True, 0), ("FALSE OR c", False, 0), ("FALSE AND b", False, 0),
    ("TRUE OR c", True, 0), ("b AND TRUE", True, 0), ("c OR FALSE", False, 0),
    ("i > 5 AND x < 3.0", True, 0), ("i > 5 AND x > 3.0", False, 0),
    ("i < 5 OR x > 3.0", False, 0), ("i < 5 OR x < 3.0 OR c", True, 0),
    ("i > 0 AND j < 0 AND x > 0 AND y < 0 AND b AND NOT c", True, 0),
    ("i > 0 AND j < 0 AND x > 0 AND y < 0 AND b AND NOT c AND i = 7 AND t > u", True, 0),
    ("i > 0 AND j < 0 AND x > 0 AND y < 0 AND b AND NOT c AND i = 6", False, 0),
    ("i < 0 OR j > 0 OR x < 0 OR y > 0 OR c OR NOT b OR i <> 7", False, 0),
    ("i < 0 OR j > 0 OR x < 0 OR y > 0 OR c OR NOT b OR i = 7", True, 0),
    ("(i > 0 AND (j < 0 AND (x > 0))) AND b", True, 0),
    ("NOT (i > 0 AND j > 0)", True, 0), ("NOT (b) AND NOT (c)", False, 0),
    ("i > 5 AND i < 10", True, 0), ("i > 5 = b", True, 0),
    # conditional expression
    ("IF b THEN 1 ELSE 2 END_IF", 1, 0), ("IF c THEN 1 ELSE 2 END_IF", 2, 0),
    ("IF c THEN 1 ELSIF b THEN 3 ELSE 2 END_IF", 3, 0),
    ("IF c THEN 1 ELSIF c THEN 3 ELSE 2 END_IF", 2, 0),
    ("IF i > 5 THEN x ELSE y END_IF", 2.5, 0), ("IF b THEN 1 ELSE 2.5 END_IF", 1.0, 0),
    ("IF b THEN 10ms ELSE 20ms END_IF", 10 * MS, 0), ("1 + IF b THEN 1 ELSE 2 END_IF * 3", 4, 0),
    ("IF b THEN c ELSE b END_IF", False, 0), ("IF c THEN i / k0 ELSE 5 END_IF", 5, 0),
    # functions
    ("ABS(j)", 3, 0), ("ABS(y)", 0.5, 0), ("ABS(-5)", 5, 0), ("ABS(x)", 2.5, 0),
    ("ABS(-2s)", 2 * S, 0), ("SQRT(16.0)", 4.0, 0), ("SQRT(2)", math.sqrt(2), 0),
    ("SQRT(y * 2.0)", 0.0, DOMAIN), ("SQRT(y)", 0.0, DOMAIN), ("SQRT(0.0)", 0.0, 0),
    ("MIN(3, 1, 2)", 1, 0), ("MAX(3, 1, 2)", 3, 0), ("MIN(i, j)", -3, 0), ("MAX(x, i)", 7.0, 0),
    ("MIN(x, y)", -0.5, 0), ("MAX(1s, t, u)", 1500 * MS, 0), ("MIN(i, 10)", 7, 0),
    ("LIMIT(0, i, 5)", 5, 0), ("LIMIT(0, j, 5)", 0, 0), ("LIMIT(0, 3, 5)", 3, 0),
    ("LIMIT(0.0, x, 1.0)", 1.0, 0), ("LIMIT(-1.0, y, 1.0)", -0.5, 0),
    ("SEL(b, 1, 2)", 2, 0), ("SEL(c, 1, 2)", 1, 0), ("SEL(b, x, y)", -0.5, 0),
    ("SEL(c, 1, 2.5)", 1.0, 0), ("EXP(0.0)", 1.0, 0), ("LN(1.0)", 0.0, 0),
    ("LN(z)", 0.0, DOMAIN), ("LN(y)", 0.0, DOMAIN), ("LOG(1000.0)", 3.0, 0),
    ("LOG(z)", 0.0, DOMAIN), ("EXP(x * 400.0)", MAXF, OVERFLOW), ("SIN(0.0)", 0.0, 0),
    ("COS(0.0)", 1.0, 0), ("TAN(0.0)", 0.0, 0), ("ASIN(1.0)", math.pi / 2, 0),
    ("ASIN(x)", 0.0, DOMAIN), ("ACOS(1.0)", 0.0, 0), ("ACOS(-x)", 0.0, DOMAIN),
    ("ATAN(1.0)", math.pi / 4, 0), ("ATAN2(1.0, 1.0)", math.pi / 4, 0),
    ("ATAN2(0.0, -1.0)", math.pi, 0), ("TRUNC(2.7)", 2, 0), ("TRUNC(-2.7)", -2, 0),
    ("ROUND(2.5)", 3, 0), ("ROUND(-2.5)", -3, 0), ("ROUND(2.4)", 2, 0), ("ROUND(x)", 3, 0),
    ("REAL_TO_INT(1.6)", 2, 0), ("TO_INT(y)", -1, 0), ("TO_INT(b)", 1, 0), ("TO_INT(c)", 0, 0),
    ("TO_INT(i)", 7, 0), ("BOOL_TO_INT(b)", 1, 0), ("TO_REAL(i)", 7.0, 0),
    ("INT_TO_REAL(j)", -3.0, 0), ("TIME_TO_REAL(t)", 1.5, 0), ("REAL_TO_TIME(0.25)", 250 * MS, 0),
    ("TRUNC(huge)", 2147483647, OVERFLOW), ("ROUND(-huge)", -2147483648, OVERFLOW),
    ("TO_INT(nan)", 0, DOMAIN), ("REAL_TO_TIME(huge)", 2**63 - 1, OVERFLOW),
    ("abs(j)", 3, 0), ("Min(1, 2)", 1, 0),
    # durations
    ("t + u", 1700 * MS, 0), ("t - u", 1300 * MS, 0), ("u - t", -1300 * MS, 0),
    ("t * 2", 3 * S, 0), ("2 * t", 3 * S, 0), ("t / 3", 500 * MS, 0), ("t * 0.5", 750 * MS, 0),
    ("t / 0.5", 3 * S, 0), ("t / k0", 0, DIV_ZERO), ("t / z", 0, DIV_ZERO), ("-u", -200 * MS, 0),
    ("1s + 500ms", 1500 * MS, 0), ("T#1s * i", 7 * S, 0), ("t > 1s + 400ms", True, 0),
    ("t * huge", 2**63 - 1, OVERFLOW), ("t * -huge", -(2**63), OVERFLOW),
    # constant folding keeps semantics
    ("2 + 3 = 5", True, 0), ("(2 + 3) * (4 - 1)", 15, 0), ("ABS(-3) + MAX(1, 2)", 5, 0),
    ("SQRT(9.0) * 2.0", 6.0, 0), ("IF TRUE THEN 1 ELSE 2 END_IF", 1, 0),
    # precedence, one row per pair of levels
    ("2 + 3 * 4", 14, 0), ("2 * 3 + 4", 10, 0), ("20 - 6 / 2", 17, 0), ("20 / 4 - 2", 3, 0),
    ("2 * 3 ** 2", 18.0, 0), ("-3 ** 2", -9.0, 0), ("(-3) ** 2", 9.0, 0), ("2 ** -1", 0.5, 0),
    ("1 + 2 < 4", True, 0), ("1 < 2 = TRUE", True, 0), ("2 > 1 AND 3 > 2", True, 0),
    ("NOT c = b", True, 0), ("c AND c OR b", True, 0), ("b OR c XOR b", True, 0),
    ("b XOR b OR b", True, 0), ("c AND b XOR b", True, 0), ("NOT c AND b", True, 0),
    ("NOT (c OR b)", False, 0), ("i MOD 4 * 2", 6, 0), ("i * 2 MOD 4", 2, 0),
    ("i - j - 1", 9, 0), ("i - (j - 1)", 11, 0), ("-i + 10", 3, 0), ("- i * 2", -14, 0),
    ("x * 2.0 / 4.0", 1.25, 0), ("x / 4.0 * 2.0", 1.25, 0), ("1.0 / 3.0 * 3.0", 1.0, 0),
    ("i = 7 AND j = -3 OR c", True, 0), ("i = 7 AND (j = 3 OR c)", False, 0),
    ("IF i > 0 THEN IF j > 0 THEN 1 ELSE 2 END_IF ELSE 3 END_IF", 2, 0),
    ("MAX(MIN(i, 5), j)", 5, 0), ("LIMIT(MIN(0, j), i * 2, MAX(10, 12))", 12, 0),
    ("ABS(ABS(j) - 10)", 7, 0), ("SEL(i > 5 AND b, 0.0, SQRT(x * 10.0))", 5.0, 0),
    # comments and layout
    ("i (* comment *) + 1", 8, 0), ("i // trailing comment\n + 1", 8, 0),
    ("\n\ti\n+\n1\n", 8, 0), ("(((i)))", 7, 0),
]


def _close(got, want):
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want or (isinstance(got, bool) and got == want)
    if isinstance(want, float):
        return isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-12,
                                                               abs_tol=1e-12)
    return got == want and isinstance(got, int) and not isinstance(got, bool)


@pytest.mark.parametrize("text,want,faults", TABLE, ids=[t[0] for t in TABLE])
def test_semantics_table(text, want, faults):
    f = compile_expression(text, SIG)
    got = f(VALUES)
    assert _close(got, want), f"{text!r}: got {got!r}, want {want!r}"
    assert f.faults.flags == faults, f"{text!r}: faults {f.faults.names()}"


def test_table_covers_every_operator_and_has_no_repeated_row():
    """Each operator and keyword operator of the language is exercised by some row, and
    no row is there twice (a repeat would stand in for a missing case)."""
    texts = [t[0] for t in TABLE]
    assert len(set(texts)) == len(texts)
    words = {w.upper() for t in texts for w in re.findall(r"[A-Za-z_]+", t)}
    for op in ("+", "-", "*", "/", "**", "<", ">", "<=", ">=", "=", "<>", "(", ")"):
        assert any(op in t for t in texts), f"no row uses {op!r}"
    for kw in ("AND", "OR", "XOR", "NOT", "MOD", "TRUE", "FALSE"):
        assert kw in words, f"no row uses {kw}"


def test_result_types_are_reported():
    assert compile_expression("i > 1", SIG).result_type == "BOOL"
    assert compile_expression("i + 1", SIG).result_type == "INT"
    assert compile_expression("i + 1.0", SIG).result_type == "REAL"
    assert compile_expression("t * 2", SIG).result_type == "TIME"


def test_faults_are_sticky_until_cleared():
    f = compile_expression("i / k", {"i": "INT", "k": "INT"})
    assert f({"i": 1, "k": 0}) == 0 and f.faults.flags == DIV_ZERO
    assert f({"i": 4, "k": 2}) == 2 and f.faults.flags == DIV_ZERO
    f.faults.flags = 0
    assert f({"i": 4, "k": 2}) == 2 and f.faults.flags == 0


# -- generated rows with an exact oracle ---------------------------------------------
def _trunc_div(a: int, b: int) -> int:
    q = Fraction(a, b)
    return math.floor(q) if q >= 0 else math.ceil(q)


INT_PAIRS = [(a, b) for a in (-17, -7, -1, 0, 1, 5, 7, 17, 2147483647, -2147483648)
             for b in (-7, -3, -1, 1, 2, 3, 7)]


@pytest.mark.parametrize("a,b", INT_PAIRS)
def test_integer_division_and_mod_truncate_toward_zero(a, b):
    sig = {"a": "INT", "b": "INT"}
    q = _trunc_div(a, b)
    want_q = max(-(2**31), min(2**31 - 1, q))
    div = compile_expression("a / b", sig)
    assert div({"a": a, "b": b}) == want_q
    assert div.faults.flags == (OVERFLOW if q != want_q else 0)
    mod = compile_expression("a MOD b", sig)
    assert mod({"a": a, "b": b}) == a - b * q


CMP = [("<", lambda p, q: p < q), (">", lambda p, q: p > q), ("<=", lambda p, q: p <= q),
       (">=", lambda p, q: p >= q), ("=", lambda p, q: p == q), ("<>", lambda p, q: p != q)]
CMP_VALUES = [(-1.5, 2), (2, 2), (3, -4), (0.0, -0.0), (1e-9, 0), (7, 7.0)]


@pytest.mark.parametrize("op,oracle", CMP, ids=[c[0] for c in CMP])
@pytest.mark.parametrize("p,q", CMP_VALUES)
def test_comparisons_in_every_shape(op, oracle, p, q):
    want = oracle(Fraction(p), Fraction(q))
    sig = {"a": "REAL", "b": "REAL"}
    vals = {"a": p, "b": q}
    assert compile_expression(f"a {op} b", sig)(vals) is want
    assert compile_expression(f"a {op} {float(q)!r}", sig)(vals) is want
    assert compile_expression(f"{float(p)!r} {op} b", sig)(vals) is want
    assert compile_expression(f"(a + 0.0) {op} (b * 1.0)", sig)(vals) is want
    assert compile_expression(f"(a * 1.0) {op} {float(q)!r}", sig)(vals) is want


@pytest.mark.parametrize("text", ["1 / 0", "10.0 ** 400", "SQRT(-1.0)", "2147483647 + 1",
                                  "LN(0.0)", "1.0 / 0.0", "5 MOD 0", "TRUNC(1e20)"])
def test_constant_faults_are_compile_errors(text):
    with pytest.raises(LogicError) as exc:
        compile_expression(text, SIG)
    assert exc.value.line == 1 and exc.value.column >= 1
    assert "constant expression" in exc.value.message

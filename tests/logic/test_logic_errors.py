"""Every error names the line and column and says what was expected; hostile text is
refused with LogicError before anything runs."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.logic import LogicError, compile_expression, compile_program

SIG = {"b": "BOOL", "i": "INT", "x": "REAL", "t": "TIME"}


def err(text, signals=SIG, program=False):
    with pytest.raises(LogicError) as exc:
        (compile_program if program else compile_expression)(text, signals)
    return exc.value


@pytest.mark.parametrize("text,line,column,fragment", [
    ("1 +", 1, 4, "expected a value"),
    ("(1 + 2", 1, 7, "')' to close the '(' at line 1, column 1"),
    ("1 2", 1, 3, "expected an operator or the end of the expression"),
    ("foo > 1", 1, 1, "unknown name 'foo'"),
    ("b + 1", 1, 3, "'+' needs two numbers or two durations, got BOOL + INT"),
    ("i AND b", 1, 1, "expected BOOL as an operand of AND, got INT"),
    ("b AND x", 1, 7, "expected BOOL as an operand of AND, got REAL"),
    ("x MOD 2", 1, 3, "MOD needs INT operands"),
    ("ABS(1, 2)", 1, 1, "ABS takes 1 arguments, got 2"),
    ("FOO(1)", 1, 1, "unknown function 'FOO'"),
    ("SQRT(b)", 1, 6, "expected REAL as the argument of SQRT, got BOOL"),
    ("t < 5", 1, 3, "cannot order TIME < INT"),
    ("b = 1", 1, 3, "cannot compare BOOL = INT"),
    ("NOT i", 1, 5, "expected BOOL after NOT, got INT"),
    ("IF b THEN 1 END_IF", 1, 13, "expected ELSIF or ELSE"),
    ("IF i THEN 1 ELSE 2 END_IF", 1, 4, "expected BOOL as the IF condition, got INT"),
    ("IF b THEN 1 ELSE TRUE END_IF", 1, 1, "the branches of IF must have the same type"),
    ("i +\n\n   * 2", 3, 4, "expected a value"),
    ("(* never closed", 1, 1, "comment opened with '(*' is never closed"),
    ("2x", 1, 2, "expected a time unit"),
    ("x + 'a'", 1, 5, "strings are only allowed after EVENT"),
    ("2147483648", 1, 1, "out of range"),
    ("MIN(1)", 1, 1, "MIN takes 2 to 32 arguments, got 1"),
    ("1_", 1, 1, "misplaced '_'"),
    ("16#", 1, 4, "expected base-16 digits"),
    ("T#", 1, 1, "expected a duration"),
    ("i.Q", 1, 1, "unknown name 'i.Q'"),
    ("x ? 1 : 2", 1, 3, "unexpected character '?'"),
])
def test_expression_errors_name_line_column_and_expectation(text, line, column, fragment):
    e = err(text)
    assert (e.line, e.column) == (line, column), e.one_line()
    assert fragment in e.message
    assert e.one_line().startswith(f"logic:{line}:{column}: ")


PROGRAM_ERRORS = [
    ("b := TRUE;", 1, 1, "'b' is an input signal and cannot be assigned"),
    ("VAR n : INT; END_VAR\nn := x;", 2, 6, "cannot assign REAL to 'n' of type INT"),
    ("VAR n : INT; END_VAR\n  m := 1;", 2, 3, "unknown variable 'm'"),
    ("VAR n : INT; n : REAL; END_VAR", 1, 14, "'n' is already defined"),
    ("VAR n : WIDGET; END_VAR", 1, 5, "unknown type 'WIDGET'"),
    ("VAR t1 : TON; END_VAR\nt1(IN := b, PX := 1s);", 2, 13, "TON has no input 'PX'"),
    ("VAR t1 : TON; END_VAR\nt1(IN := i);", 2, 10, "cannot assign INT to 't1.IN'"),
    ("VAR t1 : TON; END_VAR\nt1.Q := TRUE;", 2, 3, "outputs of a function block are read-only"),
    ("VAR t1 : TON; END_VAR\nWHEN t1 THEN EVENT \"e\"; END_WHEN", 2, 6, "is a function block"),
    ("WHEN b THEN\nEND_WHEN", 1, 1, "a rule needs at least one action"),
    ("WHEN b THEN STOP 3; END_WHEN", 1, 18, "a stop category 0, 1 or 2"),
    ("WHEN i THEN STOP 1; END_WHEN", 1, 6, "expected BOOL as the WHEN condition, got INT"),
    ("WHEN b FOR 5 THEN STOP 1; END_WHEN", 1, 12, "expected TIME as the FOR duration"),
    ("WHEN b THEN EVENT e; END_WHEN", 1, 19, "expected a quoted event name"),
    ("WHEN b EVENT \"e\"; END_WHEN", 1, 8, "expected FOR <duration> or THEN"),
    ("VAR n : INT := i; END_VAR", 1, 16, "must be a constant"),
    ("VAR n : INT END_VAR", 1, 13, "expected ':=' or ';'" if False else "expected ';'"),
    ("x > 1;", 1, 3, "expected ':=' (assignment) or '(' (function block call)"),
    ("END_VAR", 1, 1, "expected VAR, VAR_OUTPUT, WHEN"),
    ("VAR AND : INT; END_VAR", 1, 5, "keyword 'AND'"),
    ("VAR m : INT; END_VAR\nm := 1", 2, 7, "expected ';' after the assignment"),
    ("VAR MATH_FAULT : BOOL; END_VAR", 1, 5, "already defined"),
]


@pytest.mark.parametrize("text,line,column,fragment", PROGRAM_ERRORS)
def test_program_errors_name_line_column_and_expectation(text, line, column, fragment):
    e = err(text, program=True)
    assert (e.line, e.column) == (line, column), e.one_line()
    assert fragment in e.message, e.message


# -- hostile input -------------------------------------------------------------------
HOSTILE = [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "b.__class__.__mro__",
    "exec('1')", "eval('1')", "open('/etc/passwd')", "getattr(x, 'real')",
    "lambda: 1", "[1, 2]", "{}", "x if b else i", "x[0]", "b; i", "`id`", "$HOME",
    "x @ x", "i << 40", "i ~ 1", "!b", "x.real", "i.bit_length()", "globals()",
    "9" * 100, "1" + "0" * 40, "99999999999", "1e999", "16#FFFFFFFFFFFF", "2#" + "1" * 40,
    "T#99999999999999999999d", "1" + "_0" * 30,
    "(" * 1000 + "1" + ")" * 1000, "NOT " * 1000 + "b", "- " * 1000 + "1",
    "1 + " * 5000 + "1", "ABS(" * 200 + "1" + ")" * 200,
    "IF b THEN " * 100 + "1" + " ELSE 2 END_IF" * 100,
    "x\u0430 > 1", "x\u200b > 1", "b (* \u202e evil *) AND b", "\u202eb", "\uff11 + 1",
    "x\u00a0> 1", "b\x00", "i + \ufeff1", "i\u2066 + 1", "\U0001F600",
    "Ｂ", "x > 1 // \u2067 hidden",
    "i " * 400_001,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_refused_with_logic_error(text):
    e = err(text)
    assert e.line is None or e.line >= 1
    assert isinstance(e.message, str) and e.message


def test_non_text_and_bad_signal_tables_are_refused():
    for bad in (b"x > 1", None, 42):
        assert "string" in err(bad).message
    for signals in ({"__class__": "INT"}, {"a b": "INT"}, {"AND": "BOOL"},
                    {"x": "STRING"}, {"x": int}, {"ä": "INT"}, {"x": "INT", "X": "REAL"}):
        with pytest.raises(LogicError):
            compile_expression("1", signals)


def test_long_flat_conjunction_is_fine_and_does_not_recurse():
    n = 20_000
    f = compile_expression(" AND ".join(["b"] * n), SIG)
    assert f({"b": True, "i": 0, "x": 0.0, "t": 0}) is True
    assert f({"b": False, "i": 0, "x": 0.0, "t": 0}) is False


def test_rules_have_a_bounded_number_of_actions():
    actions = ' '.join('EVENT "e";' for _ in range(65))
    assert "at most 64 actions" in err(f"WHEN b THEN {actions} END_WHEN", program=True).message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_compiles_or_raises_logic_error(text):
    try:
        f = compile_expression(text, SIG)
    except LogicError as e:
        assert e.line is None or (e.line >= 1 and e.column >= 1)
        return
    f({"b": True, "i": 3, "x": 1.5, "t": 10})


TOKENS = ["b", "i", "x", "t", "1", "2.5", "0", "200ms", "TRUE", "(", ")", "+", "-", "*", "/",
          "MOD", "**", "<", ">", "=", "<>", "AND", "OR", "XOR", "NOT", "IF", "THEN", "ELSE",
          "END_IF", "ABS(", "MIN(", "LIMIT(", ",", "SQRT(", "SEL("]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_token_soup_compiles_or_raises_logic_error_and_never_crashes(tokens):
    text = " ".join(tokens)
    try:
        f = compile_expression(text, SIG)
    except LogicError:
        return
    for vals in ({"b": True, "i": 0, "x": 0.0, "t": 0}, {"b": False, "i": -3, "x": -2.5,
                                                          "t": 5}):
        f(vals)

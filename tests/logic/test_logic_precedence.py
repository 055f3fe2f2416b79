"""Operator precedence against the IEC 61131-3 table, for every pair of operators.

The oracle is the standard's table (IEC 61131-3 ed. 3, Table 71 "Operators of the ST
language", binary operators, highest first), typed in here, not read from the parser:
for `a op1 b op2 c` it says which grouping is meant — `(a op1 b) op2 c` when op1 binds at
least as tightly (operators of one level associate to the left), else `a op1 (b op2 c)`.
The test then checks that the text without parentheses means exactly the grouping the
table gives: it compiles when that grouping is well typed (and is refused when it is
not), and gives the same value on every combination of operand values. Each pair is
also checked to be *discriminating*: for at least one choice of operand types the other
grouping is refused or gives another value, so a parser that bound the pair the other
way round would fail here.
"""

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import LogicError
from edge.logic import compile_expression

# IEC 61131-3 binary operators by level, highest first ("&" is AND written short)
IEC_LEVELS = [["*", "/", "MOD"], ["+", "-"], ["<", ">", "<=", ">="], ["=", "<>"],
              ["AND", "&"], ["XOR"], ["OR"]]
LEVEL = {op: len(IEC_LEVELS) - i for i, ops in enumerate(IEC_LEVELS) for op in ops}
# exponentiation binds tighter than the other binary operators; edge puts it above the
# unary operators as well (-3 ** 2 is -9, as in most languages; the standard lists
# negation first), documented in docs/logic.md and tested below
LEVEL["**"] = len(IEC_LEVELS) + 2
UNARY_LEVEL = len(IEC_LEVELS) + 1
BINARY = list(LEVEL)

TYPES = ("INT", "REAL", "BOOL")
VALUES = {"INT": (-3, -1, 0, 2, 5), "REAL": (-2.5, 0.0, 0.5, 3.0), "BOOL": (False, True)}
SIGNALS = {f"{t[0].lower()}{k}": t for t in TYPES for k in range(6)}
CHAIN_SIGNALS = SIGNALS


def names(types):
    return [f"{t[0].lower()}{k}" for k, t in enumerate(types)]


def compiles(text):
    try:
        return compile_expression(text, SIGNALS)
    except LogicError:
        return None


def envs(types):
    """Every combination of operand values for operands of these types."""
    ns = names(types)
    for combo in itertools.product(*(VALUES[t] for t in types)):
        env = {n: VALUES[SIGNALS[n]][0] for n in SIGNALS}
        env.update(zip(ns, combo, strict=True))
        yield env


def same(x, y):
    return x == y or (x != x and y != y)        # NaN results count as equal


def check_grouping(text, meant, other, types):
    """Asserts that the unparenthesized `text` means `meant` on these operand types;
    True when the `other` grouping would have been told apart here (it is well typed
    where `meant` is not, or ill-typed where `meant` is not, or another value)."""
    want = compiles(meant)
    got = compiles(text)
    alt = compiles(other)
    if want is None:
        assert got is None, f"{text!r} compiled, but the table's grouping {meant!r} is " \
                            "ill-typed"
        return alt is not None
    assert got is not None, f"{text!r} refused, but the table's grouping {meant!r} is fine"
    told_apart = alt is None
    for env in envs(types):
        w, g = want(env), got(env)
        assert same(g, w), f"{text!r} = {g!r}, table grouping {meant!r} = {w!r} at {env}"
        if alt is not None and not same(alt(env), w):
            told_apart = True
    return told_apart


BOOLEAN_OPS = {"AND", "&", "XOR", "OR"}
ARITHMETIC_OPS = {"**", "*", "/", "MOD", "+", "-"}


@pytest.mark.parametrize("op1, op2", list(itertools.product(BINARY, BINARY)))
def test_every_pair_of_binary_operators_groups_as_the_iec_table_says(op1, op2):
    left_first = LEVEL[op1] >= LEVEL[op2]          # same level: left to right
    discriminated = False
    for types in itertools.product(TYPES, repeat=3):
        a, b, c = names(types)
        text = f"{a} {op1} {b} {op2} {c}"
        left, right = f"({a} {op1} {b}) {op2} {c}", f"{a} {op1} ({b} {op2} {c})"
        meant, other = (left, right) if left_first else (right, left)
        discriminated |= check_grouping(text, meant, other, types)
    if {op1, op2} & BOOLEAN_OPS and {op1, op2} & ARITHMETIC_OPS:
        # BOOL-only next to number-only: no three operands type either grouping, so
        # three operands cannot tell; the chains below (with a comparison between) do
        assert not discriminated
    elif LEVEL[op1] != LEVEL[op2]:
        assert discriminated, f"no operand types tell the groupings of {op1}/{op2} apart"


def table_grouping(operands: list[str], ops: list[str]) -> str:
    """The chain fully parenthesized by the table (operator-precedence parsing written
    here, left-associative at each level): the oracle for any chain of operators."""
    out: list[str] = [operands[0]]
    pending: list[str] = []

    def reduce_one():
        op, right, left = pending.pop(), out.pop(), out.pop()
        out.append(f"({left} {op} {right})")

    for op, operand in zip(ops, operands[1:], strict=True):
        while pending and LEVEL[pending[-1]] >= LEVEL[op]:
            reduce_one()
        pending.append(op)
        out.append(operand)
    while pending:
        reduce_one()
    return out[0]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BINARY), st.sampled_from(TYPES)), min_size=2,
                max_size=5),
       st.sampled_from(TYPES), st.data())
def test_chains_of_operators_mean_what_the_table_says(chain, first_type, data):
    """Chains of 3 to 6 operands, any operators, any operand types: the text means its
    table grouping (refused when that grouping is ill-typed; else equal values)."""
    types = [first_type] + [t for _, t in chain]
    counts: dict[str, int] = {}
    operands = []
    for t in types:                                # distinct signals, so nothing folds
        k = counts[t] = counts.get(t, -1) + 1
        operands.append(f"{t[0].lower()}{k}")
    ops = [op for op, _ in chain]
    text = " ".join([operands[0]] + [f"{op} {x}" for op, x in zip(ops, operands[1:],
                                                                  strict=True)])
    meant = table_grouping(operands, ops)
    want, got = compiles(meant), compiles(text)
    assert (got is None) == (want is None), (text, meant)
    if want is None:
        return
    env = {n: data.draw(st.sampled_from(VALUES[t]), label=n) for n, t in CHAIN_SIGNALS.items()}
    w, g = want(env), got(env)
    assert same(g, w), (text, meant, env)


@pytest.mark.parametrize("unary", ["-", "NOT"])
@pytest.mark.parametrize("op", BINARY)
def test_a_unary_operator_before_a_binary_one_groups_as_documented(unary, op):
    """`-a op b`: the unary operator takes `a` alone for every binary operator but `**`,
    which binds tighter (`-a ** b` is `-(a ** b)`)."""
    discriminated = False
    for types in itertools.product(TYPES, repeat=2):
        a, b = names(types)
        text = f"{unary} {a} {op} {b}"
        tight, loose = f"({unary} {a}) {op} {b}", f"{unary} ({a} {op} {b})"
        meant, other = (tight, loose) if UNARY_LEVEL > LEVEL[op] else (loose, tight)
        discriminated |= check_grouping(text, meant, other, types)
    # groupings no operand can tell apart: -(a * b) = (-a) * b, likewise / and MOD (the
    # result takes the dividend's sign); NOT (a XOR b) = (NOT a) XOR b; and '-' next to
    # a BOOL-only operator or NOT next to a number-only one is ill-typed both ways
    same_either_way = (unary == "-" and (op in ("*", "/", "MOD") or op in BOOLEAN_OPS)) or \
        (unary == "NOT" and (op == "XOR" or op in ARITHMETIC_OPS))
    assert discriminated != same_either_way, (unary, op)


def test_the_table_here_is_the_one_the_docs_state():
    """docs/logic.md lists the levels in this order (a drift fails here)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "logic.md").read_text()
    line = doc.split("## Operators (highest precedence first)")[1].strip().split("\n\n")[0]
    levels = [re.findall(r"`([^`]+)`", part) for part in line.split("·")]
    flat = [[op for item in lv for op in item.split()] for lv in levels]
    assert flat[0] == ["(", ")"] and flat[1] == ["**"] and flat[2] == ["-", "+", "NOT"]
    assert flat[3:] == IEC_LEVELS

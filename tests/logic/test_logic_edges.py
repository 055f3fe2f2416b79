"""Corners of the logic compiler that the oracle and semantics tests do not reach:
AND / OR chains of every length the compiler specialises (each truth assignment against
Python's own all / any), STALE with an age limit that is itself a signal, and the
argument-count bound of calls and function-block inputs exactly at and past it."""

from __future__ import annotations

import itertools

import pytest

from edge.errors import LogicError
from edge.logic import compile_expression
from edge.logic.parser import MAX_ARGS
from edge.logic.program import Program

MS = 1_000_000


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("op", ["AND", "OR"])
def test_chains_of_comparisons_agree_with_all_and_any(op, k):
    """Chains of 1 to 8 input-against-constant comparisons (the compiler has a closure per
    length up to 6 and a loop beyond), every assignment of the terms."""
    names = [f"x{i}" for i in range(k)]
    # alternate the comparison forms: input op constant and constant op input
    terms = [f"{n} > 0.5" if i % 2 == 0 else f"0.5 < {n}" for i, n in enumerate(names)]
    fn = compile_expression(f" {op} ".join(terms), dict.fromkeys(names, "REAL"))
    want = all if op == "AND" else any
    for bits in itertools.product((0.0, 1.0), repeat=k):
        assert fn(dict(zip(names, bits, strict=True))) is want(b > 0.5 for b in bits), bits


@pytest.mark.parametrize("k", range(2, 8))
def test_chains_of_boolean_inputs_agree_with_all_and_any(k):
    names = [f"b{i}" for i in range(k)]
    sig = dict.fromkeys(names, "BOOL")
    conj = compile_expression(" AND ".join(names), sig)
    disj = compile_expression(" OR ".join(names), sig)
    for bits in itertools.product((False, True), repeat=k):
        m = dict(zip(names, bits, strict=True))
        assert (conj(m), disj(m)) == (all(bits), any(bits)), bits


def test_stale_with_a_signal_as_the_age_limit():
    stale = compile_expression("STALE(p, limit)", {"p": "REAL", "limit": "TIME"})
    m = {"p": 1.0, "p.good": True, "p.age": 200 * MS, "limit": 500 * MS}
    assert stale(m) is False                              # good and younger than the limit
    m["limit"] = 200 * MS
    assert stale(m) is False                              # exactly the limit: not older
    m["limit"] = 200 * MS - 1
    assert stale(m) is True                               # older than the limit
    m.update({"p.good": False, "limit": 10**12})
    assert stale(m) is True                               # not good: stale whatever its age


def test_a_call_takes_exactly_max_args_arguments():
    names = [f"x{i}" for i in range(MAX_ARGS + 1)]
    sig = dict.fromkeys(names, "INT")
    biggest = compile_expression(f"MAX({', '.join(names[:MAX_ARGS])})", sig)
    assert biggest({n: i for i, n in enumerate(names)}) == MAX_ARGS - 1
    with pytest.raises(LogicError, match=f"more than {MAX_ARGS} arguments") as exc:
        compile_expression(f"MAX({', '.join(names)})", sig)
    assert exc.value.line == 1


def _fb_call(n_inputs: int) -> str:
    inputs = ", ".join(f"IN{i} := TRUE" for i in range(n_inputs))
    return f"VAR t : TON; END_VAR\nt({inputs});\n"


def test_a_function_block_call_takes_at_most_max_args_inputs():
    # MAX_ARGS inputs pass the parser (the checker then names the first unknown input) ...
    with pytest.raises(LogicError) as exc:
        Program(_fb_call(MAX_ARGS), {})
    assert "more than" not in exc.value.message and "IN0" in exc.value.message.upper()
    # ... one more is the parser's own error
    with pytest.raises(LogicError, match=f"more than {MAX_ARGS} inputs") as exc:
        Program(_fb_call(MAX_ARGS + 1), {})
    assert exc.value.line == 2

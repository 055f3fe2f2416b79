"""The temporal forms of HIL assertions, each judged on hand-built traces where the right
verdict, and the tick of a failure, follow from the form's definition alone."""

import hashlib

import numpy as np
import pytest

from edge.errors import LogicError
from hil.temporal import FORMS, Assertion, Condition, Measure, Trace, names_in

TYPES = {"a": "BOOL", "b": "BOOL", "x": "REAL", "n": "INT"}


def trace(first_tick=0, **cols):
    n = len(next(iter(cols.values())))
    full = {"a": [False] * n, "b": [False] * n, "x": [0.0] * n, "n": [0] * n}
    full.update(cols)
    return Trace.of(full, TYPES, first_tick=first_tick)


def judge(form, expect, t, within=None, event=None):
    a = Assertion(form, Condition(expect, TYPES), "scenario.yaml:1", within,
                  Condition(event, TYPES) if event else None)
    return a.judge(t)


def test_always_fails_at_the_first_tick_where_it_does_not_hold():
    t = trace(first_tick=100, x=[0.1, 0.2, 0.9, 0.3, 0.95])
    v = judge("always", "x < 0.5", t)
    assert not v.passed and v.tick == 102            # the third row is tick 102
    assert v.values == {"x": 0.9}
    assert judge("always", "x < 1.0", t).passed


def test_never_fails_at_the_first_tick_where_it_holds():
    t = trace(a=[False, False, True, True], n=[0, 1, 2, 3])
    v = judge("never", "a AND n >= 2", t)
    assert not v.passed and v.tick == 2 and v.values == {"a": True, "n": 2}
    assert judge("never", "a AND n > 3", t).passed


def test_eventually_within_d_looks_at_ticks_0_to_d():
    t = trace(a=[False, False, False, True, False, False])
    assert judge("eventually", "a", t, within=3).passed       # tick 3 is inside 0 .. 3
    v = judge("eventually", "a", t, within=2)                 # 0 .. 2: never
    assert not v.passed and v.tick == 2 and "not once in the first 2 ticks" in v.detail


def test_eventually_fails_when_the_run_ends_before_the_window_closes():
    t = trace(a=[False] * 4)
    v = judge("eventually", "a", t, within=10)
    assert not v.passed and v.tick == 3 and "run ended before the window closed" in v.detail


def test_within_d_after_an_event_opens_a_window_at_each_rising_edge():
    # a rises at ticks 1 and 6; b holds at 3 (2 after the first) and at 10 (4 after the second)
    a = [False, True, True, False, False, False, True, False, False, False, False, False]
    b = [False, False, False, True, False, False, False, False, False, False, True, False]
    t = trace(a=a, b=b)
    assert judge("after", "b", t, within=4, event="a").passed
    v = judge("after", "b", t, within=3, event="a")          # 6 .. 9 has no b
    assert not v.passed and v.tick == 9 and "at tick 6" in v.detail
    assert v.values == {"b": False}


def test_after_a_level_that_stays_true_is_one_event():
    a = [True] * 6                     # true from the first tick: one onset, at tick 0
    b = [False, False, True, False, False, False]
    assert judge("after", "b", trace(a=a, b=b), within=2, event="a").passed
    assert not judge("after", "b", trace(a=a, b=b), within=1, event="a").passed


def test_after_an_event_near_the_end_fails_when_the_window_is_cut():
    a = [False, False, False, True]
    v = judge("after", "b", trace(a=a, b=[False] * 4), within=5, event="a")
    assert not v.passed and v.tick == 3 and "run ended" in v.detail


def test_after_with_no_event_passes():
    assert judge("after", "b", trace(a=[False] * 5), within=1, event="a").passed


def test_at_end_reads_only_the_last_tick():
    t = trace(first_tick=10, n=[5, 5, 1])
    assert judge("at_end", "n = 1", t).passed
    v = judge("at_end", "n = 5", t)
    assert not v.passed and v.tick == 12 and v.values == {"n": 1}


def test_every_form_is_tested_here():
    assert set(FORMS) == {"always", "never", "eventually", "after", "at_end"}


def test_failure_message_names_tick_values_and_expression():
    t = trace(x=[0.0, 2.5], a=[True, True])
    msg = judge("always", "a AND x < 1.0", t).message()
    assert msg == "scenario.yaml:1: always a AND x < 1.0: failed at tick 1: a = TRUE, x = 2.5"


def test_an_assertion_must_be_boolean():
    with pytest.raises(LogicError, match="BOOL"):
        Condition("x + 1.0", TYPES)


def test_an_unknown_name_is_an_error_with_its_column():
    with pytest.raises(LogicError) as info:
        Condition("a AND latchd", TYPES)
    assert (info.value.line, info.value.column) == (1, 7)


def test_names_in_lists_each_name_once_in_order():
    assert names_in("x > 1.0 AND (a OR x < 0.0) AND NOT b") == ["x", "a", "b"]


def test_trace_hash_is_the_sha256_of_the_layout_it_documents():
    t = trace(a=[True, False], x=[1.5, 2.5])
    h = hashlib.sha256()
    for name, arr in (("tick", np.array([0, 1], "<i8")), ("a", np.array([True, False])),
                      ("b", np.array([False, False])), ("x", np.array([1.5, 2.5], "<f8")),
                      ("n", np.array([0, 0], "<i8"))):
        h.update(f"{name}:{arr.dtype.str}:{len(arr)}\n".encode() + arr.tobytes())
    assert t.sha256() == h.hexdigest()
    assert trace(a=[True, False], x=[1.5, 2.5000001]).sha256() != t.sha256()


def test_a_measure_is_the_change_from_the_first_onset_to_until():
    t = trace(first_tick=10, a=[False, True, True, False, True, False],
              b=[True, False, False, True, False, True], x=[0.0, 1.0, 1.5, 4.0, 9.0, 10.0])
    m = Measure("d", Condition("x", TYPES, want=("REAL",)), Condition("a", TYPES),
                Condition("b", TYPES))
    got = m.take(t, t.rows())           # a first rises at tick 11; b next holds at 13
    assert (got.value, got.from_tick, got.to_tick) == (3.0, 11, 13)
    assert got.line() == "measure d = 3 (tick 11 -> 13)"
    to_end = Measure("d", Condition("x", TYPES, want=("REAL",)), Condition("a", TYPES))
    assert to_end.take(t, t.rows()).value == 9.0          # to the last tick, 15
    never = Measure("d", Condition("x", TYPES, want=("REAL",)), Condition("n > 0", TYPES))
    assert never.take(t, t.rows()).value is None

"""Cycle setup and stop commands with arguments outside their range (found by fuzz_setup):
converting such a double to an unsigned category or fault code is undefined behaviour in
C; the cycle must refuse the category and never latch a made-up code."""

import math

import pytest

from edge.errors import NativeError
from edge.rt.native import NO_STOP, TARGET_CYCLE, Cycle

CYCLE_STOP = 1


def stop_with(args):
    c = Cycle(1_000_000, 1)
    c.push_command(0, TARGET_CYCLE, CYCLE_STOP, args)
    c.step(2)
    return c.pop_states()[-1], c.stats()


@pytest.mark.parametrize("category", [math.nan, -1.05, 3.0, 1e10, -1e10, math.inf])
def test_stop_with_a_category_outside_0_to_2_is_refused(category):
    state, stats = stop_with([category, 7])
    assert stats.rejected_commands == 1
    assert state["stop_category"] == NO_STOP and state["fault_code"] == 0


@pytest.mark.parametrize("code", [1e10, 2.0**32, math.inf])
def test_stop_with_a_fault_code_beyond_32_bits_latches_no_code(code):
    state, stats = stop_with([1, code])
    assert stats.rejected_commands == 0
    assert state["stop_category"] == 1 and state["fault_code"] == 0


def test_stop_in_range_latches_category_and_code():
    state, stats = stop_with([2, 7])
    assert stats.rejected_commands == 0
    assert state["stop_category"] == 2 and state["fault_code"] == 7


def test_cycle_refuses_a_period_whose_tick_times_overflow():
    # found by fuzz_setup: 4.6e18 ns accepted, then tick * period overflowed at tick 2
    with pytest.raises(NativeError):
        Cycle(2**62, 1)
    with pytest.raises(NativeError):
        Cycle(10_000_000_001, 1)          # just above the 10 s bound
    Cycle(10_000_000_000, 1).step(3)      # the bound itself runs

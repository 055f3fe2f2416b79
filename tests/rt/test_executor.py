"""LET semantics of the executor, in virtual time, and replay against real time."""

import asyncio
import math
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import SchedulingError
from edge.rt.bus import Bus
from edge.rt.executor import Executor, LetTask, VirtualTimeViolation, current_release
from edge.rt.native import NO_STOP, Cycle, drive_sim_block, logical_states, setpoint_block

SETPOINT_TARGET = 1


def make(n_axes=2, **cycle_kw):
    cycle = Cycle(1_000_000, n_axes, **cycle_kw)
    sp = cycle.add_block(setpoint_block([2.0] * n_axes, [20.0] * n_axes))
    cycle.add_block(drive_sim_block([0.0] * n_axes, tau_s=0.003))
    return cycle, Executor(cycle, Bus()), sp


def collect(executor, every=50):
    frames = []
    executor.add_state_listener(lambda tick, recs: frames.append(recs), every_ticks=every)
    return frames


def test_outputs_take_effect_exactly_at_release_plus_deadline():
    cycle, ex, sp = make()
    frames = collect(ex, every=10)
    ex.add_task(LetTask("mover", lambda ctx: ctx.command(sp, SETPOINT_TARGET, [0.5, 0.5])
                        if ctx.tick == 20 else None, period_ticks=10, deadline_ticks=7))
    ex.step(100)
    s = np.concatenate(frames)
    assert list(s["tick"]) == list(range(100))
    assert np.nonzero(s["qd_cmd"][:, 0])[0][0] == 27


def test_task_sees_the_state_of_its_release_tick():
    cycle, ex, _ = make()
    seen = []
    ex.add_task(LetTask("probe", lambda ctx: seen.append((ctx.tick, int(ctx.state["tick"]))),
                        period_ticks=3, offset_ticks=1))
    ex.step(20)
    assert seen == [(k, k) for k in range(1, 20, 3)]


def test_publications_are_visible_from_release_plus_deadline():
    cycle, ex, _ = make()
    observed = {}
    ex.add_task(LetTask("talker", lambda ctx: ctx.publish("demo/value", ctx.tick),
                        period_ticks=10, deadline_ticks=4, priority=1))

    def listener(ctx):
        msg = ctx.latest("demo/value")
        observed[ctx.tick] = None if msg is None else (msg.data, msg.tick)

    ex.add_task(LetTask("listener", listener, period_ticks=1))
    ex.step(30)
    assert observed[3] is None                   # published at 0 with D=4: not yet
    assert observed[4] == (0, 3)                 # visible at 4, stamped in tick 3
    assert observed[13] == (0, 3)
    assert observed[14] == (10, 13)
    assert observed[23] == (10, 13) and observed[24] == (20, 23)


def test_hand_overs_apply_when_release_plus_deadline_opens_or_are_dropped_with_a_miss():
    """A release at 10 with D = 3 hands over when tick 13 opens: a task released at 13
    sees it, one at 12 does not; the next release misses its deadline (injected): its
    hand-over is dropped, never applied. Inside a body, current_release() is its context,
    a coroutine body's included; outside, None."""
    cycle, ex, _ = make()
    applied, dropped, seen, current = [], [], {}, []

    def giver(ctx):
        current.append(current_release() is ctx)
        ctx.hand_over(lambda t=ctx.tick: applied.append(t), lambda t=ctx.tick: dropped.append(t))

    async def taker(ctx):
        current.append(current_release() is ctx)
        seen[ctx.tick] = list(applied)

    ex.add_task(LetTask("giver", giver, period_ticks=10, offset_ticks=10, deadline_ticks=3))
    ex.add_task(LetTask("taker", taker, period_ticks=1, priority=-1))
    ex.step(15)
    ex.inject_deadline_miss("giver")
    ex.step(15)
    assert seen[12] == [] and seen[13] == [10] and seen[29] == [10]
    assert dropped == [20]
    assert all(current) and len(current) == 32 and current_release() is None


def test_simultaneous_releases_run_by_priority_then_name():
    cycle, ex, _ = make()
    order = []
    for name, prio in [("b", 0), ("a", 0), ("z", 5)]:
        ex.add_task(LetTask(name, lambda ctx, n=name: order.append(n), period_ticks=5,
                            priority=prio))
    ex.step(1)
    assert order == ["z", "a", "b"]


def test_bad_task_definitions_are_refused():
    with pytest.raises(SchedulingError, match="deadline"):
        LetTask("t", lambda ctx: None, period_ticks=5, deadline_ticks=6)
    with pytest.raises(SchedulingError, match="period"):
        LetTask("t", lambda ctx: None, period_ticks=0)
    with pytest.raises(SchedulingError, match="on_miss"):
        LetTask("t", lambda ctx: None, period_ticks=1, on_miss="ignore")
    for policy, category in (("log", 1), ("stop", 3), ("fault", -1), ("stop", True)):
        with pytest.raises(SchedulingError, match="stop_category"):
            LetTask("t", lambda ctx: None, period_ticks=1, on_miss=policy,
                    stop_category=category)
    cycle, ex, _ = make()
    ex.add_task(LetTask("t", lambda ctx: None, period_ticks=1))
    with pytest.raises(SchedulingError, match="already exists"):
        ex.add_task(LetTask("t", lambda ctx: None, period_ticks=1))


def test_task_awaiting_real_io_in_virtual_time_is_refused():
    cycle, ex, _ = make()

    async def body(ctx):
        await asyncio.sleep(0.01)

    ex.add_task(LetTask("io", body, period_ticks=1))
    with pytest.raises(VirtualTimeViolation, match="'io'"):
        ex.step(1)


@settings(max_examples=25, deadline=None)
@given(periods=st.lists(st.integers(1, 12), min_size=1, max_size=4),
       n=st.integers(1, 400))
def test_chunked_virtual_steps_equal_tick_by_tick(periods, n):
    """Stepping in one call (chunked to events) gives the states of stepping 1 by 1."""
    def run(chunked):
        cycle, ex, sp = make()
        frames = collect(ex, every=1)
        for i, p in enumerate(periods):
            ex.add_task(LetTask(f"t{i}", lambda ctx, i=i: ctx.command(
                sp, SETPOINT_TARGET, [math.sin(ctx.tick / 30 + i), math.cos(ctx.tick / 17)]),
                period_ticks=p, deadline_ticks=max(1, p // 2)))
        if chunked:
            ex.step(n)
        else:
            for _ in range(n):
                ex.step(1)
        return logical_states(np.concatenate(frames))
    assert run(True).tobytes() == run(False).tobytes()


@settings(max_examples=15, deadline=None)
@given(steps=st.lists(st.integers(1, 2500), min_size=1, max_size=3),
       n=st.integers(0, 5000))
def test_history_is_the_last_n_records_whatever_the_chunking(steps, n):
    cycle, ex, sp = make()
    frames = collect(ex, every=1)
    ex.add_task(LetTask("mover", lambda ctx: ctx.command(
        sp, SETPOINT_TARGET, [math.sin(ctx.tick / 40), 0.1]), period_ticks=7))
    for k in steps:
        ex.step(k)
    every = np.concatenate(frames)
    got = ex.history(n)
    want = every[max(0, len(every) - min(n, Executor.HISTORY_TICKS)):] if n else every[:0]
    assert list(got["tick"]) == list(want["tick"])
    assert got.tobytes() == want.tobytes()


def controller_under_test(ex, sp, trace):
    """A feedback task whose outputs depend on measured state and a recorded input trace:
    any dependence on Python's timing would change the states."""
    def control(ctx):
        setpoint = trace[ctx.tick // 20 % len(trace)]
        q = ctx.state["q"][:2]
        ctx.command(sp, SETPOINT_TARGET, [setpoint + 0.1 * q[1], -setpoint + 0.05 * q[0]])
        ctx.publish("ctl/err", float(setpoint - q[0]))
    ex.add_task(LetTask("control", control, period_ticks=20, deadline_ticks=15, on_miss="log"))


def test_replay_virtual_time_equals_real_time():
    trace = [0.0, 0.3, -0.2, 0.4, 0.1, -0.5, 0.25]
    n_ticks = 1200

    cycle, ex, sp = make()
    frames_v = collect(ex)
    controller_under_test(ex, sp, trace)
    ex.step(n_ticks)

    cycle, ex_rt, sp = make(priority=0, busy_tail_ns=0)
    frames_r = collect(ex_rt)
    controller_under_test(ex_rt, sp, trace)
    asyncio.run(ex_rt.run(duration_s=n_ticks / 1000))
    assert ex_rt.deadline_misses == 0, "the machine was too loaded to honour 15 ms deadlines"

    virtual = logical_states(np.concatenate(frames_v))
    real = logical_states(np.concatenate(frames_r))
    assert len(virtual) == len(real) == n_ticks
    assert np.abs(virtual["q"]).max() > 0.1          # it really moved
    assert virtual.tobytes() == real.tobytes()


def _finishing_at(lateness, on_miss="log"):
    """Real time, 40 ms ticks: a task released at tick 2 with D = 3 (outputs due at tick
    5) whose body returns once the cycle has run up to tick 5 + lateness - 1, i.e. with
    tick 5 not yet begun (lateness 0) or just run (lateness 1). The states of ticks 0-11
    and the task."""
    cycle = Cycle(40_000_000, 2, priority=0, busy_tail_ns=0)
    sp = cycle.add_block(setpoint_block([2.0, 2.0], [20.0, 20.0]))
    cycle.add_block(drive_sim_block([0.0, 0.0]))
    ex = Executor(cycle, Bus())
    frames = collect(ex, every=1)

    def body(ctx):
        assert ctx.effective_tick == 5
        give_up = time.monotonic() + 2.0
        while cycle.tick < ctx.effective_tick + lateness and time.monotonic() < give_up:
            pass                                  # the cycle thread runs meanwhile
        assert cycle.tick == ctx.effective_tick + lateness, "the machine stalled a tick"
        ctx.command(sp, SETPOINT_TARGET, [1.0, 1.0])

    task = LetTask("edge", body, period_ticks=100, offset_ticks=2, deadline_ticks=3,
                   on_miss=on_miss)
    ex.add_task(task)
    asyncio.run(ex.run(duration_s=0.48))
    s = np.concatenate(frames)
    assert list(s["tick"]) == list(range(12))
    return s, ex, task


def test_outputs_done_before_their_deadline_tick_take_effect_at_it():
    s, ex, task = _finishing_at(0)
    assert task.misses == ex.deadline_misses == 0
    assert np.nonzero(s["qd_cmd"][:, 0])[0][0] == 5          # exactly at r + D
    assert np.all(s["stop_category"] == NO_STOP)


@pytest.mark.parametrize(("on_miss", "category"), [("log", NO_STOP), ("fault", 2), ("stop", 1)])
def test_outputs_one_tick_late_are_dropped_and_the_policy_applied(on_miss, category):
    """Done once tick r + D has run: the outputs are dropped (never applied late), the
    miss counted, and the policy's stop requested: fault -> category 2, stop ->
    category 1 (both with the deadline fault code), log -> none."""
    s, ex, task = _finishing_at(1, on_miss)
    assert task.misses == ex.deadline_misses == 1
    assert np.all(s["qd_cmd"][:, :2] == 0)                   # nothing applied, ever
    assert np.all(s["stop_category"][:6] == NO_STOP)
    assert s["stop_category"][-1] == category
    assert s["fault_code"][-1] == (0 if on_miss == "log" else 258)


def test_deadline_miss_with_stop_policy_stops_the_arm():
    import time

    cycle, ex, sp = make(priority=0, busy_tail_ns=0)
    frames = collect(ex, every=10)

    def slow(ctx):
        ctx.command(sp, SETPOINT_TARGET, [1.0, 1.0])
        if ctx.tick >= 200:
            time.sleep(0.12)           # fault injection: 120 ms against a 20 ms deadline

    # the deadline leaves room for a loaded machine before the injected fault
    ex.add_task(LetTask("slow", slow, period_ticks=100, deadline_ticks=20, on_miss="stop"))
    asyncio.run(ex.run(duration_s=0.4))
    s = np.concatenate(frames)
    assert ex.deadline_misses >= 1 and ex.tasks[0].misses >= 1
    assert s["stop_category"][-1] == 1 and s["fault_code"][-1] == 258
    assert s["stop_category"][150] == NO_STOP


# IEC 60204-1 categories: "stop" is a controlled stop then power off (1) unless the board
# says otherwise, "fault" a controlled stop with power kept (2); "log" never stops.
@pytest.mark.parametrize("on_miss, stop_category, expected", [
    ("stop", None, 1), ("fault", None, 2), ("stop", 2, 2), ("stop", 0, 0), ("fault", 1, 1),
    ("log", None, NO_STOP)])
def test_an_injected_deadline_miss_applies_the_policy_and_its_stop_category(
        on_miss, stop_category, expected):
    """Virtual time: the injected miss of the release at tick 300 drops its outputs (the
    target it commands is never applied) and latches the configured category with the
    deadline fault (258) at the next tick boundary."""
    cycle, ex, sp = make()
    frames = collect(ex, every=10)

    def mover(ctx):
        if ctx.tick == 300:
            ctx.command(sp, SETPOINT_TARGET, [0.5, 0.5])

    ex.add_task(LetTask("mover", mover, period_ticks=100, deadline_ticks=10, on_miss=on_miss,
                        stop_category=stop_category))
    ex.step(250)
    ex.inject_deadline_miss("mover")
    ex.step(350)
    s = np.concatenate(frames)
    assert ex.deadline_misses == ex.tasks[0].misses == 1
    assert s["stop_category"][300] == NO_STOP
    assert list(s["stop_category"][301:]) == [expected] * (len(s) - 301)
    assert list(s["fault_code"][301:]) == [0 if expected == NO_STOP else 258] * (len(s) - 301)
    assert np.abs(s["q_cmd"][:, :2]).max() == 0.0        # the late target was dropped


def test_injecting_a_miss_needs_a_known_task_and_a_count():
    cycle, ex, _ = make()
    ex.add_task(LetTask("t", lambda ctx: None, period_ticks=1))
    with pytest.raises(SchedulingError, match="no task"):
        ex.inject_deadline_miss("nope")
    with pytest.raises(SchedulingError, match="at least one"):
        ex.inject_deadline_miss("t", 0)


def test_records_the_state_ring_dropped_are_counted_not_mistaken():
    """A state ring too small for the step: every release still happens on time, the
    releases whose record was dropped are counted, and the record such a task gets says
    by its tick that it is not its own."""
    cycle = Cycle(1_000_000, 1, state_capacity=16)
    ex = Executor(cycle, Bus())
    seen = []
    ex.add_task(LetTask("probe", lambda ctx: seen.append((ctx.tick, int(ctx.state["tick"]))),
                        period_ticks=40))
    ex.step(200)
    assert cycle.stats().state_drops > 0
    assert [t for t, _ in seen] == list(range(0, 200, 40))
    dropped = [t for t, recorded in seen if recorded != t]
    assert ex.missing_records == len(dropped) > 0
    assert all(recorded == t for t, recorded in seen if t not in dropped)


def test_a_long_virtual_step_keeps_the_latest_records():
    """Nothing to do for 50,000 ticks: the step still leaves the last ticks' records in
    the history (the state ring holds 8,192; the executor steps in chunks it can drain)."""
    cycle, ex, sp = make()
    ex.step(50_000)
    assert list(ex.history(3)["tick"]) == [49_997, 49_998, 49_999]
    assert cycle.stats().state_drops == 0


def test_an_outside_publication_is_delivered_at_the_next_tick_with_no_task_due():
    """Published between steps (a bridge, a console): subscribers get it at the next tick
    boundary even when no task is released for a long while."""
    cycle, ex, _ = make()
    ex.add_task(LetTask("rare", lambda ctx: None, period_ticks=50))
    got = []
    ex.bus.subscribe("ext/#", callback=got.append)
    ex.step(10)
    msg = ex.bus.publish("ext/cmd", {"x": 1})
    ex.step(20)                                     # the next release is at tick 50
    assert got == [msg] and ex.bus.tick == 10


def test_stepping_virtual_time_while_running_in_real_time_is_refused():
    cycle, ex, _ = make(priority=0, busy_tail_ns=0)
    refused = []

    def body(ctx):
        with pytest.raises(SchedulingError, match="virtual time"):
            ex.step(1)
        refused.append(ctx.tick)

    ex.add_task(LetTask("stepper", body, period_ticks=1000))
    asyncio.run(ex.run(duration_s=0.05))
    assert refused == [0]


@pytest.mark.parametrize("kick_every", [0, 10])
def test_the_executor_feeds_the_watchdog_only_when_asked(kick_every):
    cycle, _, sp = make(watchdog_ticks=50)
    ex = Executor(cycle, Bus(), kick_every_ticks=kick_every)
    frames = collect(ex, every=10)
    ex.add_task(LetTask("idle", lambda ctx: None, period_ticks=7))
    ex.step(200)
    s = np.concatenate(frames)
    if kick_every:
        assert np.all(s["stop_category"] == NO_STOP)
    else:                                           # nobody kicks: tick 51 stops
        k = int(np.argmax(s["stop_category"] != NO_STOP))
        assert (s["tick"][k], s["stop_category"][k], s["fault_code"][k]) == (51, 1, 257)


def _cycle_without_eventfd():
    """A cycle made while no file descriptor is free: eventfd() fails, as it does when a
    process has used up its descriptors, and the executor has to poll."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.dup(0)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        made = make(priority=0, busy_tail_ns=0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return made


def test_without_an_eventfd_the_executor_polls_and_keeps_let():
    cycle, ex, sp = _cycle_without_eventfd()
    assert cycle.wake_fd == -1
    frames = collect(ex, every=10)
    released = []

    def mover(ctx):
        released.append(ctx.tick)
        ctx.command(sp, SETPOINT_TARGET, [0.5, 0.5])

    ex.add_task(LetTask("mover", mover, period_ticks=100, offset_ticks=20, deadline_ticks=40))
    asyncio.run(asyncio.wait_for(ex.run(duration_s=0.2), 10))
    s = np.concatenate(frames)
    assert released == [20, 120] and ex.deadline_misses == 0
    assert list(s["tick"]) == list(range(200))          # ran its duration, then stopped
    assert np.nonzero(s["qd_cmd"][:, 0])[0][0] == 60    # outputs exactly at r + D


@pytest.mark.parametrize("category", [0, 1, 2])
def test_a_task_requests_a_stop_of_its_category_at_release_plus_deadline(category):
    cycle, ex, _ = make()
    frames = collect(ex, every=10)
    ex.add_task(LetTask("asker", lambda ctx: ctx.request_stop(category) if ctx.tick == 10
                        else None, period_ticks=10, deadline_ticks=5))
    ex.step(40)
    s = np.concatenate(frames)
    k = int(np.argmax(s["stop_category"] != NO_STOP))
    assert (s["tick"][k], s["stop_category"][k], s["fault_code"][k]) == (15, category, 259)


@pytest.mark.parametrize("category", [-1, 3])
def test_a_stop_category_outside_0_to_2_is_refused(category):
    cycle, ex, _ = make()
    refused = []

    def asker(ctx):
        with pytest.raises(SchedulingError, match="0, 1 or 2"):
            ctx.request_stop(category)
        refused.append(ctx.tick)

    ex.add_task(LetTask("asker", asker, period_ticks=10))
    ex.step(1)
    assert refused == [0]

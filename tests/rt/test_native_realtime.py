"""The native cycle on its real-time thread: the watchdog stops the arm on its own when
Python stops feeding it; the executor is woken by the cycle once a tick has run."""

import asyncio
import time

from edge.rt.bus import Bus
from edge.rt.executor import Executor, LetTask
from edge.rt.native import NO_STOP, Cycle, drive_sim_block, setpoint_block


def make(watchdog_ticks):
    cycle = Cycle(1_000_000, 1, watchdog_ticks=watchdog_ticks)
    cycle.add_block(setpoint_block([1.0], [10.0]))
    cycle.add_block(drive_sim_block([0.0]))
    return cycle


def test_stalled_python_triggers_a_controlled_stop():
    cycle = make(watchdog_ticks=50)
    cycle.start()
    give_up = time.monotonic() + 10.0        # Python "hangs": nobody kicks
    while cycle.tick < 80 and time.monotonic() < give_up:
        time.sleep(0.005)
    cycle.stop()
    assert cycle.tick >= 80, "the cycle did not run 80 ticks in 10 s"
    s = cycle.pop_states()
    stopped = s[s["stop_category"] == 1]
    assert len(stopped) and stopped["fault_code"][0] == 257
    assert stopped["tick"][0] == 51


def test_running_executor_keeps_the_watchdog_fed():
    cycle = make(watchdog_ticks=50)
    ex = Executor(cycle, Bus(), kick_every_ticks=10)
    ex.add_task(LetTask("idle", lambda ctx: None, period_ticks=100))
    last = []
    ex.add_state_listener(lambda tick, recs: last.append(int(recs["stop_category"][-1])),
                          every_ticks=25)
    asyncio.run(ex.run(duration_s=0.5))
    assert last and all(c == NO_STOP for c in last)


def test_wake_at_signals_once_the_record_of_the_tick_exists():
    """The executor's wake-up: one eventfd write when the asked tick has run, none for a
    tick already past, and the record of that tick is then in the state ring."""
    import os
    import select

    cycle = Cycle(1_000_000, 0)
    fd = cycle.wake_fd
    assert fd >= 0
    cycle.start()
    try:
        for _ in range(5):
            target = cycle.tick + 7
            assert cycle.wake_at(target)
            ready, _, _ = select.select([fd], [], [], 1.0)
            assert ready, "no wake-up within 1 s"
            assert int.from_bytes(os.read(fd, 8), "little") == 1
            assert cycle.tick > target
            ticks = cycle.pop_states()["tick"]
            assert ticks[-1] >= target and target in ticks
        assert not cycle.wake_at(cycle.tick - 1)          # already ran: nothing to wait for
        assert select.select([fd], [], [], 0.05)[0] == []
    finally:
        cycle.stop()


def test_realtime_releases_run_in_the_wake_callback_and_async_bodies_complete():
    """In real time, sync bodies run right in the eventfd callback and async ones on a
    task: every release completes, in order, its outputs visible at r + D, and the run
    ends at its last tick."""
    cycle = Cycle(1_000_000, 0)
    bus = Bus()
    ex = Executor(cycle, bus)
    done = []

    async def slow(ctx):
        await asyncio.sleep(0.001)          # real I/O in real time is allowed
        done.append(ctx.tick)
        ctx.publish("slow", ctx.tick)

    ex.add_task(LetTask("slow", slow, period_ticks=10, deadline_ticks=10))
    ex.add_task(LetTask("fast", lambda ctx: ctx.publish("fast", ctx.tick), period_ticks=5,
                        deadline_ticks=2))
    seen = []
    bus.subscribe("fast", callback=lambda m: seen.append((m.data, m.tick)))
    asyncio.run(ex.run(duration_s=0.3))
    assert ex.processed_ticks == 300
    assert done == list(range(0, 300, 10))[:len(done)] and len(done) >= 25
    # staged in tick r + D - 1, so visible from r + D
    fast = next(t for t in ex.tasks if t.name == "fast")
    released = [r for r, _ in seen]             # a missed release's outputs are dropped
    assert released == sorted(set(released)) and all(r % 5 == 0 for r in released)
    assert len(seen) >= 30
    assert all(t == r + 1 for r, t in seen) and len(seen) == fast.releases - fast.misses


def test_realtime_body_error_ends_run_with_it_and_stop_waits_for_a_release_in_flight():
    cycle = Cycle(1_000_000, 0)
    ex = Executor(cycle, Bus())

    def broken(ctx):
        if ctx.tick >= 20:
            raise ValueError("sensor table corrupt")

    ex.add_task(LetTask("broken", broken, period_ticks=5))
    try:
        asyncio.run(ex.run(duration_s=1.0))
    except ValueError as exc:
        assert "corrupt" in str(exc)
    else:
        raise AssertionError("the body's error did not end run()")

    cycle = Cycle(1_000_000, 0)
    ex = Executor(cycle, Bus())
    finished = []
    stop = asyncio.Event()

    async def long_release(ctx):
        stop.set()                           # stop requested while this release runs
        await asyncio.sleep(0.02)
        finished.append(ctx.tick)

    ex.add_task(LetTask("long", long_release, period_ticks=50))
    asyncio.run(asyncio.wait_for(ex.run(None, stop), 5.0))
    assert finished == [0]                   # completed, and no release after the stop


def test_a_release_with_time_to_spare_lets_ready_io_run_first():
    """Real time: I/O that became ready while the executor processes a tick (here made
    ready by a state listener of that very tick) is handled before a release whose
    deadline is far enough (YIELD_SLACK_NS), and after one whose deadline is tight."""
    import socket

    from edge.rt.executor import YIELD_SLACK_NS

    async def run(deadline_ticks):
        cycle = Cycle(1_000_000, 0)
        ex = Executor(cycle, Bus())
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        io_done, order = [], []

        def on_readable():
            reader.recv(64)
            io_done.append(True)

        asyncio.get_running_loop().add_reader(reader.fileno(), on_readable)
        ex.add_state_listener(lambda tick, recs: writer.send(b"x"), every_ticks=10)
        ex.add_task(LetTask("t", lambda ctx: order.append(len(io_done)), period_ticks=10,
                            offset_ticks=9, deadline_ticks=deadline_ticks))
        try:
            await ex.run(duration_s=0.1)
        finally:
            asyncio.get_running_loop().remove_reader(reader.fileno())
            reader.close()
            writer.close()
        return order

    assert 8 * 1_000_000 >= YIELD_SLACK_NS
    spare = asyncio.run(run(deadline_ticks=9))
    tight = asyncio.run(run(deadline_ticks=1))
    # the listener of tick k runs just before the release at k: with time to spare the
    # release sees that tick's I/O handled; with a tight deadline it runs at once
    # (a release woken over 6 ms late on a loaded machine has no time to spare left)
    assert len(spare) >= 5 and sum(n == k + 1 for k, n in enumerate(spare)) >= len(spare) - 2
    assert len(tight) >= 5 and tight == list(range(len(tight)))

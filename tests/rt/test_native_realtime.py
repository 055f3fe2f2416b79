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
    time.sleep(0.2)          # Python "hangs": nobody kicks
    cycle.stop()
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

"""The native cycle in virtual time: ordering, commands at tick boundaries, stops."""

import numpy as np
import pytest

from edge.rt.native import (
    NO_STOP,
    TARGET_CYCLE,
    Cycle,
    drive_sim_block,
    logical_states,
    setpoint_block,
)

CYCLE_STOP, CYCLE_RESET, CYCLE_KICK = 1, 2, 3
SETPOINT_TARGET, DRIVE_ESTOP = 1, 1


def arm(n=2, **kw):
    c = Cycle(1_000_000, n, **kw)
    sp = c.add_block(setpoint_block([1.0] * n, [10.0] * n))
    dr = c.add_block(drive_sim_block([0.0] * n))
    return c, sp, dr


def test_command_takes_effect_exactly_at_its_tick():
    c, sp, _ = arm()
    c.push_command(10, sp, SETPOINT_TARGET, [0.5, -0.5])
    c.step(200)
    s = c.pop_states()
    assert list(s["tick"]) == list(range(200))
    moving = np.nonzero(s["qd_cmd"][:, 0])[0]
    assert moving[0] == 10                    # not a tick earlier, not a tick later


def test_setpoint_respects_velocity_and_acceleration_limits():
    c, sp, _ = arm()
    c.push_command(0, sp, SETPOINT_TARGET, [1.0, -2.0])
    c.step(3000)
    s = c.pop_states()
    v = s["qd_cmd"][:, :2]
    assert np.abs(v).max() <= 1.0 + 1e-12
    assert np.abs(np.diff(v, axis=0)).max() <= 10.0 * 1e-3 + 1e-12
    assert s["q"][-1, 0] == pytest.approx(1.0) and s["q"][-1, 1] == pytest.approx(-2.0)


def test_late_command_is_counted_and_applied():
    c, sp, _ = arm()
    c.step(5)
    c.push_command(2, sp, SETPOINT_TARGET, [0.1, 0.1])
    c.step(1)
    assert c.stats().late_commands == 1


def test_estop_latches_until_reset_after_release():
    c, sp, dr = arm()
    c.push_command(0, sp, SETPOINT_TARGET, [1.0, 1.0])
    c.push_command(100, dr, DRIVE_ESTOP, [1])
    c.push_command(150, TARGET_CYCLE, CYCLE_RESET)     # refused: e-stop still pressed
    c.push_command(200, dr, DRIVE_ESTOP, [0])
    c.step(300)
    s = c.pop_states()
    # pressed during tick 100, read as an input at the start of tick 101
    assert s["stop_category"][100] == NO_STOP
    assert s["stop_category"][101] == 0 and s["fault_code"][101] == 256
    assert s["stop_category"][250] == 0                # released is not reset
    assert c.stats().rejected_commands == 1
    q_at_stop = s["q"][101, 0]
    assert np.all(s["q"][101:300, 0] == q_at_stop)    # category 0: brakes hold
    c.push_command(300, TARGET_CYCLE, CYCLE_RESET)
    c.step(1)
    assert c.pop_states()["stop_category"][0] == NO_STOP


def test_watchdog_stops_when_not_kicked():
    c, sp, _ = arm(watchdog_ticks=50)
    c.push_command(0, sp, SETPOINT_TARGET, [1.0, 1.0])
    for k in range(0, 40, 10):
        c.push_command(k, TARGET_CYCLE, CYCLE_KICK)
    c.step(200)
    s = c.pop_states()
    stopped = np.nonzero(s["stop_category"] == 1)[0]
    assert stopped[0] == 30 + 50 + 1                    # last kick at 30, limit 50 ticks
    assert s["fault_code"][stopped[0]] == 257
    assert abs(s["qd_cmd"][-1, 0]) == 0.0               # braked to standstill


def test_replay_is_bit_identical():
    def run():
        c, sp, _ = arm(3)
        for k, target in [(0, [0.2, 0.4, -0.1]), (120, [-0.3, 0.0, 0.5]), (121, [1, 1, 1])]:
            c.push_command(k, sp, SETPOINT_TARGET, target)
        c.step(700)
        return logical_states(c.pop_states())
    first, second = run(), run()
    assert len(first) == 700 and first.tobytes() == second.tobytes()

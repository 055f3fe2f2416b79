"""The safety monitor's less travelled paths, in closed loop with the simulated arm in
virtual time: the measured-acceleration check in both directions, the sign of a recorded
following error, a second stop after a reset starting its own ramp, the speed scale
while stopped, and the clamp of commanded feed-forward torque (an integrator's block
asks, the monitor limits) at, beyond and not-a-number."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cffi
import numpy as np
import pytest

from edge.config import load_board
from edge.motion.arm_sim import ARM_SIM_CMD_SET_STATE, arm_sim_block
from edge.motion.safety_monitor import SafetyMonitor
from edge.rt.native import NO_STOP, Cycle, load_block
from hil.arm_rig import SafetyRig
from tests.native_blocks import compile_block

BOARD = load_board("sim_arm")
CFG = BOARD.sections["safety"]
ARM = BOARD.sections["motion"].arm
N = ARM.n
HOME = np.array([a.initial_position for a in BOARD.axes])
# fault and following categories apart from each other and from the board's (both 0)
CATEGORIES = dict(observer=None, fault_category=2, following_category=1)
DT = 1e-3


# -- the measured acceleration ------------------------------------------------------
def _pushed_then_held(cfg, sign):
    """A torque-mode arm pushed about its base for 300 ticks, then set to rest where it
    is (the drive's velocity drops to 0 in one tick: a deceleration of v / dt)."""
    rig = SafetyRig(cfg=cfg, mode="torque")
    rig.run(5)
    rig.inject([sign * 20.0, 0, 0, 0, 0, 0])
    pushed = rig.run(300)
    rig.inject([0.0] * N)
    rig.cycle.push_command(rig.cycle.tick, rig.drive, ARM_SIM_CMD_SET_STATE,
                           pushed["q"][-1, :N].tolist())
    return rig, pushed, rig.run(5)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_deceleration_beyond_the_limit_trips_as_an_acceleration_fault(sign):
    """The limit placed just below, then just above, the hardest measured acceleration of
    the run (the sudden stop): it trips there with that value, or not at all. The
    acceleration is the difference of measured velocities over the period, as C takes it."""
    free = dict(walls=[], tcp_speed_max=100.0, tcp_speed_reduced=100.0,
                velocity_tolerance=100.0, following_error_max=0.0, **CATEGORIES)
    # first without the check (tolerance 0 turns it off): the run's accelerations
    _, pushed, held = _pushed_then_held(dataclasses.replace(CFG, **free), sign)
    qd = np.vstack([pushed["qd"][:, :N], held["qd"][:, :N]])
    acc = np.diff(qd, axis=0) / DT
    ratio = np.abs(acc) / np.array(CFG.a_stop)
    tick, axis = np.unravel_index(np.argmax(ratio), ratio.shape)
    worst = ratio[tick, axis]
    assert tick == len(pushed) and axis == 0       # the stop, a tick after it was sent
    assert acc[tick, axis] * sign < 0 and worst > 3 * np.delete(ratio, tick, axis=0).max()
    for margin, trips in ((1 - 1e-6, True), (1 + 1e-6, False)):
        cfg = dataclasses.replace(CFG, acceleration_tolerance=worst * margin - 1, **free)
        rig, pushed, held = _pushed_then_held(cfg, sign)
        assert set(pushed["fault_code"]) == {0}
        if not trips:
            assert set(held["fault_code"]) == {0} and rig.monitor.faults() == []
            continue
        k = int(np.argmax(held["fault_code"] != 0))
        assert held["fault_code"][k] == 7 and held["stop_category"][k] == 2
        f = rig.monitor.faults()[0]
        assert (f.code, f.axis, f.category) == (7, 0, 2)
        assert f.value == acc[tick, axis]            # a deceleration: against the motion


# -- the following error's recorded value ---------------------------------------------
def test_a_following_error_is_recorded_as_command_minus_measured():
    weak = list(BOARD.sections["motion"].drive.torque_limit)
    weak[1] = 25.0                               # cannot lift the arm to -1 rad
    rig = SafetyRig(cfg=dataclasses.replace(CFG, tau_max=[1e3] * N, **CATEGORIES),
                    torque_limit=weak)
    rig.move(HOME + np.array([0, -1.0, 0, 0, 0, 0]))
    s = rig.run(2000)
    k = int(np.nonzero(s["fault_code"] == 6)[0][0])
    f = rig.monitor.faults()[0]
    lag = s["q_cmd"][k - 1, 1] - s["q"][k, 1]     # the command leads: it moves down
    assert lag < -CFG.following_error_max
    assert f.value == pytest.approx(lag, abs=1e-12)


# -- a reset re-arms the stop ramp ----------------------------------------------------
def _estop_stop(rig, ticks=800):
    rig.estop(True)
    s = rig.run(ticks)
    rig.estop(False)
    rig.run(2)
    return s


def test_a_second_stop_after_a_reset_ramps_from_where_the_arm_is():
    """A stop latched, reset at standstill, a new move elsewhere, a second stop: the second
    ramp starts from the second move's position and velocity, never from the first's."""
    rig = SafetyRig(cfg=dataclasses.replace(CFG, observer=None), estop_category=2)
    rig.move(HOME + np.array([0.8, 0, 0, 0, 0, 0]))
    rig.run(250)
    first = _estop_stop(rig)
    rig.reset()
    rig.run(3)
    rig.move(first["q_cmd"][-1, :N] - np.array([1.2, 0, 0, 0, 0, 0]))
    before = rig.run(300)
    second = _estop_stop(rig)
    # the e-stop input takes effect at the next tick
    assert second["stop_category"][0] == NO_STOP and set(second["stop_category"][1:]) == {2}
    assert second["fault_code"][1] == 256
    q = np.vstack([before["q_cmd"][-1:, :N], second["q_cmd"][:, :N]])
    steps = np.abs(np.diff(q, axis=0))
    assert steps.max() <= max(CFG.v_max) * DT * (1 + 1e-9)       # no jump back
    assert np.abs(second["qd_cmd"][0, 0]) > 0.3                   # it was moving: a ramp
    assert second["qd_cmd"][-1, 0] == 0.0
    # the arm ends near where the second stop began, far from where the first ended
    assert abs(second["q_cmd"][-1, 0] - before["q_cmd"][-1, 0]) < 0.5
    assert abs(second["q_cmd"][-1, 0] - first["q_cmd"][-1, 0]) > 0.5
    assert [f.code for f in rig.monitor.faults()] == [256, 256]


def test_the_speed_scale_reads_one_while_stopped_and_while_disabled():
    rig = SafetyRig(cfg=dataclasses.replace(CFG, observer=None), estop_category=2)
    rig.move(HOME + 0.5)
    rig.run(100)
    rig.estop(True)
    rig.run(5)
    st = rig.monitor.status()
    assert st["stop_category"] == 2 and st["speed_scale"] == 1.0
    rig.run(800)
    st = rig.monitor.status()
    assert st["standstill"] == 1 and st["speed_scale"] == 1.0


def test_a_move_into_the_floor_ends_at_the_margin_and_not_short_of_it():
    """The shoulder driven down into the floor: the monitor slows the arm so that its
    nearest sphere stops at the wall margin, never inside it, and gives away no more
    than 0.1 mm of the reach (a clearance estimate that is too cautious stops early)."""
    rig = SafetyRig(cfg=dataclasses.replace(CFG, observer=None))
    rig.move(HOME + np.array([0, 1.0, 0, 0, 0, 0]))
    s = rig.run(4000)
    st = rig.monitor.status()
    assert set(s["fault_code"]) == {0} and st["limiting"] == 1
    assert np.abs(s["qd_cmd"][-1, :N]).max() == 0.0                   # it came to rest
    assert CFG.wall_margin <= st["min_wall_distance_cmd"] <= CFG.wall_margin + 1e-4


@pytest.mark.parametrize("direction", [[0, 1.0, 0, 0, 0, 0], [0, 1.0, 1.0, 0, 0, 0],
                                       [0.5, 1.2, -0.5, 0, 0, 0]])
def test_a_stop_at_any_moment_of_a_fast_approach_to_the_floor_keeps_the_margin(direction):
    """The monitor scales the approach so that a stop begun at any tick stays outside the
    margin: it predicts the stopping path (a ramp along the current direction). Stops
    every 40 ticks through the approach, each followed to standstill (every 5th command
    of the stop checked; the arm moves under 0.05 mm in 5 ticks at the end)."""
    cfg = dataclasses.replace(CFG, observer=None)
    for k in range(20, 1300, 40):
        rig = SafetyRig(cfg=cfg, estop_category=2)
        rig.move(HOME + np.array(direction))
        rig.run(k)
        rig.estop(True)
        s = rig.run(600)
        assert np.abs(s["qd_cmd"][-1, :N]).max() == 0.0
        nearest = min(rig.monitor.sphere_distances(q[:N]).min() for q in s["q_cmd"][::5])
        assert nearest >= CFG.wall_margin - 1e-9, (k, nearest)


@pytest.mark.parametrize("direction", [[0, 1.0, 0, 0, 0, 0], [0, 1.0, 1.0, 0, 0, 0],
                                       [0.5, 1.2, -0.5, 0, 0, 0]])
def test_an_approach_slowed_by_the_wall_blends_and_does_not_saw(direction):
    """Once the wall slows the approach, each tick takes as much of the candidate as a
    stop still allows (the blend between full braking and the candidate). The speed a
    stop allows shrinks as the arm nears the wall, so the commanded speed falls without
    rising again; braking fully and then accelerating again (no blend) saws, each tooth
    as high as one tick of acceleration. Allowed: a tenth of the smallest such tooth
    (the blend's bisection leaves some slack)."""
    rig = SafetyRig(cfg=dataclasses.replace(CFG, observer=None))
    rig.move(HOME + np.array(direction))
    s = rig.run(4000)
    speed = np.linalg.norm(s["qd_cmd"][:, :N], axis=1)
    after_peak = np.diff(speed[int(np.argmax(speed)):])
    tooth = min(axis.max_acceleration for axis in BOARD.axes) * 1e-3
    assert after_peak.max() < tooth / 10, (after_peak.max(), tooth)
    assert speed[-1] == 0.0


def test_without_walls_every_sphere_is_infinitely_far_and_no_more_is_written():
    cfg = dataclasses.replace(CFG, observer=None, walls=[])
    monitor = SafetyMonitor(ARM, cfg)
    n = len(cfg.spheres)
    out = np.full(n + 1, -7.0)                   # one slot past the spheres: a sentinel
    q = np.ascontiguousarray(HOME, dtype=float)
    monitor.lib.safety_sphere_distances(monitor.block.handle,
                                        monitor.ffi.from_buffer("double[]", q),
                                        monitor.ffi.from_buffer("double[]", out))
    assert np.all(out[:n] == np.inf) and out[n] == -7.0


# -- commanded feed-forward torque ----------------------------------------------------
SOURCE = Path(__file__).resolve().parent / "blocks" / "torque_probe.c"


@pytest.fixture(scope="module")
def probe_library(tmp_path_factory) -> Path:
    return compile_block(tmp_path_factory.mktemp("blocks"), SOURCE)


class TorqueRig:
    """Drive -> feed-forward torque block -> safety monitor -> probe, one cycle."""

    def __init__(self, library: Path, tau_max: list[float]) -> None:
        self.cfg = dataclasses.replace(CFG, observer=None, tau_max=tau_max)
        self.cycle = Cycle(1_000_000, N)
        self.cycle.add_block(arm_sim_block(ARM, HOME, mode="torque"))
        sig = "edge_block *{}(void);"
        self.ff = self.cycle.add_block(load_block(library, "ff_torque_alloc",
                                                  sig.format("ff_torque_alloc")))
        self.monitor = SafetyMonitor(ARM, self.cfg)
        self.monitor.add_to(self.cycle.add_block)
        self.cycle.add_block(load_block(library, "torque_probe_alloc",
                                        sig.format("torque_probe_alloc")))
        ffi = cffi.FFI()
        ffi.cdef("double torque_probe_seen(int axis);")
        self._lib = ffi.dlopen(str(library))

    def ask(self, tau: list[float]) -> tuple[list[float], int]:
        """Command `tau` for one tick: what reached the drives, and the limiting flag."""
        self.cycle.push_command(self.cycle.tick, self.ff, 0, tau)
        self.cycle.step(1)
        self.cycle.pop_states()
        return ([self._lib.torque_probe_seen(i) for i in range(N)],
                self.monitor.status()["limiting"])


def test_commanded_torque_is_clamped_at_its_limit_and_nan_becomes_zero(probe_library):
    limits = [40.0, 30.0, 20.0, 10.0, 5.0, 2.5]
    rig = TorqueRig(probe_library, limits)
    within = [1.0, -2.0, 3.0, -4.0, 1.0, -0.5]
    assert rig.ask(within) == (within, 0)
    at_limit = [40.0, -30.0, 20.0, -10.0, 5.0, -2.5]             # exactly the limits
    assert rig.ask(at_limit) == (at_limit, 0)
    # (the arm, pushed by these torques and gravity, trips the measured-torque check
    # from here on: the clamp of what is commanded goes on all the same)
    beyond = [41.0, -30.5, 1e300, -np.inf, 5.0, 2.5]
    assert rig.ask(beyond) == ([40.0, -30.0, 20.0, -10.0, 5.0, 2.5], 1)
    seen, limiting = rig.ask([np.nan, 0.0, 0.0, 0.0, 0.0, -np.nan])
    assert seen == [0.0] * N and limiting == 1


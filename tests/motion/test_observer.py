"""The generalised-momentum observer in closed loop with the simulated arm: its residual
is the external joint torque the plant receives (the injected one, compared directly),
a torque above the collision threshold stops the arm within a bounded number of ticks
and latches until reset, a torque between the thresholds is only a contact, and ordinary
motion with friction raises nothing."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge.config import load_board
from edge.errors import ConfigError, NativeError
from edge.motion.arm_model import NativeArm
from edge.motion.arm_sim import ARM_SIM_CMD_EXT_WRENCH
from edge.motion.safety import SAFETY_CMD_ENABLE
from edge.motion.safety_monitor import SafetyMonitor
from edge.rt.native import NO_STOP
from hil.arm_rig import SafetyRig

BOARD = load_board("sim_arm")
CFG = BOARD.sections["safety"]
OBS = CFG.observer
ARM = BOARD.sections["motion"].arm
N = ARM.n
HOME = np.array([a.initial_position for a in BOARD.axes])
DT = 1e-3
K = OBS.gain[0]

poses = st.tuples(st.floats(-2, 2), st.floats(-2.5, -0.6), st.floats(-2, 2), st.floats(-2, 2),
                  st.floats(-2, 2), st.floats(-2, 2)).map(np.array)
offsets = st.lists(st.floats(-0.8, 0.8), min_size=N, max_size=N).map(np.array)


def frictionless(thresholds: float = 1e6):
    obs = dataclasses.replace(OBS, viscous=[0.0] * N, coulomb=[0.0] * N,
                              contact_threshold=[thresholds] * N,
                              collision_threshold=[thresholds] * N)
    # a push on a light wrist swings it fast against its soft servo: this test is about
    # the estimate, so the measured-limit faults are out of the way
    return dataclasses.replace(CFG, observer=obs, walls=[], following_error_max=0.0,
                               velocity_tolerance=100.0, tcp_speed_tolerance=100.0,
                               tau_max=[1e4] * N)


@settings(max_examples=12, deadline=None)
@given(poses, st.lists(st.floats(-8, 8), min_size=N, max_size=N).map(np.array), offsets)
def test_residual_is_the_injected_external_torque(q0, tau_ext, off):
    rig = SafetyRig(cfg=frictionless(), q0=q0, viscous=[0.0] * N, coulomb=[0.0] * N,
                    torque_limit=[1e4] * N)
    rig.run(20)
    rig.inject(tau_ext)
    rig.move(q0 + off)                  # moving while pushed: the estimate must hold
    rig.run(120)                        # 24 observer time constants
    for _ in range(5):
        rig.run(37)
        r = rig.monitor.observer_status()["residual"]
        # discretisation of the observer while moving fast: ~0.05 N·m
        np.testing.assert_allclose(r, tau_ext, atol=0.15 + 0.02 * np.abs(tau_ext).max())


def detection_bound_ticks(factor: float) -> int:
    """First-order residual r = tau (1 - exp(-K t)) crosses tau / factor at
    t = ln(factor / (factor - 1)) / K; plus a tick for the command and one for the read,
    and friction's worth of slack."""
    return math.ceil(math.log(factor / (factor - 1)) / (K * DT)) + 4


@settings(max_examples=15, deadline=None)
@given(offsets, st.integers(0, 2), st.floats(1.3, 4.0), st.sampled_from([-1, 1]),
       st.integers(30, 300))
def test_collision_on_a_main_joint_stops_the_arm_within_bounded_ticks(off, joint, factor,
                                                                      sign, after):
    rig = SafetyRig(cfg=dataclasses.replace(CFG, walls=[]))
    rig.move(HOME + off)
    rig.run(after)
    tau = np.zeros(N)
    tau[joint] = sign * factor * OBS.collision_threshold[joint]
    rig.inject(tau)
    injected = rig.cycle.tick           # the drive applies it from this tick on
    s = rig.run(1500)
    stopped = np.nonzero(s["stop_category"] != NO_STOP)[0]
    assert stopped.size
    k = stopped[0]
    assert s["fault_code"][k] == 300
    assert s["tick"][k] - injected <= detection_bound_ticks(factor)
    st_ = rig.monitor.observer_status()
    assert st_["collision"] == 1 and st_["collision_tick"] == s["tick"][k]
    # category 1: a controlled stop, then power off; the arm is at rest within 1 s
    off_at = np.nonzero(s["stop_category"][k:] == 0)[0]
    assert off_at.size and off_at[0] <= 1000
    assert np.all(s["qd"][k + off_at[0] + 1:, :N] == 0)
    assert np.all(s["fault_code"][k:] == 300)          # latched


@settings(max_examples=10, deadline=None)
@given(offsets, st.integers(0, N - 1), st.floats(1.3, 3.0), st.sampled_from([-1, 1]))
def test_any_injected_collision_stops_the_arm(off, joint, factor, sign):
    """On a light wrist the joint may reach its velocity limit before the residual
    crosses the threshold: a different fault, but the arm stops just as fast."""
    rig = SafetyRig(cfg=dataclasses.replace(CFG, walls=[]))
    rig.move(HOME + off)
    rig.run(100)
    tau = np.zeros(N)
    tau[joint] = sign * factor * OBS.collision_threshold[joint]
    rig.inject(tau)
    injected = rig.cycle.tick
    s = rig.run(300)
    stopped = np.nonzero(s["stop_category"] != NO_STOP)[0]
    assert stopped.size and s["tick"][stopped[0]] - injected <= detection_bound_ticks(factor)
    assert s["fault_code"][stopped[0]] in (300, 2)


@settings(max_examples=10, deadline=None)
@given(offsets, st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).map(np.array)
       .filter(lambda v: np.linalg.norm(v) > 0.3), st.floats(100, 300))
def test_a_push_on_the_tool_stops_the_arm(off, direction, force):
    """A Cartesian contact force on the tool point (J^T F at the joints, following the arm),
    as a person or an obstacle would push."""
    rig = SafetyRig(cfg=dataclasses.replace(CFG, walls=[]))
    rig.move(HOME + off)
    s = rig.run(150)
    f = force * direction / np.linalg.norm(direction)
    jac = NativeArm(ARM).jacobian(s["q"][-1, :N])
    factor = np.max(np.abs(jac[:3].T @ f) / np.array(OBS.collision_threshold))
    assume(factor > 1.3)
    rig.cycle.push_command(rig.cycle.tick, rig.drive, ARM_SIM_CMD_EXT_WRENCH,
                           [*f, 0.0, 0.0, 0.0])
    injected = rig.cycle.tick
    s = rig.run(300)
    stopped = np.nonzero(s["stop_category"] != NO_STOP)[0]
    assert stopped.size
    assert s["tick"][stopped[0]] - injected <= detection_bound_ticks(factor) + 2
    assert s["fault_code"][stopped[0]] in (300, 2)


def test_contact_below_the_collision_threshold_does_not_stop():
    rig = SafetyRig(cfg=dataclasses.replace(CFG, walls=[]))
    rig.run(50)
    tau = np.zeros(N)
    tau[1] = 0.5 * (OBS.contact_threshold[1] + OBS.collision_threshold[1])
    rig.inject(tau)
    s = rig.run(300)
    st_ = rig.monitor.observer_status()
    assert st_["contact"] == 1 and st_["collision"] == 0
    assert np.all(s["stop_category"] == NO_STOP)
    assert abs(st_["residual"][1] - tau[1]) < OBS.coulomb[1] + 0.5


@settings(max_examples=8, deadline=None)
@given(st.lists(offsets, min_size=2, max_size=2))
def test_ordinary_motion_with_friction_raises_no_collision(targets):
    rig = SafetyRig(cfg=dataclasses.replace(CFG, walls=[]))
    for off in targets:
        rig.move(HOME + off)
        s = rig.run(1200)
        assert np.all(s["fault_code"] == 0)
    assert rig.monitor.observer_status()["peak_ratio"] < 0.5


def test_collision_latches_until_reset_and_category_is_configurable():
    obs = dataclasses.replace(OBS, category=2)
    rig = SafetyRig(cfg=dataclasses.replace(CFG, observer=obs, walls=[]))
    rig.move(HOME + 0.3)
    rig.run(100)
    tau = np.zeros(N)
    tau[0] = 2 * OBS.collision_threshold[0]
    rig.inject(tau)
    rig.run(50)
    rig.inject(np.zeros(N))             # the obstacle goes away
    s = rig.run(800)
    assert np.all(s["stop_category"] == 2) and np.all(s["fault_code"] == 300)
    assert np.all(s["qd_cmd"][-100:, :N] == 0)         # stopped, power kept (category 2)
    assert rig.monitor.observer_status()["collision"] == 1
    rig.reset()
    s = rig.run(10)
    assert s["stop_category"][-1] == NO_STOP and s["fault_code"][-1] == 0
    assert rig.monitor.observer_status()["collision"] == 0
    target = s["q"][-1, :N] + 0.2
    rig.move(target)
    s = rig.run(1500)
    np.testing.assert_allclose(s["q"][-1, :N], target, atol=5e-3)
    assert np.all(s["fault_code"] == 0)
    assert [f.code for f in rig.monitor.faults()] == [300]


def collides_under(rig, tau, ticks=400) -> bool:
    rig.inject(tau)
    s = rig.run(ticks)
    return bool(np.any(s["fault_code"] == 300))


BASE = dataclasses.replace(CFG, walls=[])
PUSH = np.zeros(N)
PUSH[1] = 0.6 * OBS.collision_threshold[1]        # between half and the whole threshold
STRICTER = dataclasses.replace(BASE, observer=dataclasses.replace(
    OBS, collision_threshold=[0.5 * c for c in OBS.collision_threshold],
    contact_threshold=[0.25 * c for c in OBS.collision_threshold]))


def disabled_rig_with_stricter_config_queued():
    rig = SafetyRig(cfg=BASE)
    rig.run(5)
    rig.monitor.set_enabled(False, lambda t, k, a: rig.cycle.push_command(rig.cycle.tick, t, k, a))
    rig.run(2)
    rig.monitor.reconfigure(STRICTER)
    return rig


def test_observer_thresholds_change_with_the_safety_configuration():
    """Reconfigured while disabled, the observer takes its new thresholds at the same
    tick boundary as the safety block: a push between the new and the old collision
    threshold is then a collision, and was not before."""
    assert not collides_under(SafetyRig(cfg=BASE), PUSH)         # the control
    rig = disabled_rig_with_stricter_config_queued()
    rig.run(1)
    assert rig.monitor.config_state() == "applied"
    assert rig.monitor.status()["checksum"] == STRICTER.checksum
    rig.command(SAFETY_CMD_ENABLE, [1])
    rig.monitor.enabled = True
    rig.run(50)
    assert collides_under(rig, PUSH)


def test_an_observer_change_refused_with_the_safety_one_leaves_the_old_thresholds():
    rig = disabled_rig_with_stricter_config_queued()
    rig.command(SAFETY_CMD_ENABLE, [1])            # enabled before the tick boundary
    rig.run(1)
    assert rig.monitor.config_state() == "refused"
    rig.run(50)
    assert not collides_under(rig, PUSH)            # still the old thresholds


def test_the_observer_cannot_be_added_or_removed_or_made_invalid_at_run_time():
    rig = SafetyRig(cfg=BASE)
    rig.monitor.enabled = False
    with pytest.raises(ConfigError, match="restart the runtime"):
        rig.monitor.reconfigure(dataclasses.replace(BASE, observer=None))
    broken = dataclasses.replace(OBS, gain=[-1.0] * N)
    with pytest.raises(ConfigError, match="observer refused"):
        rig.monitor.reconfigure(dataclasses.replace(BASE, observer=broken))
    assert rig.monitor.config_state() == "none"


def test_an_observer_restarted_while_the_arm_moves_starts_from_its_momentum():
    """A reset request restarts the observer; restarted in the middle of a fast move it
    must take the momentum it finds as its start (no push: the residual stays near 0
    and nothing trips)."""
    rig = SafetyRig(cfg=frictionless(), viscous=[0.0] * N, coulomb=[0.0] * N,
                    torque_limit=[1e4] * N)
    rig.move(HOME + np.array([2.0, -1.2, 1.6, 2.0, -2.0, 2.0]))
    rig.run(150)
    rig.reset()
    s = rig.run(20)
    assert np.abs(s["qd"][-1, :N]).max() > 0.2                 # still moving
    assert rig.monitor.observer_status()["active"] == 1
    assert np.abs(rig.monitor.observer_status()["residual"]).max() < 0.5
    assert set(s["fault_code"]) == {0} and np.all(s["stop_category"] == NO_STOP)


@pytest.mark.parametrize("change", [
    {"category": 3}, {"category": -1}, {"gain": 0.0}, {"contact_threshold": 0.0},
    {"collision_threshold": "below contact"}, {"viscous": -0.1}, {"coulomb": -0.1},
    {"coulomb_velocity": 0.0}, {"gain": math.nan}, {"collision_threshold": math.inf},
])
def test_the_native_observer_refuses_an_invalid_configuration(change):
    (name, value), = change.items()
    if name == "coulomb_velocity" or name == "category":
        obs = dataclasses.replace(OBS, **{name: value})
    else:
        if value == "below contact":
            value = OBS.contact_threshold[2] * 0.99
        values = list(getattr(OBS, name))
        values[2] = value
        obs = dataclasses.replace(OBS, **{name: values})
    with pytest.raises(NativeError, match="refused"):
        SafetyMonitor(ARM, dataclasses.replace(CFG, observer=obs))


def test_the_native_observer_takes_its_boundary_values():
    """Category 0 and 2, collision threshold equal to the contact threshold."""
    for obs in (dataclasses.replace(OBS, category=0), dataclasses.replace(OBS, category=2),
                dataclasses.replace(OBS, collision_threshold=list(OBS.contact_threshold))):
        SafetyMonitor(ARM, dataclasses.replace(CFG, observer=obs))

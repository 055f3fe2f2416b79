"""The simulated arm drive in the native cycle, in virtual time: it holds still under
gravity compensation, falls and accelerates exactly as the numpy dynamics predict,
conserves or dissipates energy as its friction says, sticks below breakaway, respects
torque limits, tracks setpoints with its servo, and brakes on a category-0 stop."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import load_board
from edge.errors import NativeError
from edge.motion.arm_sim import (
    ARM_SIM_CMD_ESTOP,
    ARM_SIM_CMD_EXT_TORQUE,
    ARM_SIM_CMD_GRAVITY_COMP,
    ARM_SIM_CMD_SET_STATE,
    MODES,
    arm_sim_block,
    arm_sim_block_from_config,
)
from edge.motion.drive import DRIVE_CMD_MODE
from edge.motion.dynamics import (
    forward_dynamics,
    gravity_torques,
    mass_matrix,
    potential_energy,
)
from edge.motion.kinematics import SerialArm
from edge.rt.native import NO_STOP, TARGET_CYCLE, Cycle, setpoint_block

BOARD = load_board("sim_arm")
MOTION = BOARD.sections["motion"]
ARM: SerialArm = MOTION.arm
HOME = np.array([a.initial_position for a in BOARD.axes])
DT = 1e-3
SETPOINT_TARGET, CYCLE_RESET = 1, 2

poses = st.tuples(st.floats(-3, 3), st.floats(-3, 0), st.floats(-2.5, 2.5), st.floats(-3, 3),
                  st.floats(-3, 3), st.floats(-3, 3)).map(np.array)


def sim(q0=HOME, *, with_setpoint=False, estop_category=0, **kw):
    c = Cycle(1_000_000, ARM.n, estop_category=estop_category)
    drive = c.add_block(arm_sim_block(ARM, q0, **kw))
    sp = None
    if with_setpoint:
        sp = c.add_block(setpoint_block([a.max_velocity for a in BOARD.axes],
                                        [a.max_acceleration for a in BOARD.axes]))
    return c, drive, sp


def q_of(states):
    return states["q"][:, :ARM.n]


def energy(q, qd):
    return 0.5 * qd @ mass_matrix(ARM, q) @ qd + potential_energy(ARM, q)


@settings(max_examples=15, deadline=None)
@given(poses)
def test_holds_still_under_gravity_compensation(q0):
    c, _, _ = sim(q0, mode="torque", viscous=MOTION.drive.viscous,
                  coulomb=MOTION.drive.coulomb)
    c.step(500)
    s = c.pop_states()
    np.testing.assert_array_equal(q_of(s), np.tile(q0, (500, 1)))
    np.testing.assert_array_equal(s["qd"][:, :ARM.n], 0.0)


@settings(max_examples=10, deadline=None)
@given(poses)
def test_position_servo_holds_still_without_any_command_source(q0):
    c, _, _ = sim(q0, **_board_drive())
    c.step(300)
    assert np.abs(q_of(c.pop_states()) - q0).max() == 0.0


def _board_drive():
    d = MOTION.drive
    return dict(viscous=d.viscous, coulomb=d.coulomb, torque_limit=d.torque_limit,
                servo_bandwidth_hz=d.servo_bandwidth_hz, servo_damping=d.servo_damping,
                servo_integral_hz=d.servo_integral_hz, substeps=d.substeps)


@settings(max_examples=15, deadline=None)
@given(poses)
def test_unpowered_arm_falls_as_the_numpy_dynamics_predict(q0):
    c, _, _ = sim(q0, mode="torque_raw", substeps=8)
    c.step(3)
    s = c.pop_states()
    qdd = forward_dynamics(ARM, q0, np.zeros(6), np.zeros(6))
    # velocity after one tick of free fall from rest: qdd * dt (to first order in dt)
    np.testing.assert_allclose(s["qd"][1, :6], qdd * DT, rtol=2e-2, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(poses, st.lists(st.floats(-10, 10), min_size=6, max_size=6).map(np.array))
def test_moves_under_external_torque_as_predicted(q0, tau_ext):
    c, drive, _ = sim(q0, mode="torque", substeps=8)
    c.push_command(0, drive, ARM_SIM_CMD_EXT_TORQUE, tau_ext)
    c.step(3)
    s = c.pop_states()
    qdd = np.linalg.solve(mass_matrix(ARM, q0), tau_ext)      # gravity is compensated
    # to first order in dt; within the tick the light wrist spins up and Coriolis terms
    # couple a little into the other joints
    np.testing.assert_allclose(s["qd"][1, :6], qdd * DT, rtol=2e-2,
                               atol=1e-3 * np.abs(qdd * DT).max() + 1e-6)
    # and the motor torque it reports is just the gravity compensation
    np.testing.assert_allclose(s["tau"][1, :6], gravity_torques(ARM, q0), atol=0.05)


def test_energy_is_conserved_without_friction_and_dissipated_with_it():
    q0 = np.array([0.3, -0.8, 0.9, -0.4, 0.6, 0.2])
    c, _, _ = sim(q0, mode="torque_raw", substeps=16)
    c.step(400)
    s = c.pop_states()[::4]
    e = np.array([energy(q, qd) for q, qd in zip(q_of(s), s["qd"][:, :6], strict=True)])
    kinetic = np.array([0.5 * qd @ mass_matrix(ARM, q) @ qd
                        for q, qd in zip(q_of(s), s["qd"][:, :6], strict=True)])
    assert np.ptp(q_of(s), axis=0).max() > 0.3          # it really swung
    assert np.ptp(e) < 0.01 * kinetic.max()             # semi-implicit Euler: small drift
    c, _, _ = sim(q0, mode="torque_raw", substeps=16, viscous=[3.0] * 6)
    c.step(400)
    s = c.pop_states()[::4]
    e = np.array([energy(q, qd) for q, qd in zip(q_of(s), s["qd"][:, :6], strict=True)])
    assert np.all(np.diff(e) <= 1e-6)                   # viscous friction only takes energy
    assert e[-1] < e[0] - 1.0


def test_coulomb_friction_sticks_below_breakaway_and_slips_above():
    q0 = np.array([0.0, -1.5708, 1.5708, 0.0, 0.0, 0.0])
    coulomb = [3.0, 3.0, 2.0, 0.4, 0.4, 0.4]
    c, drive, _ = sim(q0, mode="torque", coulomb=coulomb, substeps=4)
    c.push_command(0, drive, ARM_SIM_CMD_EXT_TORQUE, [2.9, 0, 0, 0, 0, 0])
    c.push_command(200, drive, ARM_SIM_CMD_EXT_TORQUE, [5.0, 0, 0, 0, 0, 0])
    c.step(400)
    s = c.pop_states()
    assert np.all(q_of(s)[:200] == q0)                  # base held by stiction
    qd_base = s["qd"][200:, 0]
    assert qd_base[-1] > 0
    # base axis is vertical: net (5 - 3) N·m accelerates it; coupling changes it a little
    M = mass_matrix(ARM, q0)
    approx_qdd = 2.0 / M[0, 0]
    measured = (qd_base[-1] - qd_base[50]) / ((len(qd_base) - 1 - 50) * DT)
    assert measured == pytest.approx(approx_qdd, rel=0.15)


def test_servo_tracks_setpoints_within_torque_limits():
    c, _, sp = sim(HOME, with_setpoint=True, **_board_drive())
    target = HOME + np.array([0.5, 0.3, -0.4, 0.6, -0.5, 0.7])
    c.push_command(10, sp, SETPOINT_TARGET, target)
    c.step(4000)
    s = c.pop_states()
    tau = s["tau"][:, :6]
    assert np.all(np.abs(tau) <= MOTION.drive.torque_limit + 1e-9)
    following = np.abs(q_of(s) - s["q_cmd"][:, :6]).max(axis=0)
    assert np.all(following < 0.05), following
    np.testing.assert_allclose(q_of(s)[-1], target, atol=2e-3)


def test_torque_limit_saturates_a_violent_step():
    c, drive, sp = sim(HOME, with_setpoint=False, servo_bandwidth_hz=80.0,
                       torque_limit=[50, 50, 50, 5, 5, 5])
    c.push_command(0, drive, ARM_SIM_CMD_SET_STATE, HOME + 0.5)   # far from q_cmd = HOME
    c.step(50)
    tau = c.pop_states()["tau"][:, :6]
    assert np.abs(tau[:, :3]).max() == pytest.approx(50.0)
    assert np.abs(tau[:, 3:]).max() == pytest.approx(5.0)


def test_estop_brakes_and_latches_until_released_and_reset():
    c, drive, sp = sim(HOME, with_setpoint=True, **_board_drive())
    c.push_command(0, sp, SETPOINT_TARGET, HOME + 0.5)
    c.push_command(300, drive, ARM_SIM_CMD_ESTOP, [1])
    c.push_command(600, drive, ARM_SIM_CMD_ESTOP, [0])
    c.push_command(610, TARGET_CYCLE, CYCLE_RESET)
    c.step(800)
    s = c.pop_states()
    stopped = s["stop_category"] == 0
    first = int(np.argmax(stopped))
    assert 300 <= first <= 302
    frozen = q_of(s)[first + 1:600]
    assert np.all(frozen == frozen[0])                 # brakes hold, gravity or not
    assert s["stop_category"][-1] == NO_STOP


def test_mode_command_and_bad_commands():
    c, drive, _ = sim(HOME)
    mode, gravity = MODES["torque_raw"]
    assert c.push_command(0, drive, DRIVE_CMD_MODE, [mode])
    c.push_command(0, drive, ARM_SIM_CMD_GRAVITY_COMP, [float(gravity)])
    c.push_command(0, drive, DRIVE_CMD_MODE, [7])                   # refused
    c.push_command(0, drive, ARM_SIM_CMD_EXT_TORQUE, [math.nan] * 6)  # refused
    c.push_command(0, drive, 99)                                    # refused
    c.step(20)
    assert c.stats().rejected_commands == 3
    s = c.pop_states()
    assert abs(s["q"][-1, 2] - HOME[2]) > 1e-3         # unpowered: the elbow drops


def test_runs_are_reproducible_bit_for_bit():
    runs = []
    for _ in range(2):
        c, drive, sp = sim(HOME, with_setpoint=True, **_board_drive())
        c.push_command(5, sp, SETPOINT_TARGET, HOME + 0.4)
        c.push_command(400, drive, ARM_SIM_CMD_EXT_TORQUE, [0, 20, -5, 1, 0, 0])
        c.step(800)
        runs.append(c.pop_states())
    for name in ("q", "qd", "tau"):
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_block_from_board_config_and_bad_configuration():
    c = Cycle(1_000_000, 6)
    c.add_block(arm_sim_block_from_config(MOTION, HOME))
    c.step(10)
    assert np.all(q_of(c.pop_states()) == HOME)
    with pytest.raises(NativeError):
        arm_sim_block(ARM, HOME, torque_limit=[0.0] * 6)
    with pytest.raises(NativeError):
        arm_sim_block(ARM, HOME, substeps=0)
    # the board file's bound, held by the block itself: a count past it stalled the cycle
    # (the setup fuzzer's timeout: 2^27 dynamics passes a tick)
    c.add_block(arm_sim_block(ARM, HOME, substeps=64))
    for too_many in (65, 2**27, 2**31 - 1):
        with pytest.raises(NativeError):
            arm_sim_block(ARM, HOME, substeps=too_many)
    with pytest.raises(ValueError):
        arm_sim_block(ARM, HOME[:3])


@settings(max_examples=12, deadline=None)
@given(poses, st.lists(st.floats(-0.6, 0.6), min_size=6, max_size=6).map(np.array),
       st.integers(0, 1500), st.lists(st.floats(-30, 30), min_size=6, max_size=6))
def test_servo_reaches_any_target_and_stays_finite_through_a_bump(q0, move, bump_tick, bump):
    target = np.clip(q0 + move, ARM.q_min, ARM.q_max)
    c, drive, sp = sim(q0, with_setpoint=True, **_board_drive())
    c.push_command(0, sp, SETPOINT_TARGET, target)
    c.push_command(bump_tick, drive, ARM_SIM_CMD_EXT_TORQUE, bump)
    c.push_command(bump_tick + 50, drive, ARM_SIM_CMD_EXT_TORQUE, [0.0] * 6)
    c.step(4000)
    s = c.pop_states()
    assert np.all(np.isfinite(s["q"])) and np.all(np.isfinite(s["tau"]))
    assert np.all(np.abs(s["tau"][:, :6]) <= MOTION.drive.torque_limit + 1e-9)
    np.testing.assert_allclose(q_of(s)[-1], target, atol=5e-3)


@settings(max_examples=10, deadline=None)
@given(poses, st.lists(st.floats(-30, 30), min_size=6, max_size=6).map(np.array))
def test_a_wrench_on_the_tool_acts_through_the_jacobian_transpose(q0, wrench):
    from edge.motion.arm_sim import ARM_SIM_CMD_EXT_WRENCH

    c, drive, _ = sim(q0, mode="torque", substeps=8)
    c.push_command(0, drive, ARM_SIM_CMD_EXT_WRENCH, wrench)
    c.step(3)
    s = c.pop_states()
    qdd = np.linalg.solve(mass_matrix(ARM, q0), ARM.jacobian(q0).T @ wrench)
    np.testing.assert_allclose(s["qd"][1, :6], qdd * DT, rtol=2e-2,
                               atol=1e-3 * np.abs(qdd * DT).max() + 1e-6)

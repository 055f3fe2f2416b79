"""The motion controller on the simulated UR5e arm, in virtual time: state machine, joint,
linear and circular moves, stops, faults and reset, jog deadman, teach and playback, bus
commands, integrators' planners, and reproducibility of the demo program."""

from __future__ import annotations

import numpy as np

from edge.config import load_board
from edge.motion.controller import State
from edge.motion.paths import JointPath, differentiate
from edge.rt.native import logical_states
from edge.rt.runtime import Runtime

READY = np.array([0.3, -1.3, 1.6, -1.87, -1.57, 0.0])


def make_runtime(program: bool = False) -> Runtime:
    board = load_board("sim_arm")
    if not program:
        board.sections.pop("program", None)
    return Runtime(board, virtual_time=True)
# the `rt` fixture (sim_arm enabled and idle) is in tests/motion/conftest.py


def settle(rt: Runtime, max_ticks: int = 20000) -> None:
    """Step until the controller is idle again (or faulted)."""
    for _ in range(max_ticks // 50):
        rt.executor.step(50)
        c = rt.lookup("motion")
        if c.state in (State.IDLE, State.FAULTED, State.DISABLED) and not c.requests \
                and c._planning is None and c._pending_path is None:
            return
    raise AssertionError(f"still {rt.lookup('motion').state} after {max_ticks} ticks")


def q_now(rt: Runtime) -> np.ndarray:
    return rt.executor.history(1)["q"][0][:6].copy()


def test_moves_need_enable_and_disable_needs_standstill() -> None:
    rt = make_runtime()
    r = rt.lookup("motion").move_joint(READY)
    rt.executor.step(200)
    assert r.status == "rejected" and "disabled" in r.reason
    rt.lookup("motion").enable()
    rt.executor.step(50)
    rt.lookup("motion").move_joint(READY)
    rt.executor.step(50)
    d = rt.lookup("motion").disable()
    rt.executor.step(50)
    assert d.status == "rejected" and rt.lookup("motion").state == State.MOVING


def test_move_joint_reaches_the_target(rt: Runtime) -> None:
    r = rt.lookup("motion").move_joint(READY)
    settle(rt)
    assert r.status == "accepted" and rt.lookup("motion").state == State.IDLE
    assert np.max(np.abs(q_now(rt) - READY)) < 1e-4
    assert np.max(np.abs(rt.executor.history(1)["q_cmd"][0][:6] - READY)) < 1e-12


def test_targets_outside_the_joint_limits_are_rejected(rt: Runtime) -> None:
    r = rt.lookup("motion").move_joint([0, 0, 10.0, 0, 0, 0])
    rt.executor.step(50)
    assert r.status == "rejected" and "joint limits" in r.reason


def tool_points(rt: Runtime, states) -> np.ndarray:
    return np.array([rt.lookup("motion").arm.fk(s["q_cmd"][:6])[:3, 3] for s in states])


def test_move_linear_keeps_the_tool_on_the_line(rt: Runtime) -> None:
    rt.lookup("motion").move_joint(READY)
    settle(rt)
    start = rt.lookup("motion").arm.fk(READY)
    goal = start[:3, 3] + np.array([0.15, 0.0, -0.1])
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    r = rt.lookup("motion").move_linear(goal, speed_m_s=0.2)
    settle(rt)
    assert r.status == "accepted"
    pts = tool_points(rt, np.concatenate(seen))
    direction = (goal - start[:3, 3]) / np.linalg.norm(goal - start[:3, 3])
    rel = pts - start[:3, 3]
    off_line = np.linalg.norm(rel - np.outer(rel @ direction, direction), axis=1)
    assert off_line.max() < 1e-5                           # m, commanded tool position
    assert np.linalg.norm(pts[-1] - goal) < 1e-6
    # orientation kept (rpy not given)
    end = rt.lookup("motion").arm.fk(rt.executor.history(1)["q_cmd"][0][:6])
    assert np.allclose(end[:3, :3], start[:3, :3], atol=1e-6)
    speeds = np.linalg.norm(np.diff(pts, axis=0), axis=1) / (10 * rt.period_ns * 1e-9)
    assert speeds.max() <= 0.2 * 1.01


def test_move_circular_stays_on_the_circle(rt: Runtime) -> None:
    rt.lookup("motion").move_joint(READY)
    settle(rt)
    p0 = rt.lookup("motion").arm.fk(READY)[:3, 3]
    via, end = p0 + [0.05, 0.05, 0.0], p0 + [0.0, 0.1, 0.0]
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    r = rt.lookup("motion").move_circular(via, end, speed_m_s=0.2)
    settle(rt)
    assert r.status == "accepted", r.reason
    pts = tool_points(rt, np.concatenate(seen))
    center = p0 + [0.0, 0.05, 0.0]
    assert np.abs(np.linalg.norm(pts - center, axis=1) - 0.05).max() < 1e-5
    assert np.abs(pts[:, 2] - p0[2]).max() < 1e-5
    assert np.linalg.norm(pts[-1] - end) < 1e-6


def test_unreachable_line_is_rejected_with_a_reason(rt: Runtime) -> None:
    r = rt.lookup("motion").move_linear([3.0, 0.0, 0.5])
    settle(rt)
    assert r.status == "rejected" and ("workspace" in r.reason or "singularity" in r.reason)
    assert rt.lookup("motion").state == State.IDLE


def test_stop_brakes_to_standstill_and_returns_to_idle(rt: Runtime) -> None:
    rt.lookup("motion").move_joint(READY)
    rt.executor.step(300)
    assert rt.lookup("motion").state == State.MOVING
    rt.lookup("motion").stop()
    settle(rt)
    assert rt.lookup("motion").state == State.IDLE
    q = q_now(rt)
    assert np.max(np.abs(q - READY)) > 0.05                 # it stopped on the way
    assert np.max(np.abs(rt.executor.history(1)["qd_cmd"][0][:6])) == 0.0


def test_collision_faults_latch_and_reset_needs_enable(rt: Runtime) -> None:
    from edge.motion.arm_sim import ARM_SIM_CMD_EXT_TORQUE

    rt.lookup("motion").move_joint(READY)
    rt.executor.step(400)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_EXT_TORQUE,
                          [0, 60.0, 0, 0, 0, 0])          # a hard contact on the shoulder
    rt.executor.step(300)
    assert rt.lookup("motion").state == State.FAULTED and rt.lookup("motion").fault["code"] != 0
    assert rt.lookup("motion").move_joint(READY) and True
    rt.executor.step(50)
    assert rt.lookup("motion").history[-1].status == "rejected"
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_EXT_TORQUE, [0] * 6)
    rt.executor.step(200)
    rt.lookup("motion").reset()
    rt.executor.step(100)
    assert rt.lookup("motion").state == State.DISABLED
    rt.lookup("motion").enable()
    rt.lookup("motion").move_joint(READY)
    settle(rt)
    assert np.max(np.abs(q_now(rt) - READY)) < 1e-4


def test_jog_stops_by_itself_when_not_repeated(rt: Runtime) -> None:
    q0 = q_now(rt)
    rt.lookup("motion").jog(0, 0.5)
    rt.executor.step(200)
    assert rt.lookup("motion").state == State.MOVING
    settle(rt)
    moved = q_now(rt)[0] - q0[0]
    assert 0.05 < moved < 0.5 * 0.5                         # deadman 0.25 s plus braking
    assert np.allclose(q_now(rt)[1:], q0[1:], atol=1e-4)


def test_teach_records_hand_guided_motion_and_plays_it_back(rt: Runtime) -> None:
    from edge.motion.arm_sim import ARM_SIM_CMD_EXT_TORQUE

    rt.lookup("motion").move_joint(READY)
    settle(rt)
    rt.lookup("motion").teach(True, record_hz=50)
    rt.executor.step(200)
    assert rt.lookup("motion").state == State.TEACH
    # weightless: without a hand the arm stays where it is
    assert np.max(np.abs(q_now(rt) - READY)) < 2e-3
    push = [6.0, 0, 0, 0, 0, 0]        # the hand pushes the base joint (stiction is 3 N·m)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_EXT_TORQUE, push)
    rt.executor.step(600)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_EXT_TORQUE, [0] * 6)
    rt.executor.step(400)
    rt.lookup("motion").teach(False)
    settle(rt)
    rec = rt.lookup("motion").recording.array()
    assert len(rec) > 40 and rec[-1][0] - rec[0][0] > 0.05    # it moved under the hand
    taught_end = q_now(rt)
    rt.lookup("motion").move_joint(READY)
    settle(rt)
    r = rt.lookup("motion").playback()
    settle(rt, 40000)
    assert r.status == "accepted", r.reason
    assert np.max(np.abs(q_now(rt) - taught_end)) < 0.02


def test_bus_commands_reach_the_controller(rt: Runtime) -> None:
    rt.bus.publish("cmd/move_joint", {"id": 1, "args": {"positions": READY.tolist()}})
    settle(rt)
    assert np.max(np.abs(q_now(rt) - READY)) < 1e-4
    assert rt.lookup("motion").history[-1].name == "move_joint"


def test_an_integrators_planner_runs_and_a_bad_one_is_refused(rt: Runtime) -> None:
    def quintic_planner(q0, goal, limits, period_s) -> JointPath:
        """A worked example: a quintic blend to `goal` over 3 s (rest to rest)."""
        tau = np.arange(0, 3.0 + period_s, period_s) / 3.0
        s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        return differentiate(q0 + np.outer(s, np.asarray(goal) - q0), period_s)

    def reckless_planner(q0, goal, limits, period_s) -> JointPath:
        return differentiate(np.vstack([q0, np.asarray(goal)]), period_s)

    rt.lookup("motion").register_planner("quintic", quintic_planner)
    rt.lookup("motion").register_planner("reckless", reckless_planner)
    r = rt.lookup("motion").move_custom("quintic", READY)
    settle(rt)
    assert r.status == "accepted" and np.max(np.abs(q_now(rt) - READY)) < 1e-3
    bad = rt.lookup("motion").move_custom("reckless", READY + 0.5)
    settle(rt)
    assert bad.status == "rejected" and "beyond the joint limits" in bad.reason


def test_the_demo_program_is_reproducible_bit_for_bit() -> None:
    runs = []
    for _ in range(2):
        rt = make_runtime(program=True)
        seen = []
        rt.executor.add_state_listener(lambda tick, recs, seen=seen: seen.append(recs.copy()),
                                       100)
        rt.executor.step(7000)
        assert rt.lookup("program").summary() == {"steps": 8, "completed": 8, "failed": None}
        runs.append(logical_states(np.concatenate(seen)))
    assert runs[0].tobytes() == runs[1].tobytes()


def test_force_mode_yields_to_a_push_on_the_tool(rt: Runtime) -> None:
    from edge.motion.arm_sim import ARM_SIM_CMD_EXT_TORQUE

    c = rt.lookup("motion")
    c.move_joint(READY)
    settle(rt)
    r = c.set_mode("force", deadband_n=2.0, damping_n_s_m=200.0)
    rt.executor.step(50)
    assert r.status == "accepted" and c.mode == "force"
    p0 = c.arm.fk(q_now(rt))[:3, 3]
    push = c.native_arm.jacobian(q_now(rt)).T @ np.array([30.0, 0, 0, 0, 0, 0])   # 30 N +x
    rt.cycle.push_command(-1, c.drive_index, ARM_SIM_CMD_EXT_TORQUE, list(push))
    rt.executor.step(1000)
    moved = c.arm.fk(q_now(rt))[:3, 3] - p0
    assert moved[0] > 0.03 and abs(moved[1]) < 0.3 * moved[0] and abs(moved[2]) < 0.3 * moved[0]
    rt.cycle.push_command(-1, c.drive_index, ARM_SIM_CMD_EXT_TORQUE, [0] * 6)
    rt.executor.step(500)
    p1 = c.arm.fk(q_now(rt))[:3, 3]
    rt.executor.step(500)
    assert np.linalg.norm(c.arm.fk(q_now(rt))[:3, 3] - p1) < 0.01     # no push, (almost) still


def test_velocity_interface_holds_a_speed_and_brakes_without_refresh(rt: Runtime) -> None:
    c = rt.lookup("motion")
    v = np.array([0.2, 0, 0, 0, 0, 0])
    for _ in range(10):                                  # refreshed every 100 ms for 1 s
        c.move_velocity(v)
        rt.executor.step(100)
    qd = rt.executor.history(1)["qd_cmd"][0][:6]
    assert abs(qd[0] - 0.2) < 1e-6 and np.allclose(qd[1:], 0)
    settle(rt)
    assert c.state == State.IDLE and rt.executor.history(1)["qd_cmd"][0][0] == 0.0

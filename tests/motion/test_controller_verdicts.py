"""The motion controller's verdicts, in virtual time on the simulated UR5e arm: every
bus command it takes is answered on `reply/<name>` with what it did; reset says whether
the cycle really cleared the stop; a stop latched while disabled is shown and can be
reset; a late release latches the board's stop category; the request history is
bounded; the demo program reports a rejected last step and `edge run` then exits 3 (EXIT_FAULTED).

Expected verdicts come from the board file as written (its YAML read directly), not from
the controller's own limit functions."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge.config import load_board, parse_board
from edge.errors import EXIT_FAULTED, ConfigError
from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP
from edge.motion.controller import State
from edge.motion.program import Program, ProgramStep
from edge.rt.native import NO_STOP
from edge.rt.runtime import Runtime

BOARD_FILE = Path(__file__).parents[2] / "edge" / "boards" / "sim_arm.yaml"
RAW = yaml.safe_load(BOARD_FILE.read_text())
READY = [0.3, -1.3, 1.6, -1.87, -1.57, 0.0]
ELBOW = 2
FAULT_DEADLINE, FAULT_REQUESTED = 258, 259    # native/cycle.h


def deg(x: float) -> float:
    return x * math.pi / 180.0


ELBOW_MAX_RAD = deg(RAW["motion"]["arm"]["links"][ELBOW]["q_max"])   # angle_unit: deg
BASE_MAX_VELOCITY = RAW["axes"][0]["max_velocity"]


def make_runtime(text: str | None = None, program: Program | None = None) -> Runtime:
    """sim_arm from `text` (the board file edited) with `program` in place of its own."""
    board = parse_board(text, str(BOARD_FILE)) if text else load_board("sim_arm")
    board.sections.pop("program", None)
    if program is not None:
        board.sections["program"] = program
    return Runtime(board, virtual_time=True)


class Replies:
    """What the controller answered on `reply/+`, and its `motion/requests`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt, self.replies, self.requests = rt, [], []
        rt.bus.subscribe("reply/+", callback=lambda m: self.replies.append(m.data))
        rt.bus.subscribe("motion/requests", callback=lambda m: self.requests.append(m.data))

    def send(self, name: str, request_id, args=None, ticks: int = 40) -> dict:
        """Publish cmd/<name> {"id", "args"} and step until its verdict arrives."""
        self.rt.bus.publish(f"cmd/{name}", {"id": request_id, "args": args or {}})
        for _ in range(ticks // 10):
            self.rt.executor.step(10)
            answers = [r for r in self.replies if r["id"] == request_id]
            if answers:
                assert len(answers) == 1
                return answers[0]
        raise AssertionError(f"no reply to {name} {request_id!r} within {ticks} ticks")


def refused(reply: dict, command: str, words: str) -> None:
    assert reply["command"] == command and reply["final"] is True
    assert reply["ok"] is False and reply["status"] == "refused", reply
    assert words in reply["error"], reply


def done(reply: dict, command: str) -> None:
    assert reply["command"] == command and reply["final"] is True
    assert reply["ok"] is True and reply["status"] == "done" and "error" not in reply, reply


def test_bus_commands_get_the_controllers_verdict(rt: Runtime) -> None:
    bus = Replies(rt)
    refused(bus.send("move_joint", 1, {"positions": READY, "speed_scale": 0.0}),
            "move_joint", "speed_scale")
    beyond = list(READY)
    beyond[ELBOW] = 100.0
    refused(bus.send("move_joint", 2, {"positions": beyond}), "move_joint", "joint limits")
    beyond[ELBOW] = ELBOW_MAX_RAD + 0.01
    refused(bus.send("move_joint", 3, {"positions": beyond}), "move_joint", "joint limits")
    refused(bus.send("jog", "j1", {"axis": 0, "velocity": 10.0}), "jog", "axis limit")
    refused(bus.send("jog", "j2", {"axis": 0, "velocity": -1.01 * BASE_MAX_VELOCITY}),
            "jog", "axis limit")
    done(bus.send("jog", "j3", {"axis": 0, "velocity": -0.99 * BASE_MAX_VELOCITY}), "jog")
    done(bus.send("stop", "s1"), "stop")
    rt.executor.step(1500)
    assert rt.lookup("motion").state == State.IDLE
    inside = list(READY)
    inside[ELBOW] = ELBOW_MAX_RAD - 0.01
    done(bus.send("move_joint", 4, {"positions": inside, "speed_scale": 1.0}), "move_joint")
    # every verdict also went to motion/requests with its id
    final = {r["id"]: r["status"] for r in bus.requests}
    assert final == {1: "rejected", 2: "rejected", 3: "rejected", "j1": "rejected",
                     "j2": "rejected", "j3": "accepted", "s1": "accepted", 4: "accepted"}


def test_enable_while_faulted_is_refused_and_a_malformed_command_answered(
        rt: Runtime) -> None:
    bus = Replies(rt)
    done(bus.send("stop", 10, {"category": 2}), "stop")
    rt.executor.step(20)
    assert rt.lookup("motion").state == State.FAULTED
    fault = rt.lookup("motion").fault
    assert fault["code"] == FAULT_REQUESTED and fault["category"] == 2
    refused(bus.send("enable", 11), "enable", "faulted")
    rt.bus.publish("cmd/enable", [1, 2, 3])                  # not a map
    rt.bus.publish("cmd/reset", {"id": 12, "args": "all"})   # args not a map
    rt.executor.step(30)
    refused(bus.replies[-2], "enable", "map")
    assert bus.replies[-2]["id"] is None
    refused(bus.replies[-1], "reset", "map")
    assert bus.replies[-1]["id"] == 12
    refused(bus.send("move_joint", 13, {"positions": READY, "bogus": 1}), "move_joint",
            "bogus")
    done(bus.send("reset", 14), "reset")
    rt.executor.step(20)
    assert rt.lookup("motion").state == State.DISABLED


def estop(rt: Runtime, pressed: bool) -> None:
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_ESTOP, [float(pressed)])


def test_reset_is_refused_while_the_estop_is_pressed(rt: Runtime) -> None:
    bus = Replies(rt)
    estop(rt, True)
    rt.executor.step(50)
    assert rt.lookup("motion").state == State.FAULTED
    refused(bus.send("reset", "r1"), "reset", "e-stop")
    r = rt.lookup("motion").reset()
    rt.executor.step(30)
    assert r.status == "rejected" and "e-stop" in r.reason
    assert rt.lookup("motion").state == State.FAULTED
    refused(bus.send("enable", "e1"), "enable", "faulted")
    estop(rt, False)
    rt.executor.step(10)
    done(bus.send("reset", "r2"), "reset")
    rt.executor.step(20)
    assert rt.lookup("motion").state == State.DISABLED and rt.lookup("motion").fault is None
    done(bus.send("enable", "e2"), "enable")
    assert rt.lookup("motion").state == State.IDLE


def test_a_stop_latched_while_disabled_is_shown_and_reset_clears_it() -> None:
    rt = make_runtime()
    rt.executor.step(150)
    assert rt.lookup("motion").state == State.DISABLED
    rt.request_stop(1)
    rt.executor.step(30)
    assert rt.lookup("motion").state == State.FAULTED
    fault = rt.lookup("motion").fault
    assert fault["code"] == FAULT_REQUESTED and fault["category"] == 1
    e = rt.lookup("motion").enable()
    rt.executor.step(20)
    assert e.status == "rejected"
    r = rt.lookup("motion").reset()
    rt.executor.step(30)
    assert r.status == "accepted" and rt.lookup("motion").state == State.DISABLED
    assert rt.executor.history(1)["stop_category"][0] == NO_STOP
    e = rt.lookup("motion").enable()
    rt.executor.step(20)
    assert e.status == "accepted" and rt.lookup("motion").state == State.IDLE
    rt.executor.step(100)
    assert rt.lookup("motion").state == State.IDLE                     # and it does not fault


def with_miss_category(category: int) -> str:
    text = BOARD_FILE.read_text()
    assert "\nmotion:\n" in text
    return text.replace("\nmotion:\n", f"\nmotion:\n  on_miss_stop_category: {category}\n")


@pytest.mark.parametrize("category, moving", [(None, True), (None, False), (2, True),
                                               (2, False), (0, True)])
def test_a_late_controller_release_latches_the_boards_stop_category(category, moving) -> None:
    """Default (docs/board-file.md): category 1, a controlled stop; the board may say 0
    or 2. A category 1 stop becomes 0 (power off) at standstill, as IEC 60204-1 defines
    it: at once when the arm was still, and the controller's fault still says 1."""
    rt = make_runtime(None if category is None else with_miss_category(category))
    expected = 1 if category is None else category
    rt.lookup("motion").enable()
    rt.executor.step(150)
    if moving:
        rt.lookup("motion").move_joint(READY)
    rt.executor.step(300)
    assert rt.lookup("motion").state == (State.MOVING if moving else State.IDLE)
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    rt.executor.inject_deadline_miss("motion_controller")
    rt.executor.step(600)
    recs = np.concatenate(seen)
    latched = recs[recs["stop_category"] != NO_STOP]
    power_off_at_once = expected == 1 and not moving
    assert len(latched) and latched["stop_category"][0] == (0 if power_off_at_once
                                                            else expected)
    assert set(latched["fault_code"]) == {FAULT_DEADLINE}
    assert rt.lookup("motion").state == State.FAULTED
    assert rt.lookup("motion").fault == {"code": FAULT_DEADLINE, "category": expected,
                               "tick": int(latched["tick"][0])}
    if expected == 2:                                        # power kept: stays 2
        assert set(latched["stop_category"]) == {2}
    assert [f for f in rt.failures(rt.summary()) if "stop latched" in f]   # exit 1


def test_the_miss_stop_category_is_checked_where_the_board_says_it() -> None:
    with pytest.raises(ConfigError, match="on_miss_stop_category.*must be one of 0, 1, 2") \
            as err:
        parse_board(with_miss_category(3), str(BOARD_FILE))
    assert "sim_arm.yaml" in str(err.value)


def test_the_request_history_is_bounded_and_the_counts_cover_everything(
        rt: Runtime) -> None:
    bound = 256                          # docs/motion-controller.md
    for _ in range(bound + 44):
        rt.lookup("motion").set_mode("position")
    rt.lookup("motion").set_mode("bogus")
    rt.executor.step(20)
    assert len(rt.lookup("motion").history) == bound
    assert rt.lookup("motion").history[-1].status == "rejected"
    assert rt.lookup("motion").status()["requests"] == {"accepted": bound + 44 + 1, "rejected": 1}


def test_the_program_summary_reports_a_rejected_last_step() -> None:
    steps = [ProgramStep("enable", {}, 1), ProgramStep("move_joint", {"positions": READY}, 2),
             ProgramStep("move_linear", {"xyz": [3.0, 0.0, 0.5]}, 3)]   # out of reach
    rt = make_runtime(program=Program(steps, "demo.yaml"))
    rt.executor.step(4000)
    summary = rt.lookup("program").summary()
    assert summary["steps"] == 3 and summary["completed"] == 2
    assert summary["failed"] is not None and summary["failed"].startswith("demo.yaml:3:")


def edge_run(board: Path, seconds: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "run", "--virtual-time",
                           "--duration", seconds, "--board", str(board)],
                          capture_output=True, text=True, timeout=120)


def test_a_faulted_run_exits_non_zero(tmp_path: Path) -> None:
    """The shipped demo runs clean (exit 0); a copy whose program ends with a step the
    controller rejects (a line out of the arm's reach) exits 3 and says why."""
    text = BOARD_FILE.read_text()
    last = "  - move_joint: {positions: [0.0, -1.5708, 1.5708, 0.0, 0.0, 0.0]}\n"
    assert last in text
    failing = tmp_path / "failing.yaml"
    failing.write_text(text.replace(last, last + "  - move_linear: {xyz: [3.0, 0.0, 0.5]}\n"))
    proc = edge_run(failing, "8")
    assert proc.returncode == EXIT_FAULTED, proc.stderr
    assert "run faulted: program failed:" in proc.stderr and "step rejected" in proc.stderr
    clean = edge_run(BOARD_FILE, "8")
    assert clean.returncode == 0, clean.stderr

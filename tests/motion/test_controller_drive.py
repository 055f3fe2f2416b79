"""The motion controller against the simulated CiA 402 servo drive (cia402_sim), so its
enable / fault / reset handling is checked against the profile rather than against the
arm simulator's shortcuts. Statusword patterns and controlword commands are written out
from IEC 61800-7-201 / CiA 402 part 2 (state coding and command coding tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import load_board, parse_board
from edge.errors import ConfigError
from edge.motion.cia402_sim import CIA402_SIM_CMD_FAULT, CIA402_SIM_CMD_JAM
from edge.motion.controller import State
from edge.motion.drive import FAULT_DRIVE_ENABLE_TIMEOUT, FAULT_DRIVE_STATE
from edge.rt.native import NO_STOP
from edge.rt.runtime import Runtime

BOARD_FILE = Path(__file__).parents[2] / "edge" / "boards" / "sim_arm.yaml"
READY = np.array([0.3, -1.3, 1.6, -1.87, -1.57, 0.0])
STATUSWORD = {                                         # (mask, value), bits 0-3, 5, 6
    "switch on disabled": (0x4F, 0x40),
    "ready to switch on": (0x6F, 0x21),
    "switched on": (0x6F, 0x23),
    "operation enabled": (0x6F, 0x27),
    "fault reaction active": (0x4F, 0x0F),
    "fault": (0x4F, 0x08),
}
SHUTDOWN, ENABLE_OPERATION, FAULT_RESET_BIT = 0x06, 0x0F, 0x80
FOLLOWING_ERROR_CODE = 0x8611
N = 6


def shows(statusword: int, name: str) -> bool:
    mask, value = STATUSWORD[name]
    return int(statusword) & mask == value


def make_runtime(**drive) -> Runtime:
    raw = yaml.safe_load(BOARD_FILE.read_text())
    raw.pop("program", None)
    raw["motion"]["drive"] = {"kind": "cia402_sim", "switch_on_ms": 5, "enable_ms": 20,
                              "torque_limit": [150, 150, 150, 28, 28, 28],
                              "following_error_window": 0.02,
                              "following_error_timeout_ms": 5, **drive}
    raw["safety"].pop("observer")       # a momentum observer needs the arm's dynamics
    board = parse_board(yaml.safe_dump(raw), str(BOARD_FILE))
    rt = Runtime(board, virtual_time=True)
    rt.records = []
    rt.executor.add_state_listener(lambda tick, recs: rt.records.append(recs.copy()), 10)
    return rt


def records(rt: Runtime) -> np.ndarray:
    return np.concatenate(rt.records)


def settle(rt: Runtime, ticks: int = 6000) -> None:
    for _ in range(ticks // 100):
        rt.executor.step(100)
        if rt.lookup("motion").state != State.MOVING and not rt.lookup("motion").requests:
            return


def test_enable_is_the_controlword_sequence_and_moves_wait_for_operation_enabled() -> None:
    rt = make_runtime()
    rt.executor.step(150)
    assert rt.lookup("motion").state == State.DISABLED
    recs = records(rt)
    assert shows(recs["statusword"][-1, 0], "ready to switch on")    # switched off: shutdown
    assert recs["controlword"][-1, 0] == SHUTDOWN
    e = rt.lookup("motion").enable()
    m = rt.lookup("motion").move_joint(READY)
    rt.executor.step(10)
    assert e.status == "accepted" and rt.lookup("motion").state == State.IDLE
    assert m.status == "pending"                                   # waits for the drive
    settle(rt)
    assert m.status == "accepted", m.reason
    recs = records(rt)
    asked = int(np.argmax(recs["controlword"][:, 0] == ENABLE_OPERATION))
    enabled = int(np.argmax([shows(sw, "operation enabled") for sw in recs["statusword"][:, 0]]))
    # ready to switch on → switched on after 5 ms → operation enabled 20 ms later
    assert shows(recs["statusword"][asked, 0], "ready to switch on")
    switched = int(np.argmax([shows(sw, "switched on") for sw in recs["statusword"][:, 0]]))
    assert switched - asked == 5 and enabled - switched == 20
    assert np.all(recs["controlword"][asked:, :N] == ENABLE_OPERATION)
    assert m.tick >= int(recs["tick"][enabled])          # the move was taken after that
    assert np.all(recs["q"][:enabled, :N] == recs["q"][0, :N])       # nothing moved before
    assert np.max(np.abs(recs["q"][-1, :N] - READY)) < 1e-3
    d = rt.lookup("motion").disable()
    rt.executor.step(30)
    assert d.status == "accepted"
    assert shows(records(rt)["statusword"][-1, 3], "ready to switch on")


def test_a_drive_fault_faults_the_controller_and_reset_is_the_rising_edge() -> None:
    rt = make_runtime()
    rt.executor.step(150)
    rt.lookup("motion").enable()
    rt.executor.step(100)
    rt.lookup("motion").move_joint(READY)
    rt.executor.step(100)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, CIA402_SIM_CMD_JAM, [0, 1])
    rt.executor.step(200)
    assert rt.lookup("motion").state == State.FAULTED
    assert rt.lookup("motion").fault["code"] == FAULT_DRIVE_STATE
    assert rt.lookup("motion").fault["drive_error"] == FOLLOWING_ERROR_CODE
    recs = records(rt)
    assert shows(recs["statusword"][-1, 0], "fault")
    assert int(recs["stop_category"][-1]) == 0
    moved = rt.lookup("motion").move_joint(READY)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, CIA402_SIM_CMD_JAM, [0, 0])
    r = rt.lookup("motion").reset()
    rt.executor.step(50)
    assert moved.status == "rejected"
    assert r.status == "accepted" and rt.lookup("motion").state == State.DISABLED
    recs = records(rt)
    high = np.flatnonzero(recs["controlword"][:, 0] & FAULT_RESET_BIT)
    assert len(high) == 1                                   # one rising edge of bit 7 ...
    k = int(high[0])
    assert shows(recs["statusword"][k, 0], "fault")         # ... sent while in fault
    assert shows(recs["statusword"][k + 1, 0], "switch on disabled")   # transition 15
    assert int(recs["stop_category"][k]) == NO_STOP
    assert shows(recs["statusword"][-1, 0], "ready to switch on")  # off until enabled
    assert int(recs["drive_error"][-1, 0]) == 0
    rt.lookup("motion").enable()
    m = rt.lookup("motion").move_joint(READY)
    settle(rt)
    assert m.status == "accepted" and rt.lookup("motion").state == State.IDLE
    assert np.max(np.abs(records(rt)["q"][-1, :N] - READY)) < 1e-3


def test_a_drive_that_does_not_enable_in_time_latches_a_stop() -> None:
    rt = make_runtime(enable_ms=2000)
    rt.executor.step(150)
    rt.lookup("motion").enable()
    m = rt.lookup("motion").move_joint(READY)
    rt.executor.step(1200)
    assert rt.lookup("motion").state == State.FAULTED
    assert rt.lookup("motion").fault["code"] == FAULT_DRIVE_ENABLE_TIMEOUT
    assert m.status == "rejected"
    assert shows(records(rt)["statusword"][-1, 0], "switched on") or \
        shows(records(rt)["statusword"][-1, 0], "switch on disabled")


def test_drive_fields_are_validated_with_file_line_and_field() -> None:
    text = BOARD_FILE.read_text()
    start = text.index("  drive:\n    kind: arm_sim\n")
    end = text.index("substeps: 4\n", start) + len("substeps: 4\n")
    cases = {
        "quick_stop_option: 3": "quick_stop_option",     # 3 (current limit) is not modelled
        "inertia: [0.1, 0.1, -0.1, 0.1, 0.1, 0.1]": "inertia",
        "enable_ms: -1": "enable_ms",
        "max_velocity: [1, 2]": "max_velocity",
        "brake_ms: 5": "brake_ms",                       # not a field
    }
    for line, field in cases.items():
        board = text[:start] + f"  drive:\n    kind: cia402_sim\n    {line}\n" + text[end:]
        with pytest.raises(ConfigError) as info:
            parse_board(board, str(BOARD_FILE))
        err = info.value
        assert field in err.one_line(), err.one_line()
        assert f":{text[:start].count(chr(10)) + 3}:" in err.one_line(), err.one_line()
    with pytest.raises(ConfigError, match="kind"):
        parse_board(text[:start] + "  drive:\n    kind: ethercat\n" + text[end:],
                    str(BOARD_FILE))


def test_the_arm_simulator_speaks_the_same_contract() -> None:
    """sim_arm (arm_sim): switched off until enabled, operation enabled within two ticks
    of the enable taking effect (no delays), CST (10) while teaching, CSP (8) after."""
    board = load_board("sim_arm")
    board.sections.pop("program")
    rt = Runtime(board, virtual_time=True)
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    rt.executor.step(150)
    recs = np.concatenate(seen)
    assert all(shows(sw, "ready to switch on") for sw in recs["statusword"][2:, 0])
    assert np.all(recs["q"][:, :N] == recs["q"][0, :N])         # the brakes hold
    e = rt.lookup("motion").enable()
    rt.executor.step(40)
    recs = np.concatenate(seen)
    asked = int(np.argmax(recs["controlword"][:, 0] == ENABLE_OPERATION))
    assert int(recs["tick"][asked]) == e.tick + rt.lookup("motion").task.period_ticks  # its effect
    assert shows(recs["statusword"][asked + 1, 0], "operation enabled")
    t = rt.lookup("motion").teach(True)
    rt.executor.step(40)
    assert t.status == "accepted" and int(np.concatenate(seen)["drive_mode"][-1, 0]) == 10
    rt.lookup("motion").teach(False)
    rt.executor.step(200)
    assert int(np.concatenate(seen)["drive_mode"][-1, 0]) == 8


MOVING_STATES = ("operation enabled", "quick stop active", "fault reaction active")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["enable", "disable", "move", "reset", "jam",
                                           "free"]), st.integers(5, 60)),
                min_size=2, max_size=8))
def test_no_motion_unless_the_drive_is_operation_enabled(steps) -> None:
    """Whatever the controller is asked, an axis moves only in ticks its statusword (after
    that tick's write) shows operation enabled, or a quick stop / fault reaction ramp."""
    rt = make_runtime()
    rt.executor.step(120)
    targets = iter([READY, READY - 0.2, READY + 0.1] * 3)
    for what, ticks in steps:
        if what == "enable":
            rt.lookup("motion").enable()
        elif what == "disable":
            rt.lookup("motion").disable()
        elif what == "move":
            rt.lookup("motion").move_joint(next(targets))
        elif what == "reset":
            rt.lookup("motion").reset()
        else:
            rt.cycle.push_command(-1, rt.lookup("motion").drive_index, CIA402_SIM_CMD_JAM,
                                  [1, float(what == "jam")])
        rt.executor.step(ticks)
    recs = records(rt)
    q, sw = recs["q"][:, :N], recs["statusword"][:, :N]
    for k in range(len(recs) - 1):
        for i in np.flatnonzero(q[k + 1] != q[k]):
            assert any(shows(sw[k + 1, i], s) for s in MOVING_STATES), (k, i, hex(sw[k + 1, i]))


def test_a_reset_is_refused_while_the_drive_fault_persists() -> None:
    rt = make_runtime()
    rt.executor.step(150)
    rt.lookup("motion").enable()
    rt.executor.step(100)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, CIA402_SIM_CMD_FAULT, [2, 0x2310])
    rt.executor.step(50)
    assert rt.lookup("motion").state == State.FAULTED
    assert rt.lookup("motion").fault["drive_error"] == 0x2310
    r = rt.lookup("motion").reset()
    rt.executor.step(40)
    assert r.status == "rejected" and "0x2310" in r.reason
    assert rt.lookup("motion").state == State.FAULTED
    assert shows(records(rt)["statusword"][-1, 2], "fault")
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, CIA402_SIM_CMD_FAULT, [2, 0])
    r = rt.lookup("motion").reset()
    rt.executor.step(40)
    assert r.status == "accepted" and rt.lookup("motion").state == State.DISABLED
    assert shows(records(rt)["statusword"][-1, 2], "ready to switch on")

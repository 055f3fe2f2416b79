"""A stop latched with the motion controller's force-limit fault (320) is reported by its
name and message wherever faults are shown: the safety monitor's history (and so the
`safety/faults` topic) and the one line `edge run` prints for a faulted run. The
expected name is the documented one (docs/motion-controller.md, motion-safety.md)."""

import dataclasses

from edge.config import load_board
from edge.motion.safety_monitor import SafetyMonitor
from edge.rt.executor import CYCLE_CMD_STOP
from edge.rt.native import TARGET_CYCLE, Cycle, drive_sim_block
from edge.rt.runtime import Runtime

BOARD = load_board("sim_arm")
ARM = BOARD.sections["motion"].arm
HOME = [a.initial_position for a in BOARD.axes]


def test_the_fault_history_names_the_force_limit():
    cfg = dataclasses.replace(BOARD.sections["safety"], observer=None)
    monitor = SafetyMonitor(ARM, cfg)
    c = Cycle(1_000_000, ARM.n)
    c.add_block(drive_sim_block(HOME))
    monitor.add_to(c.add_block)
    c.step(5)
    c.push_command(c.tick, TARGET_CYCLE, CYCLE_CMD_STOP, (2, 320))
    c.step(5)
    faults = monitor.faults()
    assert [(f.code, f.name) for f in faults] == [(320, "force_limit")]
    assert "unknown" not in faults[0].message and "force" in faults[0].message
    assert faults[0].to_bus()["name"] == "force_limit"


def test_a_faulted_run_names_its_fault():
    faulted = {"motion": {"fault": {"tick": 12, "code": 320, "category": 2}}}
    why = Runtime(BOARD, virtual_time=True).failures(faulted)
    assert len(why) == 1 and "fault 320 (force_limit)" in why[0]
    assert "unknown" not in why[0] and "category 2" in why[0]

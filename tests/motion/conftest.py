"""Shared by the motion controller's tests: the simulated UR5e board in virtual time."""

from __future__ import annotations

import pytest

from edge.config import load_board
from edge.motion.controller import State
from edge.rt.runtime import Runtime


@pytest.fixture
def rt() -> Runtime:
    """The shipped sim_arm board in virtual time, without its demo program, enabled and
    idle."""
    board = load_board("sim_arm")
    board.sections.pop("program", None)
    runtime = Runtime(board, virtual_time=True)
    runtime.lookup("motion").enable()
    runtime.executor.step(150)
    assert runtime.lookup("motion").state == State.IDLE
    return runtime

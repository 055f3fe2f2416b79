"""Attaches the board's `motion:` section to a Runtime: the simulated arm drive.

Interim wiring (issue 4, kinematics part): rate-limited joint setpoints feed the arm_sim
drive, and a demo task moves between the initial pose and an offset pose, as the runtime
does without a motion section. The motion controller replaces the setpoint block and the
demo with its trajectory sampler, safety blocks and program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.motion.arm_sim import arm_sim_block_from_config
from edge.motion.config import MotionConfig
from edge.rt.executor import LetTask
from edge.rt.native import setpoint_block

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

SETPOINT_CMD_TARGET = 1


def attach(runtime: Runtime, motion: MotionConfig) -> None:
    axes = runtime.board.axes
    home = np.array([a.initial_position for a in axes])
    runtime.add_block(arm_sim_block_from_config(motion, home))
    setpoint_index = runtime.add_block(setpoint_block([a.max_velocity for a in axes],
                                                      [a.max_acceleration for a in axes]))
    period_ticks = max(1, int(round(2e9 / runtime.period_ns)))   # every 2 s
    offset = np.clip(home + 0.3, motion.arm.q_min, motion.arm.q_max)
    poses = [home.tolist(), offset.tolist()]

    def demo(ctx) -> None:
        ctx.command(setpoint_index, SETPOINT_CMD_TARGET, poses[(ctx.tick // period_ticks) % 2])

    runtime.add_task(LetTask("demo_moves", demo, period_ticks=period_ticks,
                             deadline_ticks=min(10, period_ticks)))
    runtime.extra_summary["arm"] = lambda: {"model": motion.arm.name, "joints": motion.arm.n,
                                            "drive": "arm_sim"}

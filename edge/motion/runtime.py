"""The board's `motion:` section: the drive (its kind from the board), the trajectory
block, the path player and the motion controller (LET task), offered to other sections as
`motion`.

Stages (edge.rt.runtime.STAGES): the drive in `drive` (reads the arm first, writes its
setpoints last), trajectory then path player (overrides while it plays) in `motion`;
integrators' blocks and the safety section's observer and monitor follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.motion.arm_model import NativeArm
from edge.motion.blocks import MotionBlocks, path_block
from edge.motion.config import MotionConfig, parse_motion
from edge.motion.controller import MotionController
from edge.motion.drive_kinds import drive_block_from_config
from edge.motion.paths import JointLimits
from edge.motion.trajectory import traj_block
from edge.rt.contract import fault_label, fault_message
from edge.sections import Section

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

PATH_SECONDS = 60.0          # longest Cartesian move or playback, per buffer


def joint_limits(runtime: Runtime) -> JointLimits:
    axes = runtime.board.axes
    return JointLimits(np.array([a.max_velocity for a in axes]),
                       np.array([a.max_acceleration for a in axes]),
                       np.array([a.max_jerk for a in axes]))


def attach(runtime: Runtime, motion: MotionConfig) -> MotionController:
    axes = runtime.board.axes
    home = np.array([a.initial_position for a in axes])
    limits = joint_limits(runtime)
    capacity = int(PATH_SECONDS * 1e9 / runtime.period_ns)
    blocks = MotionBlocks(
        drive=runtime.add_block(drive_block_from_config(motion, home), "drive"),
        traj=runtime.add_block(traj_block(limits.velocity, limits.acceleration, limits.jerk),
                               "motion"),
        path=runtime.add_block(path_block(len(axes), capacity), "motion"))
    controller = MotionController(runtime, motion.arm, NativeArm(motion.arm), blocks=blocks,
                                  limits=limits, path_capacity=capacity,
                                  miss_stop_category=motion.on_miss_stop_category)
    runtime.add_component("motion", controller)
    runtime.add_topics("motion/requests", "reply/+")
    runtime.on_connect(lambda: controller.connect(runtime.lookup("safety", None)))
    runtime.add_summary("arm", lambda: {"model": motion.arm.name, "joints": motion.arm.n,
                                        "drive": motion.drive.kind})
    runtime.add_summary("motion", controller.status, failure=stop_latched)
    return controller


def stop_latched(status: dict) -> str | None:
    """The motion controller's summary says a stop is latched at the end of the run."""
    f = status.get("fault")
    if not f:
        return None
    return (f"stop latched at tick {f['tick']}: fault {fault_label(f['code'])}, "
            f"{fault_message(f['code'])}; category {f['category']}")


SECTIONS = (Section("motion", parse_motion, attach),)

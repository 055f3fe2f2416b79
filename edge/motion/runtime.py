"""Attaches the board's `motion:` section to a Runtime: the drive (its kind from the board), the
trajectory block, the path player and the motion controller (LET task).

Block order each tick: drive (reads the arm) → trajectory → path player (overrides while
it plays) → integrators' blocks → then, from the safety section, observer → safety
monitor (last word on what is commanded) → drive writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.motion.arm_model import NativeArm
from edge.motion.config import MotionConfig
from edge.motion.controller import MotionController
from edge.motion.drive_kinds import drive_block_from_config
from edge.motion.paths import JointLimits, JointPath
from edge.motion.trajectory import traj_block
from edge.rt.native import Block, require_native

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

PATH_SECONDS = 60.0          # longest Cartesian move or playback, per buffer


def path_block(n_axes: int, capacity: int) -> Block:
    """The native path player with two buffers of `capacity` samples each."""
    _, lib = require_native()
    return Block("path", lib.path_block_alloc(n_axes, capacity))


def load_path(block: Block, buffer: int, path: JointPath) -> None:
    """Copy a path into one of the player's buffers (the one not playing)."""
    ffi, lib = require_native()
    arrays = [np.ascontiguousarray(a, dtype=float) for a in (path.q, path.qd, path.qdd)]
    ptrs = [ffi.cast("double *", ffi.from_buffer(a)) for a in arrays]
    if lib.path_block_load(block.handle, buffer, *ptrs, len(path.q)) != 0:
        raise RuntimeError(f"path buffer {buffer} is busy or too small for {len(path.q)} "
                           "samples")


def joint_limits(runtime: Runtime) -> JointLimits:
    axes = runtime.board.axes
    return JointLimits(np.array([a.max_velocity for a in axes]),
                       np.array([a.max_acceleration for a in axes]),
                       np.array([a.max_jerk for a in axes]))


def attach(runtime: Runtime, motion: MotionConfig) -> MotionController:
    axes = runtime.board.axes
    home = np.array([a.initial_position for a in axes])
    limits = joint_limits(runtime)
    drive = runtime.add_block(drive_block_from_config(motion, home))
    traj = runtime.add_block(traj_block(limits.velocity, limits.acceleration, limits.jerk))
    capacity = int(PATH_SECONDS * 1e9 / runtime.period_ns)
    runtime.path_block = path_block(len(axes), capacity)
    path = runtime.add_block(runtime.path_block)
    for block in runtime.user_blocks:          # integrators' blocks: before the safety layer
        runtime.add_block(block)
    controller = MotionController(runtime, motion.arm, NativeArm(motion.arm), traj_index=traj,
                                  path_index=path, drive_index=drive, limits=limits,
                                  path_capacity=capacity,
                                  miss_stop_category=motion.on_miss_stop_category)
    runtime.motion = controller
    runtime.extra_summary["arm"] = lambda: {"model": motion.arm.name, "joints": motion.arm.n,
                                            "drive": motion.drive.kind}
    runtime.extra_summary["motion"] = controller.status
    return controller


def run_failures(summary: dict) -> list[str]:
    """Why a run ended faulted, from its summary: the demo program failed, or the motion
    controller ends with a stop latched (one line each; empty when the run is fine)."""
    out = []
    program, motion = summary.get("program") or {}, summary.get("motion") or {}
    if program.get("failed"):
        out.append(f"program failed: {program['failed']}")
    if motion.get("fault"):
        f = motion["fault"]
        out.append(f"stop latched at tick {f['tick']}: fault {f['code']}, category "
                   f"{f['category']}")
    return out

"""The native blocks one motion controller owns (drive, trajectory, path player), and the
path player's Python side. A leaf module: the controller and the section that builds it
both import it, never each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.motion.paths import JointPath
from edge.rt.native import Block, kind_checked, require_native


@dataclass(frozen=True)
class MotionBlocks:
    """The controller's blocks; each one's command index (`.index`) is fixed once the
    runtime placed the blocks in the tick (connect)."""

    drive: Block
    traj: Block
    path: Block


def path_block(n_axes: int, capacity: int) -> Block:
    """The native path player with two buffers of `capacity` samples each."""
    _, lib = require_native()
    return Block("path", lib.path_block_alloc(n_axes, capacity))


def load_path(block: Block, buffer: int, path: JointPath) -> None:
    """Copy a path into one of the player's buffers (the one not playing). Raises
    NativeError if `block` is not a path player."""
    ffi, _ = require_native()
    arrays = [np.ascontiguousarray(a, dtype=float) for a in (path.q, path.qd, path.qdd)]
    ptrs = [ffi.cast("double *", ffi.from_buffer(a)) for a in arrays]
    if kind_checked("path_block_load", block, buffer, *ptrs, len(path.q)) != 0:
        raise RuntimeError(f"path buffer {buffer} is busy or too small for {len(path.q)} "
                           "samples")

"""The drive kinds a board's `motion: drive: {kind: ...}` may name: each kind's board
fields (parser, beside its implementation) and the block it builds. A fieldbus drive is
one more entry here, its block implementing native/drive.h below the same contract.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.motion import arm_sim, cia402_sim

if TYPE_CHECKING:
    from edge.config import Node
    from edge.motion.config import MotionConfig
    from edge.rt.native import Block


@dataclass(frozen=True)
class DriveKind:
    """One kind of drive: its board fields' parser and the block it builds.

    parse(node, n_joints, board) -> the kind's config (with `kind`, and `torque_limit`,
    `viscous` and `coulomb` per joint, which the safety section reads); block(motion,
    home) -> the Block, switched off until the controller enables it.
    """

    parse: Callable[..., Any]
    block: Callable[[MotionConfig, Any], Block]


DRIVE_KINDS: dict[str, DriveKind] = {
    "arm_sim": DriveKind(arm_sim.parse_arm_sim, functools.partial(
        arm_sim.arm_sim_block_from_config, enabled=False)),
    "cia402_sim": DriveKind(cia402_sim.parse_cia402_sim,
                            cia402_sim.cia402_sim_block_from_config),
}
DEFAULT_KIND = "arm_sim"


def parse_drive(node: Node | None, n: int, board) -> Any:
    """`motion: drive:` (default: an arm_sim without friction or torque limits); raises
    ConfigError naming file/line/field."""
    if node is None:
        return DRIVE_KINDS[DEFAULT_KIND].parse(None, n, board)
    kind = node.get("kind", str, DEFAULT_KIND, choices=tuple(DRIVE_KINDS))
    return DRIVE_KINDS[kind].parse(node, n, board)


def drive_block_from_config(motion: MotionConfig, home) -> Block:
    """The drive block the board's `motion:` section describes, starting at home (rad)."""
    return DRIVE_KINDS[motion.drive.kind].block(motion, home)



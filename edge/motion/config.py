"""The board's `motion:` section: the arm's DH and mass table and its drive (a kind from
edge.motion.drive_kinds).

Angles in the board file are radians unless the arm says `angle_unit: deg`; every
error names the file, line and field (edge.config.Node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.config import Board, Node
from edge.motion.kinematics import Link, SerialArm, inertia_matrix, pose

LINK_FIELDS = ("a", "d", "alpha", "theta_offset", "mass", "com", "inertia", "q_min", "q_max",
               "armature")


@dataclass
class MotionConfig:
    arm: SerialArm
    drive: Any                   # its kind's config (edge.motion.drive_kinds)
    # IEC 60204-1 category of the stop a late motion-controller release latches
    on_miss_stop_category: int = 1


def parse_motion(node: Node, board: Board) -> MotionConfig:
    """Parse `motion:` (fields `arm`, `drive`, `on_miss_stop_category`); raises ConfigError
    naming file/line/field."""
    node.only("arm", "drive", "on_miss_stop_category")
    from edge.motion.drive_kinds import parse_drive  # needs the native library

    arm = parse_arm(node.child("arm"), board)
    drive = parse_drive(node.child("drive", None), arm.n, board)
    return MotionConfig(arm=arm, drive=drive, on_miss_stop_category=node.get(
        "on_miss_stop_category", int, 1, choices=(0, 1, 2)))


def parse_arm(node: Node, board: Board) -> SerialArm:
    node.only("convention", "angle_unit", "gravity", "base", "tool", "payload", "links")
    node.get("convention", str, "standard_dh", choices=("standard_dh",))
    unit = node.get("angle_unit", str, "rad", choices=("rad", "deg"))
    k = math.pi / 180.0 if unit == "deg" else 1.0
    gravity = node.floats("gravity", 3, [0.0, 0.0, -9.80665])
    base = _pose(node.child("base", None), k)
    tool = _pose(node.child("tool", None), k)
    links_node = node.child("links")
    items = links_node.sequence()
    if board.axes and len(items) != len(board.axes):
        raise links_node.error(f"the arm has {len(items)} links but the board has "
                               f"{len(board.axes)} axes; they must match one to one")
    if not 1 <= len(items) <= 16:
        raise links_node.error(f"an arm has 1 to 16 links, got {len(items)}")
    links = []
    for i, item in enumerate(items):
        item.only(*LINK_FIELDS)
        q_min = item.get("q_min", float, -math.inf) * k
        q_max = item.get("q_max", float, math.inf) * k
        if q_min > q_max:
            raise item.error(f"q_min ({q_min:g} rad) exceeds q_max ({q_max:g} rad)", "q_max")
        inertia = item.floats("inertia", 6, [0.0] * 6)
        I = inertia_matrix(*inertia)
        if np.any(np.linalg.eigvalsh(I) < -1e-12):
            raise item.error("inertia [ixx, iyy, izz, ixy, ixz, iyz] is not positive "
                             "semi-definite", "inertia")
        links.append(Link(
            a=item.get("a", float), d=item.get("d", float),
            alpha=item.get("alpha", float) * k,
            theta_offset=item.get("theta_offset", float, 0.0) * k,
            mass=item.get("mass", float, 0.0, min=0.0),
            com=item.floats("com", 3, [0.0, 0.0, 0.0]), inertia=I,
            q_min=q_min, q_max=q_max,
            armature=item.get("armature", float, 0.0, min=0.0)))
        if board.axes:
            q0 = board.axes[i].initial_position
            if not q_min <= q0 <= q_max:
                raise item.error(f"axis '{board.axes[i].name}' starts at {q0:g} rad, outside "
                                 f"[{q_min:g}, {q_max:g}]", "q_min")
    arm = SerialArm(links, tool=tool, base=base, gravity=gravity, name=board.name)
    payload = node.child("payload", None)
    if payload is not None:
        payload.only("mass", "com", "inertia")
        p_inertia = inertia_matrix(*payload.floats("inertia", 6, [0.0] * 6))
        if np.any(np.linalg.eigvalsh(p_inertia) < -1e-12):
            raise payload.error("inertia [ixx, iyy, izz, ixy, ixz, iyz] is not positive "
                                "semi-definite", "inertia")
        arm = arm.with_payload(payload.get("mass", float, min=0.0),
                               payload.floats("com", 3, [0.0, 0.0, 0.0]), p_inertia)
    return arm


def _pose(node: Node | None, k: float) -> np.ndarray | None:
    if node is None:
        return None
    node.only("xyz", "rpy")
    xyz = node.floats("xyz", 3, [0.0, 0.0, 0.0])
    rpy = [v * k for v in node.floats("rpy", 3, [0.0, 0.0, 0.0])]
    return pose(xyz, rpy)

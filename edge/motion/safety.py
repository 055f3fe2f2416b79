"""The board's `safety:` section, its checksum, and the fault records.

SafetyConfig is the validated section (SI units: m, rad, s, N·m); `checksum` is the
SHA-256 of its canonical form, reported on start, published on `safety/config`, and
carried into the native block so Python can verify what C is running. The native blocks
that enforce it every tick are built in edge.motion.safety_monitor; faults they record
are published on `safety/faults` (publish_faults). Fault codes, names and messages are
C's (native/faults.def, read as edge.rt.contract.FaultCode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config import Board, Node
from edge.errors import EdgeError, SafetyFault
from edge.motion.kinematics import SerialArm
from edge.rt.contract import (
    FaultCode,
    Input,
    SafetyCommand,
    StopProfile,
    WallKind,
    fault_message,
    fault_name,
)

if TYPE_CHECKING:
    from edge.rt.bus import Bus

log = logging.getLogger(__name__)

FAULT_TOPIC = "safety/faults"
CONFIG_TOPIC = "safety/config"

# Command kinds and the reduced-mode input bit of the safety block (native/safety.h).
SAFETY_CMD_REDUCED, SAFETY_CMD_ENABLE = SafetyCommand.REDUCED, SafetyCommand.ENABLE
SAFETY_IN_REDUCED = Input.REDUCED

# code -> (name, message): every code a fault record or the image can carry (faults.def).
FAULT_CODES: dict[int, tuple[str, str]] = {
    int(code): (fault_name(code), fault_message(code)) for code in FaultCode}

# board spelling -> the native value
WALL_KINDS = {kind.name.lower(): kind for kind in WallKind}
STOP_PROFILES = {"acceleration": StopProfile.ACCEL, "jerk": StopProfile.JERK}


class SafetyConfigLocked(EdgeError):
    """The safety configuration cannot change while the arm is enabled."""


@dataclass
class SafetyWall:
    name: str
    kind: str                                     # plane | keep_out | keep_in
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)   # plane: into the allowed side
    offset: float = 0.0                           # plane: allowed if normal·x >= offset (m)
    lo: tuple[float, float, float] = (0.0, 0.0, 0.0)       # boxes, m, base frame
    hi: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class SafetySphere:
    frame: int                                    # 0..n DH frame, n+1 tool frame
    center: tuple[float, float, float]            # m, in that frame
    radius: float                                 # m


@dataclass
class ObserverConfig:
    gain: list[float]                             # 1/s
    contact_threshold: list[float]                # N·m
    collision_threshold: list[float]              # N·m
    viscous: list[float]                          # N·m·s/rad
    coulomb: list[float]                          # N·m
    coulomb_velocity: float = 0.01                # rad/s
    category: int = 1


@dataclass
class SafetyConfig:
    """Everything the native safety and observer blocks enforce (SI units)."""

    q_min: list[float]
    q_max: list[float]
    v_max: list[float]
    a_max: list[float]
    a_stop: list[float]
    j_stop: list[float]
    tau_max: list[float]
    tcp_speed_max: float = 1.5
    tcp_speed_reduced: float = 0.25
    reduced_transition_s: float = 0.5
    position_tolerance: float = 0.01
    velocity_tolerance: float = 0.1
    acceleration_tolerance: float = 0.0
    tcp_speed_tolerance: float = 0.05
    following_error_max: float = 0.1
    wall_margin: float = 0.01
    stop_profile: str = "jerk"
    fault_category: int = 0
    following_category: int = 0
    estop_category: int = 1
    walls: list[SafetyWall] = field(default_factory=list)
    spheres: list[SafetySphere] = field(default_factory=list)
    observer: ObserverConfig | None = None

    @property
    def n(self) -> int:
        return len(self.q_min)

    def canonical(self) -> dict[str, Any]:
        """The configuration as plain data in a fixed form (what the checksum covers)."""
        return _canonical(asdict(self))

    @property
    def checksum(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the configuration."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          allow_nan=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_canonical(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    v = float(value)
    return v + 0.0 if v == v else v      # -0.0 and 0.0 hash the same


# -- parsing the board section --------------------------------------------------------

SECTION_FIELDS = ("joints", "tcp_speed", "stop", "following_error", "walls", "wall_margin",
                  "spheres", "observer")


def parse_safety(node: Node, board: Board) -> SafetyConfig:
    """Parse `safety:`; raises ConfigError naming file, line and field.

    Needs the `motion:` section (the arm) parsed first; angles are radians.
    """
    node.only(*SECTION_FIELDS)
    motion = board.sections.get("motion")
    if motion is None:
        raise node.error("the safety section needs a motion section (the arm) in the board")
    arm: SerialArm = motion.arm
    n = arm.n
    axes = board.axes

    joints = node.child("joints", None)
    jn = joints if joints is not None else Node({}, node.file, node.line, "safety.joints")
    jn.only("q_min", "q_max", "velocity", "acceleration", "stop_deceleration", "stop_jerk",
            "torque", "position_tolerance", "velocity_tolerance", "acceleration_tolerance")

    def per_joint(name: str, default: list[float], positive: bool = True) -> list[float]:
        values = jn.floats(name, n, default)
        if positive and any(not v > 0 for v in values):
            raise jn.error("must be > 0 for every joint", name)
        return [float(v) for v in values]

    q_min = per_joint("q_min", [link.q_min for link in arm.links], positive=False)
    q_max = per_joint("q_max", [link.q_max for link in arm.links], positive=False)
    for i in range(n):
        if not q_min[i] < q_max[i]:
            raise jn.error(f"joint {i}: q_min ({q_min[i]:g}) must be below q_max "
                           f"({q_max[i]:g})", "q_max")
    v_max = per_joint("velocity", [a.max_velocity for a in axes])
    a_max = per_joint("acceleration", [1.2 * a.max_acceleration for a in axes])
    a_stop = per_joint("stop_deceleration", [1.5 * a.max_acceleration for a in axes])
    j_stop = per_joint("stop_jerk", [10 * v for v in a_stop])
    limit = [float(t) for t in motion.drive.torque_limit]
    if "torque" not in jn.mapping() and not all(map(math.isfinite, limit)):
        raise jn.error("required when the drive has no torque limit", "torque")
    tau_max = per_joint("torque", limit)

    tcp = node.child("tcp_speed", None)
    tn = tcp if tcp is not None else Node({}, node.file, node.line, "safety.tcp_speed")
    tn.only("normal", "reduced", "transition_s", "tolerance")
    normal = tn.get("normal", float, 1.5, min=1e-6)
    reduced = tn.get("reduced", float, 0.25, min=1e-6)
    if reduced > normal:
        raise tn.error(f"reduced ({reduced} m/s) cannot exceed normal ({normal} m/s)",
                       "reduced")

    stop = node.child("stop", None)
    sn = stop if stop is not None else Node({}, node.file, node.line, "safety.stop")
    sn.only("profile", "fault_category", "following_category", "estop_category")

    following = node.get("following_error", float, 0.1, min=0.0)
    cfg = SafetyConfig(
        q_min=q_min, q_max=q_max, v_max=v_max, a_max=a_max, a_stop=a_stop, j_stop=j_stop,
        tau_max=tau_max, tcp_speed_max=normal, tcp_speed_reduced=reduced,
        reduced_transition_s=tn.get("transition_s", float, 0.5, min=0.0),
        tcp_speed_tolerance=tn.get("tolerance", float, 0.05, min=0.0),
        position_tolerance=jn.get("position_tolerance", float, 0.01, min=0.0),
        velocity_tolerance=jn.get("velocity_tolerance", float, 0.1, min=0.0),
        acceleration_tolerance=jn.get("acceleration_tolerance", float, 0.0, min=0.0),
        following_error_max=following,
        wall_margin=node.get("wall_margin", float, 0.01, min=0.0),
        stop_profile=sn.get("profile", str, "jerk", choices=tuple(STOP_PROFILES)),
        fault_category=sn.get("fault_category", int, 0, choices=(0, 1, 2)),
        following_category=sn.get("following_category", int, 0, choices=(0, 1, 2)),
        estop_category=sn.get("estop_category", int, 1, choices=(0, 1, 2)),
        walls=_parse_walls(node.child("walls", None)),
        spheres=_parse_spheres(node.child("spheres", None), arm),
    )
    obs = node.child("observer", None)
    if obs is not None:
        cfg.observer = _parse_observer(obs, n, motion.drive)
    if cfg.walls and not cfg.spheres:
        raise node.error("walls need spheres on the arm to check", "spheres")
    _check_start_pose(node, cfg, arm, [a.initial_position for a in axes])
    return cfg


def _surface_distance(wall: SafetyWall, x: np.ndarray, radius: float) -> float:
    """Signed distance (m) from a sphere's surface to the allowed side's boundary;
    negative when part of the sphere is inside the wall."""
    if wall.kind == "plane":
        return float(np.dot(wall.normal, x) - wall.offset) - radius
    lo, hi = np.array(wall.lo), np.array(wall.hi)
    if wall.kind == "keep_in":
        return float(min(np.min(x - lo), np.min(hi - x))) - radius
    outside = np.maximum(np.maximum(lo - x, x - hi), 0.0)
    if np.any(outside > 0):
        return float(np.linalg.norm(outside)) - radius
    return -float(np.min(np.minimum(x - lo, hi - x))) - radius


def _check_start_pose(node: Node, cfg: SafetyConfig, arm: SerialArm, q0: list[float]) -> None:
    """Refuse a board whose arm starts inside one of its walls (it would fault at the
    first tick and could never be enabled) or beyond its joint limits."""
    for i, q in enumerate(q0):
        if not cfg.q_min[i] <= q <= cfg.q_max[i]:
            raise node.error(f"joint {i} starts at {q:g} rad, outside the safety limits "
                             f"[{cfg.q_min[i]:g}, {cfg.q_max[i]:g}]", "joints")
    if not cfg.walls:
        return
    frames = arm.frames(q0)
    for sphere in cfg.spheres:
        x = (frames[sphere.frame] @ np.array([*sphere.center, 1.0]))[:3]
        for wall in cfg.walls:
            d = _surface_distance(wall, x, sphere.radius)
            if d < 0:
                raise node.error(f"the start pose (the axes' initial_position) puts a "
                                 f"sphere on frame {sphere.frame} {-d * 1e3:.1f} mm inside "
                                 f"wall '{wall.name}'", "walls")


def _parse_walls(node: Node | None) -> list[SafetyWall]:
    if node is None:
        return []
    walls = []
    items = node.sequence()
    if len(items) > 16:
        raise node.error(f"at most 16 walls, got {len(items)}")
    for item in items:
        item.only("name", "plane", "keep_out", "keep_in")
        name = item.get("name", str)
        kinds = [k for k in WALL_KINDS if k in item.mapping()]
        if len(kinds) != 1:
            raise item.error("a wall is exactly one of plane, keep_out, keep_in")
        kind = kinds[0]
        body = item.child(kind)
        if kind == "plane":
            body.only("normal", "offset", "point")
            normal = np.array(body.floats("normal", 3))
            norm = float(np.linalg.norm(normal))
            if norm < 1e-9:
                raise body.error("the normal must not be zero", "normal")
            normal = normal / norm
            if "point" in body.mapping() and "offset" in body.mapping():
                raise body.error("give offset or point, not both", "point")
            offset = (float(normal @ np.array(body.floats("point", 3)))
                      if "point" in body.mapping() else body.get("offset", float, 0.0))
            walls.append(SafetyWall(name, kind, tuple(map(float, normal)), offset))
        else:
            body.only("lo", "hi")
            lo, hi = body.floats("lo", 3), body.floats("hi", 3)
            if any(a >= b for a, b in zip(lo, hi, strict=True)):
                raise body.error("every lo must be below its hi", "hi")
            walls.append(SafetyWall(name, kind, lo=tuple(lo), hi=tuple(hi)))
    return walls


def link_spheres(arm: SerialArm, per_link: int, link_radius: float, tool_radius: float
                 ) -> list[SafetySphere]:
    """Spheres along links 2..n (between consecutive DH frame origins, fixed in frame i)
    and one at the tool point. Link 1 turns about its own axis and is left out."""
    spheres = []
    for i, link in enumerate(arm.links, start=1):
        if i == 1 or per_link <= 0:
            continue
        # origin of frame i-1 seen from frame i: -(a, d sin(alpha), d cos(alpha))
        prev = -np.array([link.a, link.d * math.sin(link.alpha), link.d * math.cos(link.alpha)])
        if np.linalg.norm(prev) < 1e-9:
            continue
        for k in range(1, per_link + 1):
            c = prev * (1 - k / per_link)
            spheres.append(SafetySphere(i, tuple(float(x) + 0.0 for x in c), link_radius))
    spheres.append(SafetySphere(arm.n + 1, (0.0, 0.0, 0.0), tool_radius))
    return spheres


def _parse_spheres(node: Node | None, arm: SerialArm) -> list[SafetySphere]:
    if node is None:
        return link_spheres(arm, 3, 0.05, 0.03)
    node.only("per_link", "link_radius", "tool_radius", "extra")
    spheres = link_spheres(arm, node.get("per_link", int, 3, min=0, max=6),
                           node.get("link_radius", float, 0.05, min=0.0),
                           node.get("tool_radius", float, 0.03, min=0.0))
    extra = node.child("extra", None)
    for item in extra.sequence() if extra is not None else []:
        item.only("frame", "center", "radius")
        spheres.append(SafetySphere(item.get("frame", int, min=0, max=arm.n + 1),
                                    tuple(item.floats("center", 3)),
                                    item.get("radius", float, min=0.0)))
    if len(spheres) > 48:
        raise node.error(f"at most 48 spheres, got {len(spheres)}")
    return spheres


def _parse_observer(node: Node, n: int, drive) -> ObserverConfig:
    node.only("gain", "contact_threshold", "collision_threshold", "viscous", "coulomb",
              "coulomb_velocity", "category")

    def vec(name: str, default: list[float] | None = None) -> list[float]:
        child = node.child(name, None)
        if child is None:
            if default is None:
                raise node.error("required field is missing", name)
            return list(default)
        values = (node.floats(name, n) if isinstance(child.value, list)
                  else [child.scalar(float)] * n)
        if any(v < 0 for v in values):
            raise node.error("must be >= 0", name)
        return values

    gain = vec("gain", [100.0] * n)
    contact = vec("contact_threshold")
    collision = vec("collision_threshold")
    for i in range(n):
        if not gain[i] > 0:
            raise node.error("must be > 0", "gain")
        if not 0 < contact[i] <= collision[i]:
            raise node.error(f"joint {i}: need 0 < contact_threshold <= collision_threshold",
                             "collision_threshold")
    return ObserverConfig(
        gain=gain, contact_threshold=contact, collision_threshold=collision,
        viscous=vec("viscous", [float(v) for v in drive.viscous]),
        coulomb=vec("coulomb", [float(v) for v in drive.coulomb]),
        coulomb_velocity=node.get("coulomb_velocity", float, 0.01, min=1e-6),
        category=node.get("category", int, 1, choices=(0, 1, 2)))


# -- faults -----------------------------------------------------------------------

@dataclass(frozen=True)
class FaultRecord:
    code: int
    name: str
    message: str
    tick: int
    category: int          # latched stop category at the time (255: none)
    axis: int              # joint / sphere index concerned, -1 if none
    value: float           # the measured value that tripped

    def to_bus(self) -> dict[str, Any]:
        return asdict(self)

    def error(self) -> SafetyFault:
        return SafetyFault(self.code, self.message, self.tick)


def publish_faults(bus: Bus, faults: list[FaultRecord]) -> int:
    """Publish each fault on `safety/faults`; returns how many."""
    for f in faults:
        bus.publish(FAULT_TOPIC, f.to_bus())
    return len(faults)

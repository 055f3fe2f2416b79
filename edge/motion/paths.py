"""Joint-space paths sampled once per tick for the native path player.

Cartesian lines and arcs of the tool are time-parametrised along their length with a
time-optimal jerk-limited profile (the same planner as joint moves), mapped through IK
sample by sample (each seeded with the previous solution), and slowed down uniformly
until the joint velocity, acceleration and jerk limits hold on the sampled path.
Recorded teach-ins are smoothed and timed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import EdgeError
from edge.motion.kinematics import rotation_log
from edge.motion.trajectory import plan

MAX_SLOWDOWN_ITERATIONS = 12


class PathError(EdgeError):
    """A path that cannot be followed: unreachable, through a singularity, too long."""


@dataclass
class JointPath:
    """q, qd, qdd: (samples x n) arrays, one row per tick."""

    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray
    period_s: float

    @property
    def duration(self) -> float:
        return len(self.q) * self.period_s


@dataclass(frozen=True)
class JointLimits:
    velocity: np.ndarray
    acceleration: np.ndarray
    jerk: np.ndarray


def _axis_angle_rotation(axis_angle: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    k = axis_angle / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def line(start: np.ndarray, end: np.ndarray):
    """Tool poses along a straight line (orientation by constant angular velocity);
    returns (pose_at(u) for u in [0, 1], length m, rotation rad)."""
    p0, p1 = start[:3, 3], end[:3, 3]
    R0 = start[:3, :3]
    rot = rotation_log(R0.T @ end[:3, :3])

    def pose_at(u: float) -> np.ndarray:
        T = np.eye(4)
        T[:3, 3] = p0 + (p1 - p0) * u
        T[:3, :3] = R0 @ _axis_angle_rotation(rot * u)
        return T

    return pose_at, float(np.linalg.norm(p1 - p0)), float(np.linalg.norm(rot))


def arc(start: np.ndarray, via: np.ndarray, end: np.ndarray):
    """Tool poses along the circle through the start, via and end points (orientation
    from start to end as for a line); returns (pose_at, arc length m, rotation rad)."""
    a, b, c = start[:3, 3], np.asarray(via, float)[:3], end[:3, 3]
    ab, ac = b - a, c - a
    normal = np.cross(ab, ac)
    nn = float(normal @ normal)
    if nn < 1e-12:
        raise PathError("the three points of a circular move are on one line")
    center = a + (np.cross(normal, ab) * (ac @ ac) + np.cross(ac, normal) * (ab @ ab)) / (2 * nn)
    radius = float(np.linalg.norm(a - center))
    u_axis = (a - center) / radius
    w_axis = normal / np.sqrt(nn)
    v_axis = np.cross(w_axis, u_axis)

    def angle_of(p: np.ndarray) -> float:
        d = p - center
        return float(np.arctan2(d @ v_axis, d @ u_axis)) % (2 * np.pi)

    sweep = angle_of(c)
    if angle_of(b) > sweep:
        raise PathError("the via point is not between start and end on the circle")
    orientation, _, rotation = line(start, end)

    def pose_at(s: float) -> np.ndarray:
        T = orientation(s)
        phi = sweep * s
        T[:3, 3] = center + radius * (np.cos(phi) * u_axis + np.sin(phi) * v_axis)
        return T

    return pose_at, radius * sweep, rotation


def cartesian_path(ik_once, q_start: np.ndarray, pose_at, length_m: float,
                   rotation_rad: float, *, speed_m_s: float, accel_m_s2: float,
                   jerk_m_s3: float, angular_speed: float, limits: JointLimits,
                   period_s: float, max_samples: int) -> JointPath:
    """Sample a tool path at the tick rate into joint space, within the limits.
    `ik_once(pose, q_seed)` is a warm-started IK (NativeArm.ik_once) returning IKResult."""
    if length_m < 1e-9 and rotation_rad < 1e-9:
        raise PathError("the target is where the tool already is")
    # path parameter u in [0, 1]: its limits follow from the tool's speed limits
    scale = max(length_m, rotation_rad * speed_m_s / max(angular_speed, 1e-9))
    slow = 1.0
    for _ in range(MAX_SLOWDOWN_ITERATIONS):
        profile = plan([0.0], [1.0], speed_m_s * slow / scale, accel_m_s2 * slow**2 / scale,
                       jerk_m_s3 * slow**3 / scale)
        n = int(np.ceil(profile.duration / period_s)) + 1
        if n > max_samples:
            raise PathError(f"the move takes {n * period_s:.1f} s, longer than the path "
                            f"buffer ({max_samples * period_s:.1f} s)")
        u = profile.sample(np.arange(1, n + 1) * period_s)[0][:, 0]
        seed = np.asarray(q_start, float)
        q = np.empty((n, len(seed)))
        for i, ui in enumerate(u):
            result = ik_once(pose_at(float(ui)), seed)
            if not result.reachable:
                raise PathError(f"the path leaves the workspace at {100 * ui:.0f} % "
                                f"({result.reason})")
            # a joint step far beyond what the velocity limit allows in one tick: the IK
            # solution jumped (a singularity or a flip of configuration on the way)
            if np.any(np.abs(result.q - seed) > 4.0 * limits.velocity * period_s):
                raise PathError(f"the path passes a singularity or a joint flip at "
                                f"{100 * ui:.0f} %")
            q[i] = seed = result.q
        path = differentiate(np.vstack([q_start, q]), period_s)
        ratio = limit_ratio(path, limits)
        if ratio <= 1.0:
            return path
        slow /= ratio ** (1 / 3) * 1.02
    raise PathError("the path cannot be slowed down enough to respect the joint limits")


def differentiate(q: np.ndarray, period_s: float) -> JointPath:
    """Velocities and accelerations (central differences) of a path sampled once per
    tick that starts and ends at rest. The first row is the start, already commanded, so
    it is not among the samples."""
    padded = np.vstack([q[:1], q, q[-1:]])          # at rest on both sides
    qd = np.gradient(padded, period_s, axis=0)
    qdd = np.gradient(qd, period_s, axis=0)
    return JointPath(q[1:].copy(), qd[2:-1].copy(), qdd[2:-1].copy(), period_s)


def limit_ratio(path: JointPath, limits: JointLimits) -> float:
    """max over joints of |v|/v_max, |a|/a_max, |j|/j_max (>1: too fast)."""
    jerk = np.diff(path.qdd, axis=0) / path.period_s if len(path.qdd) > 1 else path.qdd * 0
    return float(max(np.max(np.abs(path.qd) / limits.velocity),
                     np.max(np.abs(path.qdd) / limits.acceleration),
                     np.max(np.abs(jerk) / limits.jerk) if len(jerk) else 0.0))


def playback_path(waypoints: np.ndarray, waypoint_period_s: float, limits: JointLimits,
                  period_s: float, max_samples: int, smoothing: float = 1e-4) -> JointPath:
    """A smooth trajectory through recorded waypoints: a smoothing spline in time (hand
    tremor filtered), slowed down uniformly until the joint limits hold."""
    from scipy.interpolate import make_smoothing_spline

    if len(waypoints) < 4:
        raise PathError("a recording needs at least 4 waypoints")
    t = np.arange(len(waypoints)) * waypoint_period_s
    splines = [make_smoothing_spline(t, waypoints[:, j], lam=smoothing)
               for j in range(waypoints.shape[1])]
    stretch = 1.0
    for _ in range(MAX_SLOWDOWN_ITERATIONS):
        n = int(np.ceil(t[-1] * stretch / period_s)) + 1
        if n > max_samples:
            raise PathError("the recording is longer than the path buffer")
        tau = np.minimum(np.arange(1, n + 1) * period_s / stretch, t[-1])
        q = np.column_stack([s(tau) for s in splines])
        # start exactly at the first waypoint's spline value and hold the last
        path = differentiate(np.vstack([[s(0.0) for s in splines], q]), period_s)
        ratio = limit_ratio(path, limits)
        if ratio <= 1.0:
            return path
        stretch *= ratio ** (1 / 3) * 1.02
    raise PathError("the recording cannot be slowed down enough to respect the joint limits")

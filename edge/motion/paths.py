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
    start: np.ndarray | None = None      # where the arm must be before the first sample

    @property
    def duration(self) -> float:
        return len(self.q) * self.period_s


@dataclass(frozen=True)
class JointLimits:
    velocity: np.ndarray
    acceleration: np.ndarray
    jerk: np.ndarray


def _rotations(axis_angle: np.ndarray, u: np.ndarray) -> np.ndarray:
    """exp(axis_angle * u_k) for every u_k (Rodrigues), shape (len(u), 3, 3)."""
    angle = float(np.linalg.norm(axis_angle))
    out = np.broadcast_to(np.eye(3), (len(u), 3, 3)).copy()
    if angle < 1e-12:
        return out
    k = axis_angle / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    th = angle * u
    return out + np.sin(th)[:, None, None] * K + (1 - np.cos(th))[:, None, None] * (K @ K)


def line(start: np.ndarray, end: np.ndarray):
    """Tool poses along a straight line (orientation turning at a constant rate about one
    axis); returns (poses_at(u) -> (len(u), 4, 4) for u in [0, 1], length m, rotation rad)."""
    p0, p1 = start[:3, 3], end[:3, 3]
    R0 = start[:3, :3]
    rot = rotation_log(R0.T @ end[:3, :3])

    def poses_at(u: np.ndarray) -> np.ndarray:
        T = np.broadcast_to(np.eye(4), (len(u), 4, 4)).copy()
        T[:, :3, 3] = p0 + np.outer(u, p1 - p0)
        T[:, :3, :3] = R0 @ _rotations(rot, u)
        return T

    return poses_at, float(np.linalg.norm(p1 - p0)), float(np.linalg.norm(rot))


def arc(start: np.ndarray, via, end: np.ndarray):
    """Tool poses along the circle through the start, via and end points (orientation
    from start to end as for a line); returns (poses_at, arc length m, rotation rad)."""
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

    def poses_at(u: np.ndarray) -> np.ndarray:
        T = orientation(u)
        phi = sweep * u
        T[:, :3, 3] = center + radius * (np.outer(np.cos(phi), u_axis)
                                         + np.outer(np.sin(phi), v_axis))
        return T

    return poses_at, radius * sweep, rotation


def cartesian_path(solve_path, q_start: np.ndarray, poses_at, length_m: float,
                   rotation_rad: float, *, speed_m_s: float, accel_m_s2: float,
                   jerk_m_s3: float, angular_speed: float, limits: JointLimits,
                   period_s: float, max_samples: int) -> JointPath:
    """Sample a tool path at the tick rate into joint space, within the limits.
    `solve_path(poses, q_seed, max_step)` solves all poses on one branch (native_ik_path)
    and raises PathError where it cannot."""
    if length_m < 1e-9 and rotation_rad < 1e-9:
        raise PathError("the target is where the tool already is")
    # path parameter u in [0, 1]: its limits follow from the tool's speed limits
    scale = max(length_m, rotation_rad * speed_m_s / max(angular_speed, 1e-9))
    q_start = np.asarray(q_start, float)
    # a joint step far beyond what the velocity limit allows in one tick means the IK
    # solution jumped: a singularity or a flip of configuration on the way
    max_step = float(4.0 * limits.velocity.max() * period_s)

    def path_at(slow: float) -> JointPath:
        profile = plan([0.0], [1.0], speed_m_s * slow / scale, accel_m_s2 * slow**2 / scale,
                       jerk_m_s3 * slow**3 / scale)
        u = _samples(profile, period_s, max_samples, "the move")
        q = solve_path(poses_at(u), q_start, max_step)
        return differentiate(np.vstack([q_start, q]), period_s)

    return _within_limits(path_at, limits, "the path")


def _samples(profile, period_s: float, max_samples: int, what: str) -> np.ndarray:
    """A 1-axis profile sampled at every tick after its start."""
    n = int(np.ceil(profile.duration / period_s)) + 1
    if n > max_samples:
        raise PathError(f"{what} takes {n * period_s:.1f} s, longer than the path buffer "
                        f"({max_samples * period_s:.1f} s)")
    return profile.sample(np.arange(1, n + 1) * period_s)[0][:, 0]


def _within_limits(path_at, limits: JointLimits, what: str) -> JointPath:
    """path_at(slow) for slow = 1, then uniformly slower (velocity x slow, acceleration x
    slow^2, jerk x slow^3) until the sampled path keeps the joint limits."""
    slow = 1.0
    for _ in range(MAX_SLOWDOWN_ITERATIONS):
        path = path_at(slow)
        ratio = limit_ratio(path, limits)
        if ratio <= 1.0:
            return path
        slow /= ratio ** (1 / 3) * 1.02
    raise PathError(f"{what} cannot be slowed down enough to respect the joint limits")


def native_ik_path(native_arm, poses: np.ndarray, q0: np.ndarray,
                   max_step: float) -> np.ndarray:
    """All poses through the C IK, warm-started point to point (path_ik in native/path.c)."""
    ffi, lib = native_arm.ffi, native_arm.lib
    n = len(poses)
    poses = np.ascontiguousarray(poses, dtype=float).reshape(n, 16)
    out = np.empty((n, native_arm.n))
    # tight tolerances: the path is differentiated three times at the tick rate, so IK
    # residual noise of e rad shows up as e / period^3 of jerk
    opt = ffi.new("arm_ik_options *", dict(orientation=1, max_iterations=100,
                                           position_tolerance=1e-11,
                                           orientation_tolerance=1e-11, damping=1e-3))
    why = ffi.new("int *")
    k = lib.path_ik(native_arm.model, ffi.cast("double *", ffi.from_buffer(poses)), n,
                    ffi.new("double[]", list(map(float, q0))), opt, max_step,
                    ffi.cast("double *", ffi.from_buffer(out)), why)
    if k < n:
        where = f"{100 * k / n:.0f} % along"
        if why[0] == 1:
            raise PathError(f"the path leaves the workspace {where}")
        raise PathError(f"the path passes a singularity or a joint flip {where}")
    return out


def differentiate(q: np.ndarray, period_s: float) -> JointPath:
    """Velocities and accelerations (central differences) of a path sampled once per
    tick that starts and ends at rest. The first row is the start, already commanded, so
    it is not among the samples."""
    padded = np.vstack([q[:1], q, q[-1:]])          # at rest on both sides
    qd = np.gradient(padded, period_s, axis=0)
    qdd = np.gradient(qd, period_s, axis=0)
    return JointPath(q[1:].copy(), qd[2:-1].copy(), qdd[2:-1].copy(), period_s, q[0].copy())


def limit_ratio(path: JointPath, limits: JointLimits) -> float:
    """max over joints of |v|/v_max, |a|/a_max, |j|/j_max (>1: too fast)."""
    jerk = np.diff(path.qdd, axis=0) / path.period_s if len(path.qdd) > 1 else path.qdd * 0
    return float(max(np.max(np.abs(path.qd) / limits.velocity),
                     np.max(np.abs(path.qdd) / limits.acceleration),
                     np.max(np.abs(jerk) / limits.jerk) if len(jerk) else 0.0))


def playback_path(waypoints: np.ndarray, waypoint_period_s: float, limits: JointLimits,
                  period_s: float, max_samples: int, smoothing: float = 1e-4) -> JointPath:
    """A smooth trajectory through recorded waypoints: a smoothing spline of the
    recording (hand tremor filtered) followed at a speed that starts and ends at rest (a
    jerk-limited profile of recording time), slowed down uniformly until the joint limits
    hold. At full speed it replays the recording at the pace it was taught."""
    from scipy.interpolate import make_smoothing_spline

    if len(waypoints) < 4:
        raise PathError("a recording needs at least 4 waypoints")
    t = np.arange(len(waypoints)) * waypoint_period_s
    splines = [make_smoothing_spline(t, waypoints[:, j], lam=smoothing)
               for j in range(waypoints.shape[1])]
    start = np.array([s(0.0) for s in splines])

    def path_at(slow: float) -> JointPath:
        # recording time as a function of playback time: rate <= slow, from rest to rest
        clock = plan([0.0], [t[-1]], slow, 4.0 * slow**2, 40.0 * slow**3)
        tau = _samples(clock, period_s, max_samples, "the recording")
        q = np.column_stack([s(tau) for s in splines])
        return differentiate(np.vstack([start, q]), period_s)

    return _within_limits(path_at, limits, "the recording")

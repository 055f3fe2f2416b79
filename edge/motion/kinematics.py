"""Serial arms from standard Denavit–Hartenberg parameters: forward kinematics, the
geometric Jacobian and inverse kinematics by damped least squares within joint limits.

Conventions: SI units (m, rad, kg); poses are 4x4 homogeneous matrices in the base frame;
frame i sits at the distal end of link i and joint i turns about z_{i-1} (standard DH:
T_i = Rz(theta_i + offset_i) Tz(d_i) Tx(a_i) Rx(alpha_i)). Revolute joints only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.errors import UnreachableError

__all__ = ["IKResult", "Link", "PathIK", "SerialArm", "UnreachableError", "dh_transform",
           "inertia_matrix", "pose", "rotation_log"]


@dataclass(frozen=True)
class Link:
    """One link of a serial arm: its DH row, mass properties and joint range.

    a, d in m; alpha, theta_offset in rad; mass in kg; com (3,) in m in frame i;
    inertia (3, 3) in kg·m² about the centre of mass, axes of frame i; q_min/q_max in rad;
    armature in kg·m²: the motor's rotor inertia reflected through the gear (ratio² times
    the rotor's), felt about the joint axis only.
    """

    a: float
    d: float
    alpha: float
    theta_offset: float = 0.0
    mass: float = 0.0
    com: np.ndarray = field(default_factory=lambda: np.zeros(3))
    inertia: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    q_min: float = -np.inf
    q_max: float = np.inf
    armature: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "com", np.asarray(self.com, dtype=float).reshape(3))
        inertia = np.asarray(self.inertia, dtype=float)
        if inertia.shape == (6,):          # ixx, iyy, izz, ixy, ixz, iyz
            inertia = inertia_matrix(*inertia)
        object.__setattr__(self, "inertia", inertia.reshape(3, 3))
        if not self.q_min <= self.q_max:
            raise ValueError(f"joint range is empty: q_min {self.q_min} > q_max {self.q_max}")
        if self.mass < 0 or self.armature < 0:
            raise ValueError(f"link mass and armature must be >= 0, got {self.mass}, "
                             f"{self.armature}")


def inertia_matrix(ixx: float, iyy: float, izz: float, ixy: float = 0.0, ixz: float = 0.0,
                   iyz: float = 0.0) -> np.ndarray:
    """The symmetric 3x3 inertia tensor from its six components (kg·m²)."""
    return np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]], dtype=float)


def dh_transform(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """T = Rz(theta) Tz(d) Tx(a) Rx(alpha): frame i in frame i-1."""
    ct, st = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    return np.array([[ct, -st * ca, st * sa, a * ct],
                     [st, ct * ca, -ct * sa, a * st],
                     [0.0, sa, ca, d],
                     [0.0, 0.0, 0.0, 1.0]])


def pose(xyz: Sequence[float] = (0.0, 0.0, 0.0), rpy: Sequence[float] = (0.0, 0.0, 0.0)
         ) -> np.ndarray:
    """A 4x4 pose from a position (m) and roll-pitch-yaw (rad, R = Rz(y) Ry(p) Rx(r))."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    T = np.eye(4)
    T[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    T[:3, 3] = xyz
    return T


def rotation_log(R: np.ndarray) -> np.ndarray:
    """The rotation vector (axis * angle, rad) of a rotation matrix; exact near pi too."""
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])   # 2 sin(a) n
    s = 0.5 * float(np.linalg.norm(w))
    c = 0.5 * (float(np.trace(R)) - 1.0)
    angle = math.atan2(s, c)
    if angle < 1e-6:
        return 0.5 * w                      # sin(angle) ~ angle
    if angle < np.pi - 1e-3:
        return (angle / (2.0 * s)) * w
    # Near pi the antisymmetric part vanishes: the axis comes from the symmetric part,
    # (R + R^T) / 2 = cos(a) I + (1 - cos(a)) n n^T, exactly.
    N = ((R + R.T) / 2.0 - c * np.eye(3)) / (1.0 - c)
    k = int(np.argmax(np.diag(N)))
    n = N[:, k] / math.sqrt(max(N[k, k], 1e-300))
    if np.dot(n, w) < 0:
        n = -n
    return angle * n / np.linalg.norm(n)


@dataclass(frozen=True)
class IKResult:
    """What inverse kinematics found: `q` is the best joint position reached (within
    limits) even when `reachable` is False; errors are in m and rad (orientation_error is
    NaN when the target was rejected as beyond reach without iterating)."""

    q: np.ndarray
    reachable: bool
    position_error: float
    orientation_error: float
    iterations: int
    reason: str = ""

    def require(self) -> np.ndarray:
        """q, or UnreachableError carrying this result."""
        if not self.reachable:
            raise UnreachableError(self)
        return self.q


@dataclass(frozen=True)
class PathIK:
    """Joint positions for the first `reached` points of a path (shape (reached, n));
    `ok` is False when a point could not be followed, `reason` says which and why."""

    q: np.ndarray
    ok: bool
    reached: int
    reason: str = ""


class SerialArm:
    """A serial arm of revolute joints described by standard DH rows.

    base: pose of DH frame 0 in the world (4x4); tool: pose of the tool centre point in
    the last DH frame (4x4); gravity: acceleration of gravity in the world (m/s²).
    """

    def __init__(self, links: Sequence[Link], *, tool: np.ndarray | None = None,
                 base: np.ndarray | None = None,
                 gravity: Sequence[float] = (0.0, 0.0, -9.80665), name: str = "arm") -> None:
        if not 1 <= len(links) <= 16:
            raise ValueError(f"a serial arm has 1 to 16 links, got {len(links)}")
        self.links = tuple(links)
        self.n = len(self.links)
        self.tool = np.eye(4) if tool is None else np.asarray(tool, dtype=float).copy()
        self.base = np.eye(4) if base is None else np.asarray(base, dtype=float).copy()
        self.gravity = np.asarray(gravity, dtype=float).reshape(3)
        self.name = name
        self.a = np.array([lk.a for lk in self.links])
        self.d = np.array([lk.d for lk in self.links])
        self.alpha = np.array([lk.alpha for lk in self.links])
        self.theta_offset = np.array([lk.theta_offset for lk in self.links])
        self.q_min = np.array([lk.q_min for lk in self.links])
        self.q_max = np.array([lk.q_max for lk in self.links])
        self.mass = np.array([lk.mass for lk in self.links])
        self.com = np.array([lk.com for lk in self.links])
        self.inertia = np.array([lk.inertia for lk in self.links])
        self.armature = np.array([lk.armature for lk in self.links])
        # No tool point is farther than this from the base origin (triangle inequality).
        self.reach = float(np.sum(np.hypot(self.a, self.d)) + np.linalg.norm(self.tool[:3, 3]))

    # -- forward kinematics ------------------------------------------------------------
    def _q(self, q: Sequence[float]) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.shape != (self.n,):
            raise ValueError(f"expected {self.n} joint positions, got shape {q.shape}")
        return q

    def joint_transforms(self, q: Sequence[float]) -> list[np.ndarray]:
        """T_i (frame i in frame i-1) for i = 1..n."""
        q = self._q(q)
        return [dh_transform(self.a[i], self.d[i], self.alpha[i], q[i] + self.theta_offset[i])
                for i in range(self.n)]

    def frames(self, q: Sequence[float]) -> np.ndarray:
        """World poses of DH frames 0..n and of the tool: shape (n + 2, 4, 4)."""
        out = np.empty((self.n + 2, 4, 4))
        T = self.base.copy()
        out[0] = T
        for i, Ti in enumerate(self.joint_transforms(q)):
            T = T @ Ti
            out[i + 1] = T
        out[-1] = T @ self.tool
        return out

    def fk(self, q: Sequence[float]) -> np.ndarray:
        """World pose of the tool centre point (4x4)."""
        return self.frames(q)[-1]

    def link_points(self, q: Sequence[float]) -> np.ndarray:
        """Origins of frames 0..n and the tool point, world coordinates: (n + 2, 3) in m."""
        return self.frames(q)[:, :3, 3].copy()

    def com_points(self, q: Sequence[float]) -> np.ndarray:
        """World positions of the links' centres of mass: (n, 3) in m."""
        F = self.frames(q)[1:-1]
        return np.einsum("kij,kj->ki", F[:, :3, :3], self.com) + F[:, :3, 3]

    def jacobian(self, q: Sequence[float]) -> np.ndarray:
        """Geometric Jacobian of the tool point (6, n): rows vx vy vz wx wy wz (world)."""
        return _jacobian_from_frames(self.frames(q))

    def within_limits(self, q: Sequence[float], tol: float = 0.0) -> bool:
        q = self._q(q)
        return bool(np.all(q >= self.q_min - tol) and np.all(q <= self.q_max + tol))

    def clip(self, q: Sequence[float]) -> np.ndarray:
        return np.clip(self._q(q), self.q_min, self.q_max)

    def with_payload(self, mass: float, com: Sequence[float] = (0.0, 0.0, 0.0),
                     inertia: np.ndarray | None = None) -> SerialArm:
        """The same arm carrying a rigid payload on its last link: mass (kg) with its
        centre at com (m, tool frame) and inertia (3x3 kg·m² about that centre, tool axes;
        default a point mass). Everything downstream (dynamics, the C model, the simulated
        drive) then sees it."""
        if mass < 0:
            raise ValueError(f"payload mass must be >= 0, got {mass}")
        last = self.links[-1]
        r_p = self.tool[:3, :3] @ np.asarray(com, dtype=float) + self.tool[:3, 3]
        I_p = np.zeros((3, 3)) if inertia is None else (
            self.tool[:3, :3] @ np.asarray(inertia, dtype=float) @ self.tool[:3, :3].T)
        total = last.mass + mass
        c = (last.mass * last.com + mass * r_p) / total if total > 0 else last.com
        I = (last.inertia + _steiner(last.mass, last.com - c) + I_p + _steiner(mass, r_p - c))
        merged = Link(last.a, last.d, last.alpha, last.theta_offset, total, c, I,
                      last.q_min, last.q_max, last.armature)
        return SerialArm([*self.links[:-1], merged], tool=self.tool, base=self.base,
                         gravity=self.gravity, name=self.name)

    # -- inverse kinematics ------------------------------------------------------------
    def ik(self, target: np.ndarray, q0: Sequence[float], *, orientation: bool = True,
           position_tolerance: float = 1e-7, orientation_tolerance: float = 1e-7,
           max_iterations: int = 200, damping: float = 1e-3, restarts: int = 16,
           seed: int = 0, solve_once: Callable[..., IKResult] | None = None) -> IKResult:
        """Joint positions within limits putting the tool at `target` (4x4 world pose),
        by damped least squares (Levenberg–Marquardt damping) from `q0`.

        With orientation=False only the tool position is matched. When the solve from q0
        stalls, up to `restarts` further starts drawn (deterministically from `seed`)
        inside the joint limits are tried. A target no start reaches gives
        reachable=False with a reason and the closest q found; it never raises.
        solve_once(target, q_start, orientation, position_tolerance,
        orientation_tolerance, max_iterations, damping) replaces the numpy inner solve
        (NativeArm.ik passes the C one).
        """
        solve = solve_once or self._dls
        target = np.asarray(target, dtype=float)
        if target.shape != (4, 4):
            raise ValueError(f"target must be a 4x4 pose, got shape {target.shape}")
        q_start = self.clip(q0)
        distance = float(np.linalg.norm(self.base[:3, :3].T @ (target[:3, 3] - self.base[:3, 3])))
        if distance > self.reach:
            return IKResult(q_start, False, distance - self.reach, math.nan, 0,
                            f"the target is {distance:.4g} m from the base, beyond the arm's "
                            f"reach of {self.reach:.4g} m")
        best = solve(target, q_start, orientation, position_tolerance,
                     orientation_tolerance, max_iterations, damping)
        total = best.iterations
        rng = np.random.default_rng(seed)
        lo = np.where(np.isfinite(self.q_min), self.q_min, -np.pi)
        hi = np.where(np.isfinite(self.q_max), self.q_max, np.pi)
        for _ in range(restarts):
            if best.reachable:
                break
            r = solve(target, rng.uniform(lo, hi), orientation, position_tolerance,
                      orientation_tolerance, max_iterations, damping)
            total += r.iterations
            if r.reachable or _cost(r) < _cost(best):
                best = r
        if best.reachable:
            return IKResult(best.q, True, best.position_error, best.orientation_error, total)
        reason = (f"closest pose within joint limits is {best.position_error:.3g} m and "
                  f"{best.orientation_error:.3g} rad away after {total} iterations "
                  f"from {restarts + 1} starts")
        return IKResult(best.q, False, best.position_error, best.orientation_error, total,
                        reason)

    def ik_path(self, targets: Sequence[np.ndarray], q0: Sequence[float], *,
                max_joint_step: float = 0.2, orientation: bool = True,
                solve_once: Callable[..., IKResult] | None = None, **options) -> PathIK:
        """Joint positions for a sequence of tool poses (a sampled Cartesian path), each
        solved from the previous answer and never restarted elsewhere, so the arm stays on
        one branch. A point that is not reached, or that needs a joint to move more than
        max_joint_step (rad) from the previous point (a singularity or a branch change on
        the way), ends the path there: the result says which point and why."""
        solve = solve_once or self._dls
        opts = dict(position_tolerance=1e-7, orientation_tolerance=1e-7, max_iterations=200,
                    damping=1e-3)
        opts.update(options)
        q_prev = self.clip(q0)
        out = []
        for k, target in enumerate(targets):
            r = solve(np.asarray(target, dtype=float), q_prev, orientation,
                      opts["position_tolerance"], opts["orientation_tolerance"],
                      opts["max_iterations"], opts["damping"])
            if not r.reachable:
                return PathIK(np.array(out).reshape(-1, self.n), False, k,
                              f"point {k} is not reached from point {k - 1}'s solution: "
                              f"{r.position_error:.3g} m, {r.orientation_error:.3g} rad away")
            step = float(np.max(np.abs(r.q - q_prev)))
            if step > max_joint_step:
                return PathIK(np.array(out).reshape(-1, self.n), False, k,
                              f"point {k} needs a joint step of {step:.3g} rad (limit "
                              f"{max_joint_step:g}): a singularity or a branch change")
            out.append(r.q)
            q_prev = r.q
        return PathIK(np.array(out).reshape(-1, self.n), True, len(out), "")

    def _wrap(self, q: np.ndarray) -> np.ndarray:
        """q shifted by one turn into the joint range where that lands inside (the same
        pose, a revolute joint), NaN where it does not."""
        turn = 2.0 * math.pi
        shifted = np.where(q > self.q_max, q - turn, np.where(q < self.q_min, q + turn, q))
        return np.where((shifted >= self.q_min) & (shifted <= self.q_max), shifted, np.nan)

    def _into_range(self, q: np.ndarray) -> np.ndarray:
        """A step past a limit continues one turn round where the range allows (a joint
        with >= 360° of travel stuck at its limit is the commonest IK stall), else stops
        at the limit."""
        wrapped = self._wrap(q)
        return np.where(np.isnan(wrapped), np.clip(q, self.q_min, self.q_max), wrapped)

    def _error(self, target: np.ndarray, T: np.ndarray, orientation: bool) -> np.ndarray:
        e_p = target[:3, 3] - T[:3, 3]
        if not orientation:
            return e_p
        return np.concatenate([e_p, rotation_log(target[:3, :3] @ T[:3, :3].T)])

    def _dls(self, target, q, orientation, tol_p, tol_r, max_iterations, damping) -> IKResult:
        rows = 6 if orientation else 3
        F = self.frames(q)
        e = self._error(target, F[-1], orientation)
        cost = float(e @ e)
        lam = damping
        it = 0
        for it in range(1, max_iterations + 1):  # noqa: B007 - `it` is reported
            if np.linalg.norm(e[:3]) <= tol_p and (rows == 3 or np.linalg.norm(e[3:]) <= tol_r):
                break
            J = _jacobian_from_frames(F)[:rows]
            # Joints at a limit and asked to go further are frozen for this step.
            free = np.ones(self.n, dtype=bool)
            for _ in range(2):
                Jf = J * free
                dq = Jf.T @ _spd_solve(Jf @ Jf.T + lam**2 * np.eye(rows), e)
                blocked = ((((q <= self.q_min) & (dq < 0)) | ((q >= self.q_max) & (dq > 0)))
                           & np.isnan(self._wrap(q + dq)))
                if not np.any(blocked & free):
                    break
                free &= ~blocked
            q_new = self._into_range(q + dq)
            F_new = self.frames(q_new)
            e_new = self._error(target, F_new[-1], orientation)
            cost_new = float(e_new @ e_new)
            if cost_new < cost:
                q, F, e, cost = q_new, F_new, e_new, cost_new
                lam = max(lam / 3.0, 1e-6)   # never quite Gauss-Newton: J may be singular
            else:
                lam *= 4.0
                if lam > 1e3:               # no descent direction left: a local minimum
                    break
        pe = float(np.linalg.norm(e[:3]))
        re = float(np.linalg.norm(e[3:])) if rows == 6 else 0.0
        ok = pe <= tol_p and re <= tol_r
        return IKResult(q, ok, pe, re, it)


def _spd_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A^-1 b for symmetric positive definite A (Cholesky, as the C twin does); zeros if
    A is numerically singular, which the caller then sees as a step that did not help."""
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        return np.zeros_like(b)
    return np.linalg.solve(L.T, np.linalg.solve(L, b))


def _steiner(m: float, r: np.ndarray) -> np.ndarray:
    """Parallel-axis term: inertia of a point mass m at offset r (kg·m²)."""
    return m * (float(r @ r) * np.eye(3) - np.outer(r, r))


def _jacobian_from_frames(F: np.ndarray) -> np.ndarray:
    p = F[-1, :3, 3]
    z = F[:-2, :3, 2]                 # joint i turns about z of frame i-1
    o = F[:-2, :3, 3]
    d = p - o
    lin = np.stack([z[:, 1] * d[:, 2] - z[:, 2] * d[:, 1], z[:, 2] * d[:, 0] - z[:, 0] * d[:, 2],
                    z[:, 0] * d[:, 1] - z[:, 1] * d[:, 0]])
    return np.vstack([lin, z.T])


def _cost(r: IKResult) -> float:
    return r.position_error**2 + r.orientation_error**2

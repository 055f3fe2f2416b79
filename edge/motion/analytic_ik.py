"""Closed-form inverse kinematics for arms shaped like the Universal Robots family (standard
DH, alpha = (90°, 0, 0, 90°, −90°, 0), a1 = a4 = a5 = a6 = 0, d2 = d3 = 0): all up to eight
solutions (shoulder left/right × wrist up/down × elbow up/down), each within the joint
limits, ordered by distance from a reference position.

It is a second, independent method beside the numerical IK of kinematics.py: the tests
use each to check the other, and a planner can pick the branch it wants explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edge.motion.kinematics import SerialArm, dh_transform

_UR_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


def is_ur_shaped(arm: SerialArm, tol: float = 1e-9) -> bool:
    """True when `arm` has the UR family's DH structure (lengths free)."""
    return (arm.n == 6 and np.allclose(arm.alpha, _UR_ALPHA, atol=tol)
            and np.allclose(arm.a[[0, 3, 4, 5]], 0.0, atol=tol)
            and np.allclose(arm.d[[1, 2]], 0.0, atol=tol)
            and abs(arm.a[1]) > tol and abs(arm.a[2]) > tol)


def ur_ik_solutions(arm: SerialArm, target: np.ndarray, q_ref: Sequence[float] | None = None,
                    tol: float = 1e-6, pose_tolerance: float = 1e-9) -> np.ndarray:
    """Every joint position within limits putting the tool at `target` (4x4 world pose),
    shape (k, 6) with k in 0..8 (more when ±360° ranges allow two representations of an
    angle: the one nearest q_ref is kept). Rows are ordered by max |q - q_ref|.

    Every candidate is checked by forward kinematics and kept only if it reproduces the
    target to pose_tolerance (max abs difference of the 4x4 matrices): near a singular
    pose, where the closed form loses digits, a candidate is first polished by a few
    Newton steps of the numerical IK.
    Raises ValueError if the arm is not UR-shaped. At a singular wrist joint 6 is taken
    from q_ref; near one (and near a straight elbow) the pose pins the joints only weakly,
    so the solution returned may differ from the joints that produced the pose.
    """
    if not is_ur_shaped(arm):
        raise ValueError("closed-form IK needs a UR-shaped arm (see is_ur_shaped)")
    q_ref = np.zeros(6) if q_ref is None else np.asarray(q_ref, dtype=float)
    # The DH chain alone: strip base and tool.
    T = np.linalg.inv(arm.base) @ np.asarray(target, dtype=float) @ np.linalg.inv(arm.tool)
    off = arm.theta_offset
    a2, a3 = arm.a[1], arm.a[2]
    d1, d4, d5, d6 = arm.d[0], arm.d[3], arm.d[4], arm.d[5]

    p6 = T[:3, 3]
    p5 = p6 - d6 * T[:3, 2]                 # wrist centre: origin of frame 5
    r_xy = math.hypot(p5[0], p5[1])
    if r_xy < abs(d4) - tol:
        return np.empty((0, 6))             # the wrist centre is inside the shoulder offset
    psi = math.atan2(p5[1], p5[0])
    phi = math.acos(max(-1.0, min(1.0, d4 / r_xy))) if r_xy > 0 else 0.0
    out = []
    for s1 in (1, -1):
        t1 = psi + s1 * phi + math.pi / 2
        c1, sn1 = math.cos(t1), math.sin(t1)
        # With n = (sin t1, -cos t1, 0): cos t5 = z6.n and |sin t5| = |(x6.n, y6.n)|,
        # read off the orientation (well conditioned near the wrist singularity too).
        xn = T[0, 0] * sn1 - T[1, 0] * c1
        yn = T[0, 1] * sn1 - T[1, 1] * c1
        zn = T[0, 2] * sn1 - T[1, 2] * c1
        # the wrist centre must sit at d4 along n for this shoulder branch
        if abs(p5[0] * sn1 - p5[1] * c1 - d4) > 1e-6:
            continue
        for s5 in (1, -1):
            sn5 = s5 * math.hypot(xn, yn)
            t5 = math.atan2(sn5, zn)
            if abs(sn5) < 1e-10:            # wrist singular: joint 6 is free
                t6 = q_ref[5] + off[5]
            else:
                t6 = math.atan2(-yn / sn5, xn / sn5)
            # frames 1..4 from the known joints 1, 5, 6
            T01 = dh_transform(arm.a[0], d1, _UR_ALPHA[0], t1)
            T45 = dh_transform(arm.a[4], d5, _UR_ALPHA[4], t5)
            T56 = dh_transform(arm.a[5], d6, _UR_ALPHA[5], t6)
            T14 = np.linalg.inv(T01) @ T @ np.linalg.inv(T45 @ T56)
            px, pz = T14[0, 3], T14[1, 3]   # the planar 2R problem lies in frame 1's x-y
            r2 = px * px + pz * pz
            c3 = (r2 - a2 * a2 - a3 * a3) / (2 * a2 * a3)
            if abs(c3) > 1 + tol:
                continue
            # A (nearly) straight or folded elbow is one solution, not two a few 1e-8 rad
            # apart: there the distance fixes t3 only to second order, so snapping is exact
            # in the pose to ~1e-12 m.
            straight = 1.0 - abs(c3) < 1e-12 or abs(c3) > 1.0
            for s3 in ((1,) if straight else (1, -1)):
                t3 = (0.0 if c3 > 0 else math.pi) if straight else (
                    s3 * math.acos(max(-1.0, min(1.0, c3))))
                t2 = math.atan2(pz, px) - math.atan2(a3 * math.sin(t3), a2 + a3 * math.cos(t3))
                T12 = dh_transform(a2, 0.0, 0.0, t2)
                T23 = dh_transform(a3, 0.0, 0.0, t3)
                T34 = np.linalg.inv(T12 @ T23) @ T14
                t4 = math.atan2(T34[1, 0], T34[0, 0])
                q = np.array([t1, t2, t3, t4, t5, t6]) - off
                q = _nearest_within_limits(arm, q, q_ref)
                if q is not None:
                    out.append(q)
    target = np.asarray(target, dtype=float)
    out = [q for q in (_polished(arm, target, q, pose_tolerance) for q in out) if q is not None]
    if not out:
        return np.empty((0, 6))
    sols = _unique(np.array(out))
    order = np.argsort(np.max(np.abs(sols - q_ref), axis=1), kind="stable")
    return sols[order]


def _polished(arm: SerialArm, target: np.ndarray, q: np.ndarray, pose_tolerance: float):
    """q if it reproduces the target; else a few Newton steps from it (near a singular
    wrist the closed form loses digits in joint 6); None if it still does not."""
    if np.max(np.abs(arm.fk(q) - target)) <= pose_tolerance:
        return q
    r = arm._dls(target, q, True, pose_tolerance / 10, pose_tolerance / 10, 10, 1e-6)
    if np.max(np.abs(arm.fk(r.q) - target)) <= pose_tolerance:
        return r.q
    return None


def _nearest_within_limits(arm: SerialArm, q: np.ndarray, q_ref: np.ndarray):
    """q with each angle shifted by a multiple of 2π to lie within limits, nearest q_ref;
    None if some joint has no representation within its range."""
    out = np.empty(6)
    for i in range(6):
        base = q[i] + 2 * math.pi * round((q_ref[i] - q[i]) / (2 * math.pi))
        candidates = [base + k * 2 * math.pi for k in (-1, 0, 1)]
        inside = [c for c in candidates if arm.q_min[i] - 1e-12 <= c <= arm.q_max[i] + 1e-12]
        if not inside:
            return None
        out[i] = min(inside, key=lambda c: abs(c - q_ref[i]))
    return out


def _unique(sols: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    keep: list[np.ndarray] = []
    for s in sols:
        if not any(np.max(np.abs(s - k)) < tol for k in keep):
            keep.append(s)
    return np.array(keep)

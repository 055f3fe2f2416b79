"""Rigid-body dynamics of a SerialArm by the recursive Newton–Euler algorithm.

Quantities of link i are expressed in DH frame i (Luh–Walker–Paul form); gravity enters
as an upward acceleration of the base. Torques in N·m, positions in rad.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.motion.kinematics import SerialArm


def inverse_dynamics(arm: SerialArm, q: Sequence[float], qd: Sequence[float],
                     qdd: Sequence[float], *, gravity: Sequence[float] | None = None,
                     payload_mass: float = 0.0,
                     payload_com: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Joint torques tau = M(q) qdd + C(q, qd) qd + g(q) (N·m), shape (n,); M includes
    the links' armature (reflected rotor inertia) on its diagonal.

    gravity: world gravity (m/s²), default the arm's; payload: a point mass (kg) at
    payload_com (m, tool frame) carried by the last link.
    """
    n = arm.n
    q, qd, qdd = (np.asarray(v, dtype=float).reshape(n) for v in (q, qd, qdd))
    g_world = arm.gravity if gravity is None else np.asarray(gravity, dtype=float)
    Ts = arm.joint_transforms(q)
    R = [T[:3, :3] for T in Ts]                       # frame i in frame i-1
    p = [T[:3, :3].T @ T[:3, 3] for T in Ts]          # o_{i-1} -> o_i, in frame i
    mass, com, inertia = _mass_properties(arm, payload_mass, payload_com)

    z0 = np.array([0.0, 0.0, 1.0])
    w = np.zeros(3)
    wd = np.zeros(3)
    acc = -(arm.base[:3, :3].T @ g_world)             # base accelerates up: gravity
    F = np.empty((n, 3))
    N = np.empty((n, 3))
    for i in range(n):
        Rt = R[i].T
        wd = Rt @ (wd + z0 * qdd[i] + _cross(w, z0 * qd[i]))
        w = Rt @ (w + z0 * qd[i])
        acc = Rt @ acc + _cross(wd, p[i]) + _cross(w, _cross(w, p[i]))
        acc_c = acc + _cross(wd, com[i]) + _cross(w, _cross(w, com[i]))
        F[i] = mass[i] * acc_c
        N[i] = inertia[i] @ wd + _cross(w, inertia[i] @ w)

    tau = np.empty(n)
    f = np.zeros(3)          # force of link i+1 on link i, frame i+1
    m = np.zeros(3)          # moment about o_i of link i+1 on link i, frame i+1
    for i in range(n - 1, -1, -1):
        if i + 1 < n:
            f_up, m_up = R[i + 1] @ f, R[i + 1] @ m
        else:
            f_up, m_up = np.zeros(3), np.zeros(3)
        m = m_up + _cross(p[i], f_up) + _cross(p[i] + com[i], F[i]) + N[i]
        f = f_up + F[i]
        tau[i] = m @ R[i][2, :]                       # joint axis z_{i-1} in frame i
    return tau + arm.armature * qdd                   # the rotors, about their own axes


def gravity_torques(arm: SerialArm, q: Sequence[float], **kw) -> np.ndarray:
    """g(q): the torques (N·m) that hold the arm still at q against gravity."""
    zero = np.zeros(arm.n)
    return inverse_dynamics(arm, q, zero, zero, **kw)


def bias_torques(arm: SerialArm, q: Sequence[float], qd: Sequence[float], **kw) -> np.ndarray:
    """C(q, qd) qd + g(q) (N·m)."""
    return inverse_dynamics(arm, q, qd, np.zeros(arm.n), **kw)


def mass_matrix(arm: SerialArm, q: Sequence[float], **kw) -> np.ndarray:
    """M(q) (n, n), symmetric positive definite, column j = RNEA with qdd = e_j."""
    n = arm.n
    zero = np.zeros(n)
    M = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        M[:, j] = inverse_dynamics(arm, q, zero, e, gravity=np.zeros(3), **kw)
    return (M + M.T) / 2.0


def forward_dynamics(arm: SerialArm, q: Sequence[float], qd: Sequence[float],
                     tau: Sequence[float], **kw) -> np.ndarray:
    """qdd (rad/s²) from M(q) qdd = tau - C(q, qd) qd - g(q)."""
    rhs = np.asarray(tau, dtype=float) - bias_torques(arm, q, qd, **kw)
    return np.linalg.solve(mass_matrix(arm, q, **kw), rhs)


def coriolis_transpose_qd(arm: SerialArm, q: Sequence[float], qd: Sequence[float],
                          step: float = 1e-6) -> np.ndarray:
    """C(q, qd)^T qd (N·m), the term the momentum observer needs (C from the Christoffel
    symbols): dM/dt qd - C qd, with dM/dt qd by a central difference of M(q) qd along qd."""
    q, qd = np.asarray(q, dtype=float), np.asarray(qd, dtype=float)
    norm = float(np.max(np.abs(qd)))
    if norm == 0.0:
        return np.zeros(arm.n)
    eps = step / norm
    zero, g0 = np.zeros(arm.n), np.zeros(3)
    m_dot_qd = (inverse_dynamics(arm, q + eps * qd, zero, qd, gravity=g0)
                - inverse_dynamics(arm, q - eps * qd, zero, qd, gravity=g0)) / (2 * eps)
    return m_dot_qd - inverse_dynamics(arm, q, qd, zero, gravity=g0)


def potential_energy(arm: SerialArm, q: Sequence[float]) -> float:
    """Gravitational potential energy of the links (J), zero at the world origin."""
    return float(-np.sum(arm.mass * (arm.com_points(q) @ arm.gravity)))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross spends ~20 µs on argument handling for two 3-vectors; this is ~1 µs.
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def _mass_properties(arm: SerialArm, payload_mass: float, payload_com: Sequence[float]):
    if payload_mass == 0.0:
        return arm.mass, arm.com, arm.inertia
    loaded = arm.with_payload(payload_mass, payload_com)
    return loaded.mass, loaded.com, loaded.inertia

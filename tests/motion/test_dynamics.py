"""Recursive Newton–Euler against independent references: the gradient of potential
energy, kinetic energy from finite-differenced link motion, Lagrange's equations with
Christoffel symbols of the mass matrix, the textbook planar two-link arm, and the C twin."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import load_board
from edge.motion.arm_model import NativeArm
from edge.motion.dynamics import (
    bias_torques,
    coriolis_transpose_qd,
    forward_dynamics,
    gravity_torques,
    inverse_dynamics,
    mass_matrix,
    potential_energy,
)
from edge.motion.kinematics import Link, SerialArm, inertia_matrix

ARM: SerialArm = load_board("sim_arm").sections["motion"].arm
G = 9.80665

vec6 = st.lists(st.floats(-math.pi, math.pi), min_size=6, max_size=6).map(np.array)
small6 = st.lists(st.floats(-2.0, 2.0), min_size=6, max_size=6).map(np.array)


def potential_by_hand(arm, q):
    """Sum of m g z_com over the links, from the FK frames (not from the dynamics code)."""
    F = arm.frames(q)
    return sum(lk.mass * G * (F[i + 1][:3, :3] @ lk.com + F[i + 1][:3, 3])[2]
               for i, lk in enumerate(arm.links))


def kinetic_by_finite_differences(arm, q, qd, h=1e-6):
    """Sum of 1/2 m v_c^2 + 1/2 w^T I w, velocities from FK at q +- h qd, plus the rotors'
    1/2 I_a qd_i^2 (armature: the usual model of a geared motor's rotor)."""
    Fp, Fm, F0 = arm.frames(q + h * qd), arm.frames(q - h * qd), arm.frames(q)
    total = 0.0
    for i, lk in enumerate(arm.links):
        cp = Fp[i + 1][:3, :3] @ lk.com + Fp[i + 1][:3, 3]
        cm = Fm[i + 1][:3, :3] @ lk.com + Fm[i + 1][:3, 3]
        v = (cp - cm) / (2 * h)
        R = F0[i + 1][:3, :3]
        W = (Fp[i + 1][:3, :3] - Fm[i + 1][:3, :3]) / (2 * h) @ R.T
        w = np.array([W[2, 1], W[0, 2], W[1, 0]])
        total += 0.5 * lk.mass * v @ v + 0.5 * w @ (R @ lk.inertia @ R.T) @ w
        total += 0.5 * lk.armature * qd[i] ** 2
    return total


@settings(max_examples=100, deadline=None)
@given(vec6)
def test_gravity_torques_are_the_gradient_of_potential_energy(q):
    h = 1e-6
    grad = np.array([(potential_by_hand(ARM, q + h * e) - potential_by_hand(ARM, q - h * e))
                     / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(gravity_torques(ARM, q), grad, atol=1e-7)
    assert potential_energy(ARM, q) == pytest.approx(potential_by_hand(ARM, q), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(vec6, small6)
def test_mass_matrix_gives_the_kinetic_energy(q, qd):
    M = mass_matrix(ARM, q)
    np.testing.assert_allclose(M, M.T, atol=1e-14)
    assert np.all(np.linalg.eigvalsh(M) > 0)
    assert 0.5 * qd @ M @ qd == pytest.approx(kinetic_by_finite_differences(ARM, q, qd),
                                              rel=1e-7, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(vec6, small6, small6)
def test_inverse_dynamics_satisfies_lagrange_equations(q, qd, qdd):
    # tau = M qdd + c + g with c_i = sum_jk (dM_ij/dq_k - 1/2 dM_jk/dq_i) qd_j qd_k
    h = 1e-6
    dM = np.array([(mass_matrix(ARM, q + h * e) - mass_matrix(ARM, q - h * e)) / (2 * h)
                   for e in np.eye(6)])                     # dM[k] = dM/dq_k
    c = (np.einsum("kij,j,k->i", dM, qd, qd) - 0.5 * np.einsum("ijk,j,k->i", dM, qd, qd))
    expected = mass_matrix(ARM, q) @ qdd + c + gravity_torques(ARM, q)
    np.testing.assert_allclose(inverse_dynamics(ARM, q, qd, qdd), expected, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(vec6, small6, st.lists(st.floats(-20, 20), min_size=6, max_size=6).map(np.array))
def test_forward_dynamics_inverts_inverse_dynamics(q, qd, tau):
    qdd = forward_dynamics(ARM, q, qd, tau)
    np.testing.assert_allclose(inverse_dynamics(ARM, q, qd, qdd), tau, atol=1e-8)


def test_planar_two_link_textbook_formulas():
    l1, l2, lc1, lc2, m1, m2, I1, I2 = 0.8, 0.6, 0.35, 0.25, 3.0, 2.0, 0.12, 0.07
    # DH frame i sits at the far end of link i: the centre of mass is at -(l - lc) on x.
    arm = SerialArm([Link(l1, 0, 0, mass=m1, com=[lc1 - l1, 0, 0],
                          inertia=inertia_matrix(0.01, 0.02, I1)),
                     Link(l2, 0, 0, mass=m2, com=[lc2 - l2, 0, 0],
                          inertia=inertia_matrix(0.01, 0.02, I2))],
                    gravity=(0, -G, 0))
    for q1, q2, qd1, qd2, qdd1, qdd2 in [(0.3, 0.9, 0.5, -1.2, 2.0, -0.4),
                                         (-1.1, 2.2, -2.0, 0.7, -1.0, 3.0)]:
        c1, c2, c12, s2 = math.cos(q1), math.cos(q2), math.cos(q1 + q2), math.sin(q2)
        M = np.array([
            [I1 + I2 + m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * c2),
             I2 + m2 * (lc2**2 + l1 * lc2 * c2)],
            [I2 + m2 * (lc2**2 + l1 * lc2 * c2), I2 + m2 * lc2**2]])
        hh = -m2 * l1 * lc2 * s2
        c = np.array([hh * qd2**2 + 2 * hh * qd1 * qd2, -hh * qd1**2])
        g = np.array([(m1 * lc1 + m2 * l1) * G * c1 + m2 * lc2 * G * c12, m2 * lc2 * G * c12])
        q, qd, qdd = [q1, q2], [qd1, qd2], [qdd1, qdd2]
        np.testing.assert_allclose(mass_matrix(arm, q), M, atol=1e-12)
        np.testing.assert_allclose(gravity_torques(arm, q), g, atol=1e-12)
        np.testing.assert_allclose(bias_torques(arm, q, qd) - g, c, atol=1e-12)
        np.testing.assert_allclose(inverse_dynamics(arm, q, qd, qdd), M @ qdd + c + g,
                                   atol=1e-12)


def test_ur5e_holding_torques_outstretched_by_hand():
    # q = 0 lays the arm along -x with joints 2-4 about -y; the static torque about each
    # of those axes is the sum of m g times the lever arm of every mass beyond it.
    q = np.zeros(6)
    com = ARM.com_points(q)
    origins = ARM.link_points(q)
    for j in (1, 2, 3):                      # joints 2, 3, 4: axis -y through origin j
        lever = com[j:, 0] - origins[j][0]
        # weights (-z) at lever x have moment +m g x about -y; the motor cancels it
        expected = np.sum(ARM.mass[j:] * G * lever)
        assert gravity_torques(ARM, q)[j] == pytest.approx(expected, abs=1e-12)
    assert gravity_torques(ARM, q)[0] == pytest.approx(0.0, abs=1e-12)   # vertical axis


@settings(max_examples=40, deadline=None)
@given(vec6, st.floats(0.1, 5.0), st.lists(st.floats(-0.1, 0.1), min_size=3, max_size=3))
def test_payload_adds_jacobian_transpose_of_its_weight(q, mass, com):
    # A point mass at com (tool frame) needs tau = -J_p^T m g, J_p the Jacobian of its point.
    tool = np.eye(4)
    tool[:3, 3] = com
    at_payload = SerialArm(ARM.links, tool=tool)
    J = at_payload.jacobian(q)[:3]
    delta = gravity_torques(ARM, q, payload_mass=mass, payload_com=com) - gravity_torques(ARM, q)
    np.testing.assert_allclose(delta, -J.T @ (mass * np.array([0, 0, -G])), atol=1e-10)


def test_native_dynamics_match_python():
    native = NativeArm(ARM)
    rng = np.random.default_rng(7)
    for _ in range(50):
        q, qd, qdd = rng.uniform(-math.pi, math.pi, (3, 6))
        np.testing.assert_allclose(native.inverse_dynamics(q, qd, qdd),
                                   inverse_dynamics(ARM, q, qd, qdd), atol=1e-11)
        np.testing.assert_allclose(native.gravity_torques(q), gravity_torques(ARM, q),
                                   atol=1e-11)
        np.testing.assert_allclose(native.mass_matrix(q), mass_matrix(ARM, q), atol=1e-12)
        g = rng.normal(size=3)
        np.testing.assert_allclose(native.inverse_dynamics(q, qd, qdd, gravity=g),
                                   inverse_dynamics(ARM, q, qd, qdd, gravity=g), atol=1e-11)


def test_native_cholesky_solve():
    from edge.rt.native import require_native

    ffi, lib = require_native()
    M = mass_matrix(ARM, np.array([0.1, -1.0, 1.2, 0.3, 0.4, 0.5]))
    b = np.arange(1.0, 7.0)
    A, x = M.copy(), b.copy()
    assert lib.arm_solve_spd(6, ffi.from_buffer("double[]", A), ffi.from_buffer("double[]", x)) == 0
    np.testing.assert_allclose(M @ x, b, atol=1e-10)
    bad = -np.eye(6)
    assert lib.arm_solve_spd(6, ffi.from_buffer("double[]", bad),
                             ffi.from_buffer("double[]", b.copy())) == -1


@settings(max_examples=30, deadline=None)
@given(vec6, small6)
def test_momentum_observer_terms_are_the_kinetic_energy_gradient(q, qd):
    # With Christoffel C, C^T qd = dM/dt qd - C qd = dT/dq where T = 1/2 qd^T M(q) qd.
    h = 1e-6
    dT = np.array([(0.5 * qd @ mass_matrix(ARM, q + h * e) @ qd
                    - 0.5 * qd @ mass_matrix(ARM, q - h * e) @ qd) / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(coriolis_transpose_qd(ARM, q, qd), dT, atol=1e-6)
    p, beta = NativeArm(ARM).momentum(q, qd)
    np.testing.assert_allclose(p, mass_matrix(ARM, q) @ qd, atol=1e-12)
    np.testing.assert_allclose(beta, gravity_torques(ARM, q) - dT, atol=1e-6)


def test_payload_from_the_board_is_carried_everywhere():
    from pathlib import Path

    from edge.config import parse_board

    text = Path(load_board("sim_arm").file).read_text()
    text = text.replace("    tool: {xyz: [0.0, 0.0, 0.0]}\n",
                        "    tool: {xyz: [0.0, 0.0, 0.05]}\n"
                        "    payload: {mass: 2.0, com: [0.0, 0.01, 0.04],"
                        " inertia: [0.002, 0.002, 0.001, 0, 0, 0]}\n")
    loaded = parse_board(text, "b.yaml").sections["motion"].arm
    q = np.array([0.3, -1.1, 1.4, -0.2, 0.7, 0.5])
    tool = np.eye(4)
    tool[:3, 3] = [0.0, 0.01, 0.09]                   # payload centre in the last frame
    bare = SerialArm(ARM.links, tool=tool)
    J = bare.jacobian(q)[:3]
    np.testing.assert_allclose(gravity_torques(loaded, q) - gravity_torques(ARM, q),
                               -J.T @ (2.0 * np.array([0, 0, -G])), atol=1e-10)
    # its own inertia adds R I R^T about the last joint axis for a pure last-joint motion
    e6 = np.eye(6)[5]
    z = ARM.frames(q)[5][:3, 2]
    R = ARM.frames(q)[6][:3, :3]
    r = bare.fk(q)[:3, 3] - ARM.frames(q)[5][:3, 3]
    r_perp = r - (r @ z) * z
    extra = z @ R @ np.diag([0.002, 0.002, 0.001]) @ R.T @ z + 2.0 * r_perp @ r_perp
    assert e6 @ mass_matrix(loaded, q) @ e6 - e6 @ mass_matrix(ARM, q) @ e6 == pytest.approx(
        extra, rel=1e-9)
    np.testing.assert_allclose(NativeArm(loaded).gravity_torques(q), gravity_torques(loaded, q),
                               atol=1e-11)

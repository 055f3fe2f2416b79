"""Kinematics of the UR5e board arm against independent references: the published DH and
mass table, a product-of-exponentials model derived by hand from the arm's zero pose, a
hand-solved planar arm, finite differences and scipy's rotations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.spatial.transform import Rotation

from edge.config import load_board, parse_board
from edge.errors import ConfigError, NativeError
from edge.motion.analytic_ik import is_ur_shaped, ur_ik_solutions
from edge.motion.arm_model import NativeArm
from edge.motion.kinematics import Link, SerialArm, UnreachableError, pose, rotation_log

# Universal Robots, "DH parameters for calculations of kinematics and dynamics", UR5e.
UR5E_A = [0.0, -0.425, -0.3922, 0.0, 0.0, 0.0]
UR5E_D = [0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996]
UR5E_ALPHA = [math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0]
UR5E_MASS = [3.761, 8.058, 2.846, 1.37, 1.3, 0.365]
UR5E_COM = [[0, -0.02561, 0.00193], [0.2125, 0, 0.11336], [0.15, 0, 0.0265],
            [0, -0.0018, 0.01634], [0, 0.0018, 0.01634], [0, 0, -0.001159]]

BOARD = load_board("sim_arm")
ARM: SerialArm = BOARD.sections["motion"].arm
HOME_Q = np.array([a.initial_position for a in BOARD.axes])

joint_positions = st.lists(st.floats(-math.pi, math.pi), min_size=6, max_size=6).map(np.array)


def ur5e_poe(q):
    """UR5e tool pose by the product of exponentials, with screw axes read off the zero
    pose by hand (DH frames at q = 0: the arm lies along -x, joint 2..4 axes along -y)."""
    a2, a3 = UR5E_A[1], UR5E_A[2]
    d1, d4, d5, d6 = UR5E_D[0], UR5E_D[3], UR5E_D[4], UR5E_D[5]
    axes = [((0, 0, 1), (0, 0, 0)),
            ((0, -1, 0), (0, 0, d1)),
            ((0, -1, 0), (a2, 0, d1)),
            ((0, -1, 0), (a2 + a3, 0, d1)),
            ((0, 0, -1), (a2 + a3, -d4, d1)),
            ((0, -1, 0), (a2 + a3, -d4, d1 - d5))]
    home = np.eye(4)
    home[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    home[:3, 3] = [a2 + a3, -(d4 + d6), d1 - d5]
    T = np.eye(4)
    for (w, p), qi in zip(axes, q, strict=True):
        w, p = np.array(w, float), np.array(p, float)
        v = -np.cross(w, p)
        twist = np.zeros((4, 4))
        twist[:3, :3] = [[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]]
        twist[:3, 3] = v
        T = T @ expm(twist * qi)
    return T @ home


def test_board_carries_the_published_ur5e_table():
    assert ARM.n == 6
    np.testing.assert_allclose(ARM.a, UR5E_A, atol=1e-12)
    np.testing.assert_allclose(ARM.d, UR5E_D, atol=1e-12)
    np.testing.assert_allclose(ARM.alpha, UR5E_ALPHA, atol=1e-12)
    np.testing.assert_allclose(ARM.mass, UR5E_MASS, atol=1e-12)
    np.testing.assert_allclose(ARM.com, UR5E_COM, atol=1e-12)
    assert np.all(ARM.armature > 0)
    for inertia in ARM.inertia:
        np.testing.assert_allclose(inertia, inertia.T)
        assert np.all(np.linalg.eigvalsh(inertia) > 0)


def test_zero_pose_by_hand():
    T = ARM.fk(np.zeros(6))
    np.testing.assert_allclose(T[:3, 3], [-0.8172, -0.2329, 0.0628], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(joint_positions)
def test_fk_matches_product_of_exponentials(q):
    np.testing.assert_allclose(ARM.fk(q), ur5e_poe(q), atol=1e-12)


def test_planar_two_link_by_hand():
    l1, l2 = 0.7, 0.4
    arm = SerialArm([Link(l1, 0, 0), Link(l2, 0, 0)])
    for q1, q2 in [(0.3, -1.1), (2.0, 0.5), (-0.7, 2.9)]:
        T = arm.fk([q1, q2])
        assert T[0, 3] == pytest.approx(l1 * math.cos(q1) + l2 * math.cos(q1 + q2), abs=1e-14)
        assert T[1, 3] == pytest.approx(l1 * math.sin(q1) + l2 * math.sin(q1 + q2), abs=1e-14)
        assert math.atan2(T[1, 0], T[0, 0]) == pytest.approx(
            math.atan2(math.sin(q1 + q2), math.cos(q1 + q2)), abs=1e-14)
        J = arm.jacobian([q1, q2])
        np.testing.assert_allclose(J[:2], [
            [-l1 * math.sin(q1) - l2 * math.sin(q1 + q2), -l2 * math.sin(q1 + q2)],
            [l1 * math.cos(q1) + l2 * math.cos(q1 + q2), l2 * math.cos(q1 + q2)]], atol=1e-14)
        np.testing.assert_allclose(J[5], [1, 1])


def test_tool_and_base_offsets_compose():
    tool = pose([0.01, -0.02, 0.15], [0.1, 0.2, 0.3])
    base = pose([0.5, 0.0, 0.8], [math.pi, 0, 0])       # ceiling mount
    arm = SerialArm(ARM.links, tool=tool, base=base)
    q = np.array([0.2, -1.0, 1.3, 0.4, -0.6, 0.9])
    np.testing.assert_allclose(arm.fk(q), base @ ur5e_poe(q) @ tool, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(joint_positions)
def test_jacobian_matches_finite_differences(q):
    h = 1e-6
    J = ARM.jacobian(q)
    for i in range(6):
        dq = np.zeros(6)
        dq[i] = h
        Tp, Tm = ARM.fk(q + dq), ARM.fk(q - dq)
        np.testing.assert_allclose(J[:3, i], (Tp[:3, 3] - Tm[:3, 3]) / (2 * h), atol=1e-8)
        dR = (Tp[:3, :3] - Tm[:3, :3]) / (2 * h) @ ARM.fk(q)[:3, :3].T   # = skew(w)
        np.testing.assert_allclose(J[3:, i], [dR[2, 1], dR[0, 2], dR[1, 0]], atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-math.pi, math.pi), min_size=3, max_size=3).map(np.array))
def test_rotation_log_matches_scipy(rotvec):
    R = Rotation.from_rotvec(rotvec).as_matrix()
    np.testing.assert_allclose(Rotation.from_rotvec(rotation_log(R)).as_matrix(), R,
                               atol=1e-9)
    assert np.linalg.norm(rotation_log(R)) <= math.pi + 1e-12


def test_rotation_log_at_exactly_pi():
    for axis in np.eye(3).tolist() + [[1 / math.sqrt(2), 1 / math.sqrt(2), 0]]:
        R = Rotation.from_rotvec(np.pi * np.array(axis)).as_matrix()
        w = rotation_log(R)
        assert np.linalg.norm(w) == pytest.approx(math.pi)
        np.testing.assert_allclose(Rotation.from_rotvec(w).as_matrix(), R, atol=1e-12)


def test_link_points_are_frame_origins_and_tool():
    q = np.array([0.3, -1.2, 1.0, -0.4, 0.8, 0.1])
    pts = ARM.link_points(q)
    assert pts.shape == (8, 3)
    np.testing.assert_allclose(pts[0], 0)
    np.testing.assert_allclose(pts[1], [0, 0, UR5E_D[0]], atol=1e-15)  # shoulder height
    np.testing.assert_allclose(pts[-1], ur5e_poe(q)[:3, 3], atol=1e-12)


# -- inverse kinematics ------------------------------------------------------------------
reachable_q = st.tuples(st.floats(-3, 3), st.floats(-2.8, -0.3), st.floats(0.3, 2.5),
                        st.floats(-3, 3), st.floats(0.3, 2.8), st.floats(-3, 3)).map(np.array)


@settings(max_examples=40, deadline=None)
@given(reachable_q, st.lists(st.floats(-0.3, 0.3), min_size=6, max_size=6).map(np.array))
def test_ik_round_trip(q_true, perturbation):
    target = ur5e_poe(q_true)
    r = ARM.ik(target, q_true + perturbation)
    assert r.reachable, r.reason
    np.testing.assert_allclose(ur5e_poe(r.q), target, atol=1e-6)
    assert ARM.within_limits(r.q)


def test_ik_from_far_start_uses_restarts_and_reaches():
    q_true = np.array([1.0, -2.0, 2.0, -1.5, 1.2, 0.4])
    target = ur5e_poe(q_true)
    r = ARM.ik(target, -q_true)
    assert r.reachable, r.reason
    np.testing.assert_allclose(ARM.fk(r.q), target, atol=1e-6)


def test_ik_position_only():
    target = pose([0.3, 0.2, 0.4])
    r = ARM.ik(target, np.array([0, -1.5, 1.5, 0, 0, 0]), orientation=False)
    assert r.reachable, r.reason
    np.testing.assert_allclose(ARM.fk(r.q)[:3, 3], [0.3, 0.2, 0.4], atol=1e-7)


def test_ik_out_of_reach_is_reported_not_raised():
    reach = -UR5E_A[1] - UR5E_A[2] + UR5E_D[4] + UR5E_D[5] + 0.2  # generous bound on reach
    target = pose([reach, 0.0, UR5E_D[0]])
    r = ARM.ik(target, np.array([0, -1.5, 1.5, 0, 0, 0]), restarts=3)
    assert not r.reachable
    assert r.position_error > 0.1
    assert "away" in r.reason
    assert ARM.within_limits(r.q)
    with pytest.raises(UnreachableError, match="unreachable"):
        r.require()


def test_ik_respects_joint_limits():
    # A planar 2R arm whose elbow may only bend one way: the mirrored target needs the
    # other elbow sign, so it is unreachable within limits though inside the workspace.
    arm = SerialArm([Link(0.5, 0, 0, q_min=-math.pi, q_max=math.pi),
                     Link(0.5, 0, 0, q_min=0.0, q_max=math.pi)])
    ok = arm.ik(arm.fk([0.2, 1.0]), [0.0, 0.5], orientation=True)
    assert ok.reachable and ok.q[1] >= 0
    # Tool pose whose orientation requires q2 < 0: position (x, y) at q = (0.2, -1.0).
    target = arm.fk([0.2, -1.0])
    r = arm.ik(target, [0.0, 0.5], restarts=4)
    assert not r.reachable
    assert arm.within_limits(r.q)


def test_native_kinematics_match_python():
    native = NativeArm(ARM)
    rng = np.random.default_rng(4)
    for q in rng.uniform(-math.pi, math.pi, (200, 6)):
        np.testing.assert_allclose(native.fk(q), ARM.fk(q), atol=1e-13)
        np.testing.assert_allclose(native.frames(q), ARM.frames(q), atol=1e-13)
        np.testing.assert_allclose(native.link_points(q), ARM.link_points(q), atol=1e-13)
        np.testing.assert_allclose(native.jacobian(q), ARM.jacobian(q), atol=1e-13)


# -- board file errors -------------------------------------------------------------------
BOARD_TEXT = """\
name: t
axes:
  - {name: j1, max_velocity: 1, max_acceleration: 1}
  - {name: j2, max_velocity: 1, max_acceleration: 1}
motion:
  arm:
    links:
      - {a: 0.5, d: 0, alpha: 0, mass: 1.0}
      - {a: 0.4, d: 0, alpha: 0, mass: 1.0, q_min: -1, q_max: 1}
"""


def test_motion_section_parses_a_small_arm():
    board = parse_board(BOARD_TEXT, "t.yaml")
    arm = board.sections["motion"].arm
    assert arm.n == 2 and arm.q_max[1] == 1.0
    assert board.sections["motion"].drive.substeps == 4


@pytest.mark.parametrize("edit, line, field, message", [
    (("      - {a: 0.4, d: 0, alpha: 0, mass: 1.0, q_min: -1, q_max: 1}\n", ""),
     8, "motion.arm.links", "2 axes"),
    (("mass: 1.0}", "mass: -1.0}"), 8, "motion.arm.links[0].mass", ">= 0"),
    (("q_min: -1, q_max: 1", "q_min: 1, q_max: -1"), 9, "motion.arm.links[1].q_max",
     "exceeds"),
    (("alpha: 0, mass: 1.0}", "alpha: 0, mass: 1.0, inertia: [1, 1, 1, 5, 0, 0]}"), 8,
     "motion.arm.links[0].inertia", "positive"),
    (("a: 0.5,", "a: 0.5, b: 3,"), 8, "motion.arm.links[0].b", "unknown field"),
    (("    links:", "    angle_unit: grad\n    links:"), 7, "motion.arm.angle_unit",
     "one of"),
])
def test_motion_section_errors_name_file_line_and_field(edit, line, field, message):
    text = BOARD_TEXT.replace(*edit)
    with pytest.raises(ConfigError) as exc:
        parse_board(text, "t.yaml")
    err = exc.value
    assert err.file == "t.yaml" and err.line == line and err.field == field
    assert message in err.message


def test_initial_position_outside_joint_limits_is_a_config_error():
    text = BOARD_TEXT.replace("  - {name: j2, max_velocity: 1, max_acceleration: 1}",
                              "  - {name: j2, max_velocity: 1, max_acceleration: 1, "
                              "initial_position: 2.0}")
    with pytest.raises(ConfigError, match="outside"):
        parse_board(text, "t.yaml")


def test_ik_beyond_reach_answers_at_once():
    target = pose([ARM.reach + 0.05, 0.0, 0.0])
    r = ARM.ik(target, HOME_Q)
    assert not r.reachable and r.iterations == 0
    assert "beyond the arm's reach" in r.reason
    assert r.position_error == pytest.approx(0.05)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3),
       st.lists(st.floats(-math.pi, math.pi), min_size=3, max_size=3))
def test_ik_answer_is_always_within_limits_and_honest(xyz, rpy):
    limited = SerialArm([Link(lk.a, lk.d, lk.alpha, mass=lk.mass, q_min=-2.0, q_max=2.0)
                         for lk in ARM.links])
    target = pose(xyz, rpy)
    r = limited.ik(target, np.zeros(6), restarts=1, max_iterations=60)
    assert limited.within_limits(r.q)
    reached = np.linalg.norm(limited.fk(r.q)[:3, 3] - target[:3, 3])
    if r.reachable:
        assert reached <= 1e-7
    elif r.iterations == 0:                # refused as beyond reach: by how much
        beyond = np.linalg.norm(target[:3, 3]) - limited.reach
        assert "reach" in r.reason and r.position_error == pytest.approx(beyond, rel=1e-12)
        assert reached >= r.position_error > 0
    else:                                  # the error it reports is the one it left
        assert r.reason and r.position_error == pytest.approx(reached, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(reachable_q, st.lists(st.floats(-0.4, 0.4), min_size=6, max_size=6).map(np.array))
def test_native_ik_matches_the_numpy_solve(q_true, perturbation):
    native = NativeArm(ARM)
    target = ur5e_poe(q_true)
    c = native.ik_once(target, q_true + perturbation)
    p = ARM.ik(target, q_true + perturbation, restarts=0)
    assert c.reachable == p.reachable
    if c.reachable:
        np.testing.assert_allclose(ur5e_poe(c.q), target, atol=1e-6)
        np.testing.assert_allclose(c.q, p.q, atol=1e-6)
    assert ARM.within_limits(c.q)


def test_native_ik_with_restarts_and_unreachable():
    native = NativeArm(ARM)
    q_true = np.array([1.0, -2.0, 2.0, -1.5, 1.2, 0.4])
    r = native.ik(ur5e_poe(q_true), -q_true)
    assert r.reachable
    np.testing.assert_allclose(ur5e_poe(r.q), ur5e_poe(q_true), atol=1e-6)
    far = pose([1.2, 0.0, UR5E_D[0]])                    # inside the bound, out of reach
    assert np.linalg.norm(far[:3, 3]) < ARM.reach
    r = native.ik(far, HOME_Q, restarts=2)
    assert not r.reachable and r.iterations > 0 and r.position_error > 0.05
    assert "away" in r.reason
    with pytest.raises(NativeError):
        native.ik_once(ur5e_poe(q_true), [math.nan] * 6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-math.pi, math.pi), min_size=3, max_size=3).map(np.array))
def test_native_rotation_log_matches_python(rotvec):
    from edge.rt.native import require_native

    ffi, lib = require_native()
    R = np.ascontiguousarray(Rotation.from_rotvec(rotvec).as_matrix())
    w = np.empty(3)
    lib.arm_rotation_log(ffi.from_buffer("double[]", R), ffi.from_buffer("double[]", w))
    np.testing.assert_allclose(w, rotation_log(R), atol=1e-12)


def _line(start: np.ndarray, offset, n: int) -> list[np.ndarray]:
    out = []
    for s in np.linspace(0.0, 1.0, n):
        T = start.copy()
        T[:3, 3] += s * np.asarray(offset)
        out.append(T)
    return out


@settings(max_examples=15, deadline=None)
@given(reachable_q, st.lists(st.floats(-0.15, 0.15), min_size=3, max_size=3))
def test_ik_path_follows_a_straight_line_on_one_branch(q_start, offset):
    start = ARM.fk(q_start)
    targets = _line(start, offset, 40)
    for solver in (ARM, NativeArm(ARM)):
        path = solver.ik_path(targets, q_start, max_joint_step=0.5)
        if not path.ok:          # a singularity on the way is reported, never papered over
            assert path.reason and path.reached < len(targets)
            continue
        assert path.q.shape == (40, 6)
        for q, T in zip(path.q, targets, strict=True):     # (fk is checked against PoE above)
            np.testing.assert_allclose(ARM.fk(q), T, atol=1e-6)
        assert np.abs(np.diff(np.vstack([q_start, path.q]), axis=0)).max() <= 0.5


def test_ik_path_stops_at_the_first_unreachable_point():
    start = ARM.fk(HOME_Q)
    targets = _line(start, [2.0, 0.0, 0.0], 21)           # runs out of reach on the way
    path = NativeArm(ARM).ik_path(targets, HOME_Q)
    assert not path.ok and 0 < path.reached < 21
    assert path.q.shape == (path.reached, 6)
    assert f"point {path.reached}" in path.reason


# -- closed-form IK (a second method) ---------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(joint_positions)
def test_closed_form_ik_finds_every_branch_and_the_original(q):
    target = ur5e_poe(q)
    sols = ur_ik_solutions(ARM, target, q_ref=q)
    assert 1 <= len(sols) <= 8
    for s in sols:
        np.testing.assert_allclose(ARM.fk(s), target, atol=1e-9)
        assert ARM.within_limits(s)
    # nearest to q_ref comes first; it is q itself unless the pose pins q only weakly
    # (near a singularity, where a 1e-16 change of the pose moves the joints visibly)
    if np.linalg.svd(ARM.jacobian(q), compute_uv=False)[-1] > 1e-3:
        np.testing.assert_allclose(sols[0], q, atol=1e-6)
    assert len({tuple(np.round(s, 6)) for s in sols}) == len(sols)


@settings(max_examples=30, deadline=None)
@given(reachable_q, st.integers(0, 2**31))
def test_numerical_ik_lands_on_a_closed_form_branch(q_true, seed):
    target = ur5e_poe(q_true)
    start = np.random.default_rng(seed).uniform(-math.pi, math.pi, 6)
    r = NativeArm(ARM).ik(target, start)
    assert r.reachable
    sols = ur_ik_solutions(ARM, target, q_ref=r.q)
    wrapped = (sols - r.q + math.pi) % (2 * math.pi) - math.pi   # equal modulo 2π
    # The numerical answer meets the pose to 1e-7; near a singular pose that is a joint
    # error of 1e-7 / sigma_min, so the branch is identified to 1e-3 rad (branches lie
    # radians apart except where they merge at a singularity).
    assert np.abs(wrapped).max(axis=1).min() < 1e-3


def test_closed_form_ik_with_base_and_tool_and_out_of_reach():
    arm = SerialArm(ARM.links, tool=pose([0, 0.02, 0.12], [0.3, 0, 0]),
                    base=pose([0.1, 0.2, 0.7], [math.pi, 0, 0.5]))
    q = np.array([0.4, -1.9, 1.2, -0.7, 1.1, 2.0])
    sols = ur_ik_solutions(arm, arm.fk(q), q_ref=q)
    np.testing.assert_allclose(sols[0], q, atol=1e-8)
    assert len(ur_ik_solutions(ARM, pose([1.2, 0, 0.16]))) == 0
    planar = SerialArm([Link(0.5, 0, 0), Link(0.5, 0, 0)])
    assert not is_ur_shaped(planar)
    with pytest.raises(ValueError, match="UR-shaped"):
        ur_ik_solutions(planar, np.eye(4))

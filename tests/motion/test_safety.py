"""The safety layer in closed loop with the simulated arm, in virtual time: walls and
joint limits are never crossed whatever the target, TCP speed and reduced mode hold,
e-stop categories 0/1/2 behave as IEC 60204-1 says, following errors trip, faults latch
until reset and are kept in a history and published, and the configuration checksum is
stable and changes with the configuration."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge.config import load_board, parse_board
from edge.errors import ConfigError, NativeError
from edge.motion.arm_model import NativeArm
from edge.motion.arm_sim import ARM_SIM_CMD_SET_STATE, arm_sim_block
from edge.motion.safety import (
    FAULT_CODES,
    FAULT_TOPIC,
    SAFETY_CMD_ENABLE,
    SAFETY_CMD_REDUCED,
    SafetyConfigLocked,
    SafetySphere,
    SafetyWall,
    fault_message,
    publish_faults,
)
from edge.motion.safety_monitor import SafetyMonitor
from edge.rt.bus import Bus
from edge.rt.native import NO_STOP, Cycle, setpoint_block
from hil.arm_rig import SafetyRig

BOARD = load_board("sim_arm")
CFG = BOARD.sections["safety"]
ARM = BOARD.sections["motion"].arm
N = ARM.n
HOME = np.array([a.initial_position for a in BOARD.axes])
NATIVE = NativeArm(ARM)
NO_OBSERVER = dataclasses.replace(CFG, observer=None)

unit_vectors = st.tuples(*[st.floats(-1, 1)] * 3).map(np.array).filter(
    lambda v: np.linalg.norm(v) > 0.2).map(lambda v: v / np.linalg.norm(v))
offsets = st.lists(st.floats(-1.5, 1.5), min_size=N, max_size=N).map(np.array)


def tcp_speeds(q_rows, v_rows):
    return np.array([np.linalg.norm(NATIVE.jacobian(q[:N])[:3] @ v[:N])
                     for q, v in zip(q_rows, v_rows, strict=True)])


# -- an oracle for the wall geometry, independent of the native monitor --------------
# Sphere centres from the Python kinematics (numpy DH products, not the C forward
# kinematics) and distances from the definitions in safety.h: a plane's n.x - offset; a
# keep-out box's Euclidean distance from outside and minus the depth to its nearest face
# inside; a keep-in box's distance to its nearest face inside and minus the Euclidean
# distance back into it outside. (The monitor's keep-in value outside is the worst
# axis's overshoot: only its sign is compared there.)

def wall_distance_oracle(wall, x):
    if wall.kind == "plane":
        return float(np.dot(wall.normal, x) - wall.offset)
    lo, hi = np.array(wall.lo), np.array(wall.hi)
    depth = float(np.min(np.minimum(x - lo, hi - x)))          # > 0 inside
    outside = float(np.linalg.norm(np.maximum(np.maximum(lo - x, x - hi), 0.0)))
    if wall.kind == "keep_out":
        return outside if depth < 0 else -depth
    return depth if depth >= 0 else -outside


def sphere_centres(spheres, q):
    frames = ARM.frames(q[:N])
    return [(frames[sp.frame] @ np.array([*sp.center, 1.0]))[:3] for sp in spheres]


def sphere_distances_oracle(cfg, q):
    """Per sphere: surface distance (m) to the nearest wall of cfg at q."""
    return np.array([min(wall_distance_oracle(w, x) for w in cfg.walls) - sp.radius
                     for sp, x in zip(cfg.spheres, sphere_centres(cfg.spheres, q),
                                      strict=True)])


def min_distance_oracle(cfg, q_rows):
    return np.array([sphere_distances_oracle(cfg, q).min() for q in q_rows])


def plane_under(normal, clearance, q=HOME):
    """A plane with `normal` placed `clearance` m from the arm's nearest sphere at q."""
    d0 = min(float(np.dot(normal, x)) - sp.radius
             for sp, x in zip(CFG.spheres, sphere_centres(CFG.spheres, q), strict=True))
    return SafetyWall("campaign", "plane", tuple(float(v) for v in normal), d0 - clearance)


# The boxes by hand: a fixed sphere (frame 0, the base: identity here) of radius 0.02 at
# chosen points of the box [0, 1] x [0, 2] x [0, 3], each axis the nearest in turn.
BOX = dict(lo=(0.0, 0.0, 0.0), hi=(1.0, 2.0, 3.0))
BY_HAND = [
    ("keep_in", (0.5, 1.0, 1.5), 0.5 - 0.02),
    ("keep_in", (0.9, 1.0, 1.5), 0.1 - 0.02),          # nearest face: x = 1
    ("keep_in", (0.5, 0.05, 1.5), 0.05 - 0.02),        # y = 0
    ("keep_in", (0.5, 1.0, 2.97), 0.03 - 0.02),        # z = 3
    ("keep_in", (0.5, 1.0, 0.01), 0.01 - 0.02),        # z = 0: the sphere pokes out
    ("keep_in", (0.5, 1.0, 3.2), -0.2 - 0.02),         # outside above, along z only
    ("keep_in", (-0.3, 1.0, 1.5), -0.3 - 0.02),        # outside along x only
    ("keep_in", (0.5, 2.25, 1.5), -0.25 - 0.02),       # outside along y only
    ("keep_out", (1.3, 1.0, 1.5), 0.3 - 0.02),         # beside the x = 1 face
    ("keep_out", (0.5, -0.4, 1.5), 0.4 - 0.02),        # beside y = 0
    ("keep_out", (0.5, 1.0, 3.25), 0.25 - 0.02),       # above z = 3
    ("keep_out", (1.3, 2.4, 1.5), 0.5 - 0.02),         # off an edge: 3-4-5
    ("keep_out", (1.2, 2.3, 3.6), 0.7 - 0.02),         # off a corner: 2-3-6-7
    ("keep_out", (0.5, 1.0, 2.9), -0.1 - 0.02),        # inside, nearest face z = 3
    ("keep_out", (0.95, 1.0, 1.5), -0.05 - 0.02),      # inside, nearest x = 1
    ("keep_out", (0.5, 1.9, 1.5), -0.1 - 0.02),        # inside, nearest y = 2
]


@pytest.mark.parametrize(("kind", "point", "want"), BY_HAND)
def test_box_distances_by_hand(kind, point, want):
    cfg = dataclasses.replace(NO_OBSERVER, walls=[SafetyWall("box", kind, **BOX)],
                              spheres=[SafetySphere(0, point, 0.02)])
    got = SafetyMonitor(ARM, cfg).sphere_distances(HOME)
    assert got[0] == pytest.approx(want, abs=1e-12)
    # outside points lie off one face only: there the oracle's Euclidean value is exact too
    assert wall_distance_oracle(cfg.walls[0], np.array(point)) - 0.02 == \
        pytest.approx(want, abs=1e-12)


def test_plane_distances_by_hand():
    wall = SafetyWall("slope", "plane", (0.6, 0.0, 0.8), 0.5)
    for point, want in [((0.0, 0.0, 1.0), 0.3), ((1.0, 5.0, 0.0), 0.1), ((0.0, 0.0, 0.0), -0.5)]:
        cfg = dataclasses.replace(NO_OBSERVER, walls=[wall], spheres=[SafetySphere(0, point, 0.0)])
        assert SafetyMonitor(ARM, cfg).sphere_distances(HOME)[0] == pytest.approx(want, abs=1e-12)


corners = st.tuples(*[st.floats(-1.0, 1.0)] * 3)
joint_poses = st.lists(st.floats(-3.0, 3.0), min_size=N, max_size=N).map(np.array)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["plane", "keep_out", "keep_in"]), unit_vectors, st.floats(-0.5, 0.5),
       corners, st.tuples(*[st.floats(0.05, 1.0)] * 3), joint_poses)
def test_the_monitor_measures_every_sphere_as_the_geometry_says(kind, normal, offset, lo,
                                                                size, q):
    if kind == "plane":
        wall = SafetyWall("w", kind, tuple(normal), offset)
    else:
        wall = SafetyWall("w", kind, lo=lo, hi=tuple(np.add(lo, size)))
    cfg = dataclasses.replace(NO_OBSERVER, walls=[wall])
    got = SafetyMonitor(ARM, cfg).sphere_distances(q)
    want = sphere_distances_oracle(cfg, q)
    exact = want >= 0 if kind == "keep_in" else np.ones(len(want), bool)
    np.testing.assert_allclose(got[exact], want[exact], atol=1e-9)
    assert np.all(got[~exact] < 0)


# -- walls and limits -----------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(unit_vectors, st.floats(0.02, 0.2), st.lists(offsets, min_size=2, max_size=2))
def test_plane_walls_are_never_crossed(normal, clearance, targets):
    cfg = dataclasses.replace(NO_OBSERVER, walls=[plane_under(normal, clearance)])
    rig = SafetyRig(cfg=cfg)
    for off in targets:
        rig.move(HOME + off)
        s = rig.run(1200)
        cmd = min_distance_oracle(cfg, s["q_cmd"][::3])
        meas = min_distance_oracle(cfg, s["q"][::3])
        assert cmd.min() >= CFG.wall_margin - 1e-9       # the command keeps the margin
        assert meas.min() > 0                             # the arm never touches the wall
        assert not np.any(s["fault_code"] == 5)


def test_a_target_beyond_the_floor_stops_at_the_margin():
    """Reaching down through the floor: the arm brakes and rests wall_margin above it."""
    floor = SafetyWall("floor", "plane", (0.0, 0.0, 1.0), 0.0)
    cfg = dataclasses.replace(NO_OBSERVER, walls=[floor])
    rig = SafetyRig(cfg=cfg)
    target = HOME + np.array([0.0, 1.2, 0.6, 0.0, 0.0, 0.0])   # shoulder and elbow down
    assert min_distance_oracle(cfg, [target])[0] < -0.1
    rig.move(target)
    s = rig.run(3000)
    cmd = min_distance_oracle(cfg, s["q_cmd"][-1:])[0]
    assert abs(cmd - CFG.wall_margin) < 2e-3                 # parked at the margin
    assert min_distance_oracle(cfg, s["q"][::5]).min() > 0
    assert np.all(s["qd_cmd"][-1, :N] == 0)
    assert rig.monitor.status()["limiting"] == 1
    assert set(s["fault_code"]) == {0}


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["keep_out", "keep_in"]),
       st.tuples(st.floats(-0.7, 0.7), st.floats(-0.7, 0.7), st.floats(0.0, 0.9)),
       st.tuples(*[st.floats(0.05, 0.3)] * 3), st.floats(0.5, 1.0),
       st.lists(offsets, min_size=2, max_size=2))
def test_boxes_are_never_entered_or_left(kind, center, half, cell, targets):
    c = np.array(center)
    if kind == "keep_out":            # an obstacle somewhere near the arm
        lo, hi = c - np.array(half), c + np.array(half)
    else:                             # a work cell around the base
        lo, hi = c / 4 - cell, c / 4 + cell
    box = SafetyWall("box", kind, lo=tuple(lo), hi=tuple(hi))
    cfg = dataclasses.replace(NO_OBSERVER, walls=[box])
    assume(min_distance_oracle(cfg, [HOME])[0] >= CFG.wall_margin)
    rig = SafetyRig(cfg=cfg)
    for off in targets:
        rig.move(HOME + off)
        s = rig.run(1200)
        assert min_distance_oracle(cfg, s["q_cmd"][::3]).min() >= CFG.wall_margin - 1e-9
        assert min_distance_oracle(cfg, s["q"][::3]).min() > 0
        assert not np.any(s["fault_code"] == 5)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.1, 0.6), min_size=N, max_size=N).map(np.array), offsets)
def test_joint_limits_are_never_crossed(span, off):
    q_min, q_max = (HOME - span).tolist(), (HOME + span).tolist()
    cfg = dataclasses.replace(NO_OBSERVER, q_min=q_min, q_max=q_max, walls=[])
    rig = SafetyRig(cfg=cfg)
    rig.move(HOME + 3 * off)            # mostly far beyond the limits
    s = rig.run(1500)
    q_cmd, qd_cmd = s["q_cmd"][:, :N], s["qd_cmd"][:, :N]
    assert np.all(q_cmd >= np.array(q_min) - 1e-12) and np.all(q_cmd <= np.array(q_max) + 1e-12)
    q = s["q"][:, :N]
    assert np.all(q >= np.array(q_min) - CFG.position_tolerance)
    assert np.all(q <= np.array(q_max) + CFG.position_tolerance)
    assert np.all(np.abs(qd_cmd) <= np.array(cfg.v_max) + 1e-12)
    acc = np.diff(qd_cmd, axis=0) / 1e-3
    assert np.all(np.abs(acc) <= np.maximum(cfg.a_max, cfg.a_stop) * (1 + 1e-9))
    assert set(s["fault_code"]) == {0}


@settings(max_examples=12, deadline=None)
@given(st.integers(0, N - 1), st.floats(allow_nan=True, allow_infinity=True), offsets)
def test_any_float_target_keeps_the_limits_and_a_non_finite_one_is_refused(axis, value, off):
    """Targets from the whole float range, NaN and infinities included: a non-finite one
    is refused at the setpoint (the arm stays where it is), a finite one however large is
    limited by the monitor; the command is always finite and inside the joint limits."""
    span = 0.4
    cfg = dataclasses.replace(NO_OBSERVER, walls=[], q_min=(HOME - span).tolist(),
                              q_max=(HOME + span).tolist())
    rig = SafetyRig(cfg=cfg)
    target = HOME + off
    target[axis] = value
    rig.move(target)
    s = rig.run(800)
    q_cmd = s["q_cmd"][:, :N]
    assert np.all(np.isfinite(q_cmd)) and np.all(np.isfinite(s["qd_cmd"][:, :N]))
    assert np.all(q_cmd >= HOME - span - 1e-12) and np.all(q_cmd <= HOME + span + 1e-12)
    assert set(s["fault_code"]) == {0}
    refused = rig.cycle.stats().rejected_commands
    if math.isfinite(value):
        assert refused == 0
    else:
        assert refused == 1 and np.all(q_cmd == HOME)


NATIVE_FIELDS = ["q_min", "q_max", "v_max", "a_max", "a_stop", "j_stop", "tau_max",
                 "tcp_speed_max", "tcp_speed_reduced", "reduced_transition_s",
                 "position_tolerance", "velocity_tolerance", "tcp_speed_tolerance",
                 "acceleration_tolerance", "following_error_max", "wall_margin",
                 "wall.offset", "box.lo", "box.hi", "sphere.center", "sphere.radius"]


def _with(cfg, name, value, joint=2):
    if name.startswith("wall."):
        w = dataclasses.replace(CFG.walls[0], offset=value)
        return dataclasses.replace(cfg, walls=[w])
    if name.startswith("box."):
        box = {"lo": [-1.0, -1.0, -1.0], "hi": [1.0, 1.0, 1.0]}
        box[name[4:]][1] = value
        return dataclasses.replace(cfg, walls=[SafetyWall("b", "keep_in", lo=tuple(box["lo"]),
                                                          hi=tuple(box["hi"]))])
    if name.startswith("sphere."):
        sp = cfg.spheres[0]
        sp = dataclasses.replace(sp, center=(0.0, value, 0.0)) if name.endswith("center") \
            else dataclasses.replace(sp, radius=value)
        return dataclasses.replace(cfg, spheres=[sp, *cfg.spheres[1:]])
    if isinstance(getattr(cfg, name), list):
        values = list(getattr(cfg, name))
        values[joint] = value
        return dataclasses.replace(cfg, **{name: values})
    return dataclasses.replace(cfg, **{name: value})


@pytest.mark.parametrize("name", NATIVE_FIELDS)
def test_the_native_block_refuses_nan_in_any_field(name):
    """Whatever Python hands over: C's own check refuses a NaN anywhere (a NaN limit
    makes every comparison false, so the check it feeds would silently pass)."""
    with pytest.raises(NativeError, match="refused"):
        SafetyMonitor(ARM, _with(NO_OBSERVER, name, math.nan))


POSITIVE = ["v_max", "a_max", "a_stop", "j_stop", "tau_max", "tcp_speed_max",
            "tcp_speed_reduced", "reduced_transition_s", "position_tolerance",
            "velocity_tolerance", "tcp_speed_tolerance", "wall_margin", "sphere.radius"]
FINITE = ["v_max", "a_max", "a_stop", "tcp_speed_reduced", "wall.offset", "box.lo", "box.hi",
          "sphere.center"]


@pytest.mark.parametrize(("name", "value"), [(n, v) for n in POSITIVE for v in (-1.0, -math.inf)]
                         + [(n, v) for n in FINITE for v in (math.inf, -math.inf)])
def test_the_native_block_refuses_negative_and_infinite_limits(name, value):
    """Negative limits and tolerances, and infinite speeds, accelerations and geometry
    are refused as well. (An infinite position limit, torque limit, stop jerk, TCP speed
    or tolerance is how a check is switched off from Python, and is allowed; the board
    parser refuses every non-finite value.)"""
    with pytest.raises(NativeError, match="refused"):
        SafetyMonitor(ARM, _with(NO_OBSERVER, name, value))


def test_the_native_block_takes_the_same_fields_when_valid():
    for name in NATIVE_FIELDS:
        value = {"wall.offset": -0.5, "box.lo": -1.5, "box.hi": 1.5, "sphere.center": 0.1,
                 "sphere.radius": 0.04}.get(name)
        if value is None:
            v = getattr(CFG, name)
            value = v[2] * 0.9 if isinstance(v, list) else v * 0.9
        SafetyMonitor(ARM, _with(NO_OBSERVER, name, value))


@pytest.mark.parametrize("field, text", [
    ("safety.wall_margin", "  wall_margin: .nan"),
    ("safety.following_error", "  following_error: .inf"),
    ("safety.tcp_speed.normal", "  tcp_speed: {normal: .nan}"),
    ("safety.joints.velocity[2]", "  joints: {velocity: [1, 1, .nan, 1, 1, 1]}"),
    ("safety.walls[0].plane.point[2]",
     "  walls:\n    - {name: w, plane: {point: [0, 0, -.inf], normal: [0, 0, 1]}}"),
])
def test_non_finite_board_values_are_refused_by_name(field, text):
    head = BOARD_TEXT[:BOARD_TEXT.index("\nsafety:")]
    with pytest.raises(ConfigError) as exc:
        parse_board(head + "\nsafety:\n" + text + "\n", "nan.yaml")
    assert exc.value.field == field and "finite" in exc.value.message


@settings(max_examples=6, deadline=None)
@given(offsets)
def test_tcp_speed_limit_and_reduced_mode(off):
    rig = SafetyRig(cfg=NO_OBSERVER)
    rig.move(HOME + off)
    s = rig.run(400)
    v = tcp_speeds(s["q_cmd"], s["qd_cmd"])
    assert v.max() <= CFG.tcp_speed_max * (1 + 1e-9)
    rig.command(SAFETY_CMD_REDUCED, [1])
    s = rig.run(800)
    v = tcp_speeds(s["q_cmd"], s["qd_cmd"])
    settled = int(CFG.reduced_transition_s / 1e-3)
    assert v[settled:].max() <= CFG.tcp_speed_reduced * (1 + 1e-9)
    assert tcp_speeds(s["q"][settled:], s["qd"][settled:]).max() <= \
        CFG.tcp_speed_reduced + CFG.tcp_speed_tolerance
    assert set(s["fault_code"]) == {0}
    assert rig.monitor.status()["reduced"] == 1


@pytest.mark.parametrize("transition_s, ticks", [(0.0, 0), (0.25, 250), (0.5, 500)])
def test_the_reduced_limit_holds_from_exactly_transition_s_after_the_command(transition_s,
                                                                             ticks):
    """A torque-mode arm pushed about its base is far above a 0.01 m/s reduced limit (no
    tolerance): the measured check trips on the first tick at which transition_s has
    elapsed since the command's tick (1 ms ticks: transition_s / 1 ms), not one later."""
    cfg = dataclasses.replace(NO_OBSERVER, walls=[], tcp_speed_max=100.0,
                              tcp_speed_reduced=0.01, tcp_speed_tolerance=0.0,
                              reduced_transition_s=transition_s, velocity_tolerance=100.0,
                              following_error_max=0.0)
    rig = SafetyRig(cfg=cfg, mode="torque")
    rig.run(5)
    rig.inject([20.0, 0, 0, 0, 0, 0])
    rig.run(100)
    commanded_at = rig.cycle.tick
    rig.command(SAFETY_CMD_REDUCED, [1])
    rig.run(ticks + 5)
    f = rig.monitor.faults()[0]
    assert (f.code, f.tick) == (4, commanded_at + ticks)


def test_unlimited_motion_passes_through_unchanged():
    """Inside every limit the monitor must not alter the command at all: the same loop
    without the safety block commands the same positions, bit for bit."""
    # (the setpoint's final snap onto its target is a small step of up to twice its
    # acceleration limit: the monitor's own limit here leaves room for it)
    cfg = dataclasses.replace(NO_OBSERVER, walls=[], tcp_speed_max=100.0,
                              tcp_speed_reduced=100.0,
                              a_max=[3 * a.max_acceleration for a in BOARD.axes])
    rig = SafetyRig(cfg=cfg)
    d = BOARD.sections["motion"].drive
    ref = Cycle(1_000_000, N)
    ref.add_block(arm_sim_block(ARM, HOME, viscous=d.viscous, coulomb=d.coulomb,
                                torque_limit=d.torque_limit, substeps=d.substeps))
    sp = ref.add_block(setpoint_block([a.max_velocity for a in BOARD.axes],
                                      [a.max_acceleration for a in BOARD.axes]))
    target = HOME + np.array([0.3, -0.2, 0.2, 0.1, -0.1, 0.2])
    rig.move(target)
    ref.push_command(0, sp, 1, target.tolist())
    s = rig.run(1500)
    ref.step(1500)
    r = ref.pop_states()
    for name in ("q_cmd", "qd_cmd", "q", "qd"):
        np.testing.assert_array_equal(s[name][:, :N], r[name][:, :N])
    assert rig.monitor.status()["speed_scale"] == 1.0


def test_a_lag_behind_a_resting_setpoint_closes_braking_limited():
    """The monitor's acceleration limit (0.4 x the setpoint's) makes its command lag and
    overshoot a 0.5 rad step; from the turning point the upstream rests and the lag must
    close at most at the braking-limited speed sqrt(2 a |lag|): no second overshoot.
    By hand (a = 0.4 x 8 = 3.2 rad/s^2): the lag at the turn is ~0.15 rad, closed in
    about 2 sqrt(0.15 / 3.2) = 0.43 s; closing it at full speed instead would overshoot
    by about as much again."""
    cfg = dataclasses.replace(NO_OBSERVER, walls=[], tcp_speed_max=100.0,
                              tcp_speed_reduced=100.0,
                              a_max=[0.4 * a.max_acceleration for a in BOARD.axes])
    rig = SafetyRig(cfg=cfg)
    target = HOME.copy()
    target[0] += 0.5
    rig.move(target)
    s = rig.run(2500)
    q = s["q_cmd"][:, 0] - HOME[0]
    turn = int(np.argmax(q))
    assert q[turn] > 0.55                     # the first overshoot: the lag this test needs
    closing = q[turn:]
    assert closing.min() > 0.5 - 2e-3         # approached from one side only
    settled = turn + int(np.argmax(np.abs(closing - 0.5) < 1e-9))
    assert 0.35 < (settled - turn) * 1e-3 < 0.6
    assert np.abs(np.diff(s["qd_cmd"][:, 0])).max() <= 3.2e-3 * (1 + 1e-9)


# -- stops --------------------------------------------------------------------------

def _moving_rig(category, **kw):
    rig = SafetyRig(cfg=NO_OBSERVER, estop_category=category, **kw)
    rig.move(HOME + np.array([1.0, -0.6, 0.8, 1.0, -1.0, 1.0]))
    rig.run(250)
    return rig


def _stop_time(cfg, v0):
    v0 = np.abs(v0)
    moving = v0 > 0
    a = np.min(np.array(cfg.a_stop)[moving] / v0[moving])
    j = np.min(np.array(cfg.j_stop)[moving] / v0[moving])
    if a * a / j > 1:
        a = math.sqrt(j)
    return 1 / a + a / j


def test_estop_category_0_removes_power_at_once():
    rig = _moving_rig(0)
    rig.estop(True)                  # the drive reports the input from the next tick
    s = rig.run(50)[1:]
    assert s["stop_category"][0] == 0 and s["fault_code"][0] == 256
    assert np.abs(s["qd"][0, :N]).max() > 0.1           # it was moving when pressed
    assert np.all(s["qd"][1:, :N] == 0)                 # brakes: standstill next tick
    np.testing.assert_array_equal(s["q_cmd"][1:, :N], s["q"][1:, :N])


@pytest.mark.parametrize("category", [1, 2])
def test_estop_categories_1_and_2_are_jerk_limited_controlled_stops(category):
    rig = _moving_rig(category)
    rig.estop(True)
    s = rig.run(1501)
    v0 = s["qd_cmd"][0, :N].copy()      # the last command before the stop latched
    s_q0 = s["q_cmd"][0, :N].copy()
    s = s[1:]
    assert s["fault_code"][0] == 256 and np.abs(v0).max() > 0.5
    qd = s["qd_cmd"][:, :N]
    speed = np.abs(qd).max(axis=1)
    assert np.all(np.diff(speed) <= 1e-12)               # never speeds up
    cfg = CFG
    t_stop = _stop_time(cfg, v0)
    stopped = int(np.argmax(speed == 0))
    assert speed[stopped] == 0 and stopped <= math.ceil(t_stop / 1e-3) + 1
    # ... and no sooner: the S-curve's jerk phases take their time (T = 1/a + a/j)
    assert stopped >= math.floor(t_stop / 1e-3) - 1
    acc = np.diff(qd, axis=0) / 1e-3
    assert np.all(np.abs(acc) <= np.array(cfg.a_stop) * (1 + 1e-9))
    jerk = np.diff(acc[:stopped], axis=0) / 1e-3
    assert np.all(np.abs(jerk) <= np.array(cfg.j_stop) * (1 + 1e-6))
    # the stop follows the current joint-space direction (the path the walls were
    # checked against): velocities stay parallel to v0
    unit = v0 / np.linalg.norm(v0)
    par = qd[:stopped] @ unit
    np.testing.assert_allclose(qd[:stopped], np.outer(par, unit), atol=1e-9)
    # positions integrate those velocities (each step between the velocities at its
    # ends), and a symmetric ramp from v0 over t_stop travels v0 * t_stop / 2
    # (up to standstill: category 1 then holds where the arm measures)
    q = np.vstack([s_q0, s["q_cmd"][:stopped + 1, :N]])
    v = np.vstack([v0, qd[:stopped + 1]])
    step = np.diff(q, axis=0) / 1e-3
    lo, hi = np.minimum(v[:-1], v[1:]), np.maximum(v[:-1], v[1:])
    assert np.all(step >= lo - 1e-9) and np.all(step <= hi + 1e-9)
    np.testing.assert_allclose(q[-1], s_q0 + v0 * t_stop / 2, atol=1e-9)
    tail = s[stopped + 5:]
    if category == 1:                                    # power removed once stopped
        assert np.all(tail["stop_category"] == 0)
        assert np.all(tail["qd"][:, :N] == 0)
    else:                                                # power kept, holding position
        assert np.all(tail["stop_category"] == 2)
        assert np.abs(tail["q"][-1, :N] - tail["q_cmd"][-1, :N]).max() < 1e-3


@pytest.mark.parametrize("axis", range(N))
def test_a_stop_while_one_joint_moves_alone_is_a_ramp_within_its_limits(axis):
    """Each joint alone: the stop ramp is computed from that joint's own velocity and
    deceleration limit (a joint left out would make the others' "standing still" a
    jump to zero)."""
    rig = SafetyRig(cfg=NO_OBSERVER, estop_category=2)
    target = HOME.copy()
    target[axis] += 1.0
    rig.move(target)
    rig.run(250)
    rig.estop(True)
    s = rig.run(800)
    v0 = s["qd_cmd"][0, :N].copy()
    assert abs(v0[axis]) > 0.3 and np.all(np.delete(v0, axis) == 0)
    qd = s["qd_cmd"][1:, :N]
    acc = np.diff(np.vstack([v0, qd]), axis=0) / 1e-3
    assert np.all(np.abs(acc) <= np.array(CFG.a_stop) * (1 + 1e-9))
    speed = np.abs(qd[:, axis])
    stopped = int(np.argmax(speed == 0))
    assert speed[stopped] == 0 and stopped >= abs(v0[axis]) / CFG.a_stop[axis] / 1e-3 - 1
    assert stopped <= math.ceil(_stop_time(CFG, v0) / 1e-3) + 1


def test_reset_refused_while_estop_pressed_then_motion_resumes():
    rig = _moving_rig(1)
    rig.estop(True)
    rig.run(1000)
    rig.reset()
    s = rig.run(10)
    assert np.all(s["stop_category"] == 0)               # still latched
    rig.estop(False)
    rig.run(2)
    rig.reset()
    s = rig.run(5)
    assert s["stop_category"][-1] == NO_STOP and s["fault_code"][-1] == 0
    target = s["q"][-1, :N] + 0.2
    rig.move(target)
    s = rig.run(1500)
    np.testing.assert_allclose(s["q"][-1, :N], target, atol=5e-3)
    faults = rig.monitor.faults()
    assert [f.code for f in faults] == [256]
    assert faults[0].message == FAULT_CODES[256][1]


def test_reset_while_still_braking_keeps_the_stop_until_standstill():
    rig = _moving_rig(2)
    rig.estop(True)
    rig.run(3)
    rig.estop(False)
    rig.run(30)                               # still braking (the ramp takes ~0.25 s)
    rig.reset()
    s = rig.run(600)
    assert np.all(s["stop_category"] == 2) and np.all(s["fault_code"] == 256)
    speed = np.abs(s["qd_cmd"][:, :N]).max(axis=1)
    assert speed[0] > 0.1 and np.all(np.diff(speed) <= 1e-12) and speed[-1] == 0
    assert rig.monitor.status()["resets_refused"] == 1
    rig.reset()                               # at standstill it is accepted
    s = rig.run(3)
    assert s["stop_category"][-1] == NO_STOP and s["fault_code"][-1] == 0


def test_watchdog_stall_gives_a_controlled_stop_through_the_monitor():
    rig = SafetyRig(cfg=NO_OBSERVER, watchdog_ticks=300)   # nobody kicks it here
    rig.move(HOME + np.array([1.0, -0.6, 0.8, 1.0, -1.0, 1.0]))
    s = rig.run(1500)
    k = int(np.argmax(s["stop_category"] != NO_STOP))
    assert 300 <= s["tick"][k] <= 302 and s["fault_code"][k] == 257
    assert s["stop_category"][k] == 1 and np.abs(s["qd_cmd"][k - 1, :N]).max() > 0.5
    speed = np.abs(s["qd_cmd"][k:, :N]).max(axis=1)
    assert np.all(np.diff(speed) <= 1e-12)             # a ramp, not a jump
    assert np.all(np.abs(np.diff(s["qd_cmd"][k:, :N], axis=0)) <=
                  np.array(CFG.a_stop) * 1e-3 * (1 + 1e-9))
    assert s["stop_category"][-1] == 0                   # power off at standstill
    assert [f.code for f in rig.monitor.faults()] == [257]


# The board's fault and following-error categories are both 0: these tests give each
# stop its own category so one taken for the other is seen.
DISTINCT = dataclasses.replace(NO_OBSERVER, fault_category=2, following_category=1)


def test_following_error_trips_and_latches():
    # a shoulder too weak to hold the arm up cannot follow: the following error trips
    weak = list(BOARD.sections["motion"].drive.torque_limit)
    weak[1] = 25.0              # holds the arm at home (18.4 N·m), not at -1 rad
    cfg = dataclasses.replace(DISTINCT, tau_max=[1e3] * N)
    rig = SafetyRig(cfg=cfg, torque_limit=weak)
    rig.move(HOME + np.array([0, -1.0, 0, 0, 0, 0]))   # lifting against gravity
    s = rig.run(2000)
    hit = np.nonzero(s["fault_code"] == 6)[0]
    assert hit.size, "the following error did not trip"
    k = hit[0]
    err = np.abs(s["q_cmd"][k - 1, :N] - s["q"][k, :N]).max()
    assert err > CFG.following_error_max
    assert np.abs(s["q_cmd"][:k - 1, :N] - s["q"][1:k, :N]).max() <= CFG.following_error_max
    assert s["stop_category"][k] == 1                   # the following category: a ramp,
    assert s["stop_category"][-1] == 0                  # then power off at standstill
    f = rig.monitor.faults()[0]
    assert (f.code, f.tick, f.axis, f.category) == (6, s["tick"][k], 1, 1)


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("axis", [0, 2])
def test_measured_limits_trip(side, axis):
    """Measured positions beyond either limit by more than the tolerance trip, within the
    tolerance they do not. Limits close around home, following error off (the arm is
    moved under the monitor, which would trip it first)."""
    tol = CFG.position_tolerance
    q_min, q_max = (HOME - 0.05).tolist(), (HOME + 0.05).tolist()
    cfg = dataclasses.replace(DISTINCT, q_min=q_min, q_max=q_max, following_error_max=0.0)
    for beyond, code in [(tol + 0.002, 1), (tol - 0.002, 0)]:
        rig = SafetyRig(cfg=cfg)
        rig.run(5)
        q = HOME.copy()
        q[axis] = q_min[axis] - beyond if side == "below" else q_max[axis] + beyond
        rig.cycle.push_command(rig.cycle.tick, rig.drive, ARM_SIM_CMD_SET_STATE, q.tolist())
        s = rig.run(2)
        assert abs(s["q"][1, axis] - q[axis]) < 5e-4     # the drive reports the new state
        assert s["fault_code"][0] == 0 and s["fault_code"][1] == code
        if code:
            assert s["stop_category"][1] == 2            # the fault category
            f = rig.monitor.faults()[0]
            assert (f.code, f.axis, f.value) == (1, axis, s["q"][1, axis])
        else:
            assert rig.monitor.faults() == []


def test_measured_torque_beyond_its_limit_trips():
    rig = SafetyRig(cfg=dataclasses.replace(DISTINCT, tau_max=[5.0] * N))
    s = rig.run(5)
    k = int(np.argmax(s["fault_code"] != 0))
    assert s["fault_code"][k] == 3 and s["stop_category"][k] == 2
    f = rig.monitor.faults()[0]
    assert abs(f.value) > 5.0 and abs(s["tau"][k, f.axis]) > 5.0


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("check", ["velocity", "tcp_speed"])
def test_measured_speed_beyond_its_limit_trips(check, sign):
    """A gravity-compensated (torque-mode) arm pushed about its base speeds up freely,
    whatever the command says, in either direction; the measured check stops it
    (following error off here, or it would trip first)."""
    base = dataclasses.replace(NO_OBSERVER, following_category=2)
    if check == "velocity":
        cfg = dataclasses.replace(base, walls=[], tcp_speed_max=100.0,
                                  tcp_speed_reduced=100.0, following_error_max=0.0)
        code, limit = 2, CFG.v_max[0] * (1 + CFG.velocity_tolerance)
    else:
        cfg = dataclasses.replace(base, walls=[], velocity_tolerance=100.0,
                                  following_error_max=0.0)
        code, limit = 4, CFG.tcp_speed_max + CFG.tcp_speed_tolerance
    rig = SafetyRig(cfg=cfg, mode="torque")
    rig.run(5)
    rig.inject([sign * 20.0, 0, 0, 0, 0, 0])
    s = rig.run(2000)
    k = int(np.argmax(s["fault_code"] != 0))
    assert s["fault_code"][k] == code and s["stop_category"][k] == 0   # the fault category
    f = rig.monitor.faults()[0]
    assert f.code == code
    if check == "velocity":
        assert f.value * sign > limit                    # the signed joint velocity
        assert abs(s["qd"][k, 0]) > limit >= abs(s["qd"][k - 1, 0])
        assert np.sign(s["qd"][k, 0]) == sign
    else:
        assert f.value > limit                           # a speed: positive either way
    assert np.all(s["qd"][k + 1:, :N] == 0)              # category 0: braked


def test_faults_latch_until_reset_and_are_published():
    rig = SafetyRig(cfg=NO_OBSERVER, estop_category=2)
    rig.estop(True)
    rig.run(3)
    rig.estop(False)
    s = rig.run(300)
    assert np.all(s["fault_code"] == 256)                # latched though released
    bus = Bus(clock_ns=lambda: 0)
    sub = bus.subscribe(FAULT_TOPIC)
    assert publish_faults(bus, rig.monitor.new_faults()) == 1
    assert rig.monitor.new_faults() == []
    bus.deliver(1)
    (msg,) = sub.drain()
    assert msg.data["code"] == 256 and msg.data["message"] == fault_message(256)
    assert msg.data["tick"] == rig.monitor.faults()[0].tick
    rig.reset()
    s = rig.run(3)
    assert s["fault_code"][-1] == 0
    assert len(rig.monitor.faults()) == 1                # the history outlives the reset


# -- configuration --------------------------------------------------------------------

BOARD_TEXT = open(BOARD.file).read()


def test_checksum_is_stable_and_reported_by_the_native_block():
    again = parse_board(BOARD_TEXT, "again.yaml").sections["safety"]
    assert again.checksum == CFG.checksum
    rig = SafetyRig()
    assert rig.monitor.status()["checksum"] == CFG.checksum


def test_checksum_ignores_how_the_section_is_written():
    head = BOARD_TEXT[:BOARD_TEXT.index("\nsafety:")]
    rewritten = head + """
safety:
  observer:
    category: 1
    collision_threshold: [20.0, 20, 15, 6, 6, 6.000]
    contact_threshold: [8, 8, 6, 3, 3, 3]
    gain: [200, 200, 200, 200, 200, 200]
  spheres: {tool_radius: 0.030, link_radius: 5.0e-2, per_link: 3}
  walls:
    - name: floor
      plane: {point: [0.5, -0.25, 0], normal: [0, 0, 2.0]}
  wall_margin: 0.01
  following_error: 0.1
  stop: {estop_category: 1, following_category: 0, fault_category: 0, profile: jerk}
  tcp_speed: {tolerance: 0.15, transition_s: 0.5, reduced: 0.25, normal: 1.5}
"""
    same = parse_board(rewritten, "rewritten.yaml").sections["safety"]
    assert same.checksum == CFG.checksum


NUMERIC = ["tcp_speed_max", "tcp_speed_reduced", "reduced_transition_s", "position_tolerance",
           "velocity_tolerance", "tcp_speed_tolerance", "following_error_max", "wall_margin"]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(NUMERIC + ["v_max", "a_stop", "q_max", "wall"]),
       st.integers(0, N - 1), st.floats(1e-6, 0.5))
def test_checksum_changes_with_any_change(name, joint, delta):
    if name == "wall":
        w = CFG.walls[0]
        changed = dataclasses.replace(CFG, walls=[dataclasses.replace(w, offset=w.offset - delta)])
    elif name in NUMERIC:
        changed = dataclasses.replace(CFG, **{name: getattr(CFG, name) * (1 + delta) + delta})
    else:
        values = list(getattr(CFG, name))
        values[joint] += delta
        changed = dataclasses.replace(CFG, **{name: values})
    assert changed.checksum != CFG.checksum
    assert dataclasses.replace(changed).checksum == changed.checksum


def test_configuration_cannot_change_while_enabled():
    rig = SafetyRig(cfg=NO_OBSERVER)
    other = dataclasses.replace(NO_OBSERVER, tcp_speed_max=1.0)
    with pytest.raises(SafetyConfigLocked):
        rig.monitor.reconfigure(other)
    rig.run(5)
    rig.monitor.set_enabled(False, lambda t, k, a: rig.cycle.push_command(rig.cycle.tick, t, k, a))
    rig.run(2)
    assert rig.monitor.status()["enabled"] == 0
    rig.monitor.reconfigure(other)
    assert rig.monitor.config_state() == "queued"
    assert rig.monitor.status()["checksum"] == NO_OBSERVER.checksum
    rig.run(1)                                            # applied at a tick boundary
    assert rig.monitor.config_state() == "applied"
    assert rig.monitor.status()["checksum"] == other.checksum != NO_OBSERVER.checksum
    # queued while disabled but enabled before the tick boundary: refused when applied
    rig.monitor.reconfigure(NO_OBSERVER)
    rig.command(SAFETY_CMD_ENABLE, [1])
    rig.run(1)
    assert rig.monitor.config_state() == "refused"
    assert rig.monitor.status()["checksum"] == other.checksum
    # and the native block refuses at once while enabled, whatever Python believes
    rig.monitor.enabled = False
    with pytest.raises(SafetyConfigLocked):
        rig.monitor.reconfigure(NO_OBSERVER)


@pytest.mark.parametrize("snippet, field, message", [
    ("  tcp_speed: {normal: 0.2, reduced: 0.25}", "safety.tcp_speed.reduced", "cannot exceed"),
    ("  joints: {velocity: [1, 1, 1]}", "safety.joints.velocity", "expected 6 numbers"),
    ("  walls:\n    - {name: w, plane: {normal: [0, 0, 0]}}", "safety.walls[0].plane.normal",
     "zero"),
    ("  walls:\n    - {name: b, keep_out: {lo: [0, 0, 1], hi: [1, 1, 0]}}",
     "safety.walls[0].keep_out.hi", "below"),
    ("  stop: {estop_category: 3}", "safety.stop.estop_category", "must be one of"),
    ("  bogus: 1", "safety.bogus", "unknown field"),
])
def test_board_errors_name_file_line_and_field(snippet, field, message):
    head = BOARD_TEXT[:BOARD_TEXT.index("\nsafety:")]
    text = head + "\nsafety:\n" + snippet + "\n"
    with pytest.raises(ConfigError) as exc:
        parse_board(text, "bad.yaml")
    err = exc.value
    assert err.file == "bad.yaml" and err.field == field and message in err.message
    assert err.line is not None and err.line > head.count("\n")


# -- in the runtime -------------------------------------------------------------------

def test_runtime_reports_checksum_and_publishes_faults_on_the_bus():
    from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP
    from edge.rt.runtime import Runtime

    rt = Runtime(load_board("sim_arm"), virtual_time=True)
    names = [b.name for b in rt.cycle.blocks]
    order = [names.index(n) for n in ("arm_sim", "traj", "path", "safety")]
    assert order == sorted(order)
    sub = rt.bus.subscribe("safety/#")
    rt.run_virtual(0.05)
    drive = names.index("arm_sim")
    rt.cycle.push_command(rt.cycle.tick, drive, ARM_SIM_CMD_ESTOP, [1.0])
    rt.run_virtual(0.1)
    msgs = sub.drain()
    config = [m.data for m in msgs if m.topic == "safety/config"]
    faults = [m.data for m in msgs if m.topic == FAULT_TOPIC]
    assert config == [{"checksum": CFG.checksum, "walls": 1, "spheres": len(CFG.spheres)}]
    assert [f["code"] for f in faults] == [256]
    assert faults[0]["category"] == CFG.estop_category
    summary = rt.summary()["safety"]
    assert summary["checksum"] == CFG.checksum and summary["faults"] == ["estop"]


def _board_with(replace_from: str, replace_to: str, safety_text: str):
    head = BOARD_TEXT[:BOARD_TEXT.index("\nsafety:")]
    assert replace_from in head
    return parse_board(head.replace(replace_from, replace_to) + "\nsafety:\n" + safety_text,
                       "variant.yaml")


def test_a_drive_without_torque_limit_needs_the_safety_torque():
    no_limit = ("    torque_limit: [150.0, 150.0, 150.0, 28.0, 28.0, 28.0]\n", "")
    with pytest.raises(ConfigError) as exc:
        _board_with(*no_limit, "  wall_margin: 0.01\n")
    assert exc.value.field == "safety.joints.torque" and "torque limit" in exc.value.message
    ok = _board_with(*no_limit, "  joints: {torque: [100, 100, 100, 20, 20, 20]}\n")
    assert ok.sections["safety"].tau_max == [100.0, 100.0, 100.0, 20.0, 20.0, 20.0]


def test_the_spheres_section_sets_count_and_radii():
    """By hand: the links with a frame offset (links 2..6 here, each with a nonzero a or
    d) get per_link spheres each, plus one at the tool."""
    moving = sum(1 for i, lk in enumerate(ARM.links, start=1)
                 if i > 1 and math.hypot(lk.a, lk.d) > 1e-9)
    cfg = _board_with("\n", "\n", "  spheres: {per_link: 1, link_radius: 0.04, "
                      "tool_radius: 0.02}\n").sections["safety"]
    assert len(cfg.spheres) == moving + 1
    assert [s.radius for s in cfg.spheres] == [0.04] * moving + [0.02]
    default = _board_with("\n", "\n", "  wall_margin: 0.01\n").sections["safety"]
    assert len(default.spheres) == 3 * moving + 1
    assert {s.radius for s in default.spheres[:-1]} == {0.05} and default.spheres[-1].radius == 0.03


@pytest.mark.parametrize("missing", ["contact_threshold", "collision_threshold"])
def test_an_observer_without_its_thresholds_is_refused_by_name(missing):
    others = {"contact_threshold": "[8, 8, 6, 3, 3, 3]",
              "collision_threshold": "[20, 20, 15, 6, 6, 6]"}
    body = "".join(f"    {k}: {v}\n" for k, v in others.items() if k != missing)
    with pytest.raises(ConfigError) as exc:
        _board_with("\n", "\n", "  observer:\n    gain: 200\n" + body)
    assert exc.value.field == f"safety.observer.{missing}" and "missing" in exc.value.message


def test_the_checksum_does_not_tell_minus_zero_from_zero():
    """-0.0 == 0.0: the same configuration written either way has one checksum."""
    plane = dataclasses.replace(CFG.walls[0], offset=0.0, normal=(0.0, 0.0, 1.0))
    minus = dataclasses.replace(CFG.walls[0], offset=-0.0, normal=(-0.0, 0.0, 1.0))
    a = dataclasses.replace(CFG, walls=[plane])
    b = dataclasses.replace(CFG, walls=[minus])
    assert a.checksum == b.checksum
    assert dataclasses.replace(CFG, walls=[dataclasses.replace(plane, offset=1e-12)]).checksum \
        != a.checksum


@pytest.mark.parametrize(("frame", "ok"), [(0, True), (N, True), (N + 1, True), (N + 2, False)])
def test_extra_spheres_on_frames_0_to_the_tool(frame, ok):
    text = f"  spheres: {{extra: [{{frame: {frame}, center: [0, 0, 0.05], radius: 0.04}}]}}\n"
    if ok:
        cfg = _board_with("\n", "\n", text).sections["safety"]
        assert (cfg.spheres[-1].frame, cfg.spheres[-1].center) == (frame, (0.0, 0.0, 0.05))
    else:
        with pytest.raises(ConfigError) as exc:
            _board_with("\n", "\n", text)
        assert exc.value.field == "safety.spheres.extra[0].frame"


def test_the_reported_speed_scale_is_commanded_over_requested():
    """Velocity-limited mid-move: the status gives the share of the requested speed that
    is commanded (the setpoint asks up to its own limit, the monitor allows 0.3 rad/s)."""
    cfg = dataclasses.replace(NO_OBSERVER, walls=[], v_max=[0.3] * N, velocity_tolerance=1.0)
    rig = SafetyRig(cfg=cfg)
    rig.move(HOME + 0.8)
    s = rig.run(400)
    st_ = rig.monitor.status()
    assert set(s["fault_code"]) == {0} and st_["limiting"] == 1
    assert np.abs(s["qd_cmd"][-1, :N]).max() == pytest.approx(0.3, rel=1e-9)
    assert 0.05 < st_["speed_scale"] < 0.9


def test_a_monitor_not_yet_in_a_cycle_has_no_command_index():
    monitor = SafetyMonitor(ARM, NO_OBSERVER)
    with pytest.raises(NativeError, match="not in a cycle"):
        _ = monitor.index
    assert SafetyRig(cfg=NO_OBSERVER).monitor.index == 2     # after the drive and setpoint


def test_omitted_fields_take_the_documented_defaults():
    # The values docs/motion-safety.md states for a `safety:` section that omits them.
    head = BOARD_TEXT[:BOARD_TEXT.index("\nsafety:")]
    cfg = parse_board(head + "\nsafety: {}\n", "defaults.yaml").sections["safety"]
    assert (cfg.position_tolerance, cfg.velocity_tolerance, cfg.acceleration_tolerance) == \
        (0.01, 0.1, 0.0)
    assert (cfg.tcp_speed_max, cfg.tcp_speed_reduced, cfg.reduced_transition_s,
            cfg.tcp_speed_tolerance) == (1.5, 0.25, 0.5, 0.05)
    assert (cfg.stop_profile, cfg.fault_category, cfg.following_category,
            cfg.estop_category) == ("jerk", 0, 0, 1)
    assert (cfg.following_error_max, cfg.wall_margin, cfg.walls) == (0.1, 0.01, [])


def test_fault_codes_and_names_are_the_documented_ones():
    # the table of docs/motion-safety.md is the spec every consumer of safety/faults reads
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "motion-safety.md").read_text()
    documented = {int(code): name for code, name in
                  re.findall(r"^\| (\d+) \| ([a-z_]+) \|", doc, flags=re.M)}
    assert len(documented) == 16
    assert {code: entry[0] for code, entry in FAULT_CODES.items()} == documented

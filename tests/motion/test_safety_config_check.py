"""The native safety block's own check of its configuration (safety_config_check), field
by field at its boundaries. The Python side refuses bad boards first; this is the C
guard behind it (a configuration from an integrator's code, or a corrupted one), and a
boundary value the rules allow must still be allowed. The rules are those of safety.h
and docs/safety.md: limits positive and finite, tolerances zero or more, the reduced
speed at most the full one, stop categories 0 to 2, unit plane normals, boxes with
lo < hi, spheres on frames 0 (base) to n + 1 (tool) with radius zero or more."""

from __future__ import annotations

import math

import pytest

from edge.config import load_board
from edge.motion.arm_model import native_model
from edge.motion.safety_monitor import native_config
from edge.rt.native import require_native

BOARD = load_board("sim_arm")
CFG = BOARD.sections["safety"]
ARM = BOARD.sections["motion"].arm
N = ARM.n
FFI, LIB = require_native()


def _check(change) -> int:
    model, c = native_model(ARM), native_config(CFG)
    change(c)
    return LIB.safety_config_check(model, c)


def _set(path: str, value):
    """A change setting one field, e.g. 'v_max[2]' or 'walls[0].normal[1]'."""
    def change(c):
        *parents, leaf = path.replace("]", "").split(".")
        obj = c
        for part in parents:
            name, _, index = part.partition("[")
            obj = getattr(obj, name)[int(index)] if index else getattr(obj, name)
        name, _, index = leaf.partition("[")
        if index:
            getattr(obj, name)[int(index)] = value
        else:
            setattr(obj, name, value)
    return change


def _with_box(kind: int):
    def change(c):
        c.n_walls = 1
        w = c.walls[0]
        w.kind = kind
        for k in range(3):
            w.lo[k], w.hi[k] = -1.0, 1.0
    return change


def test_the_boards_configuration_passes():
    assert CFG.walls and CFG.spheres             # the board has both: their rules apply
    assert _check(lambda c: None) == 0


INF, NAN = math.inf, math.nan
# (field, value, the code safety_config_check returns): 0 where the rules allow it
CASES = [
    ("n", N - 1, -2), ("n", 0, -2),
    ("q_min[1]", CFG.q_max[1], -3), ("q_min[1]", NAN, -3),
    ("v_max[0]", 0.0, -3), ("v_max[0]", INF, -3), ("v_max[0]", 1e-9, 0),
    ("a_max[2]", 0.0, -3), ("a_max[2]", INF, -3), ("a_max[2]", NAN, -3),
    ("a_stop[3]", 0.0, -3), ("a_stop[3]", INF, -3),
    ("j_stop[4]", 0.0, -3), ("j_stop[4]", NAN, -3),
    ("tau_max[5]", 0.0, -3), ("tau_max[5]", -1.0, -3),
    ("tcp_speed_max", 0.0, -4), ("tcp_speed_reduced", 0.0, -4),
    ("tcp_speed_reduced", CFG.tcp_speed_max, 0),                 # equal: allowed
    ("tcp_speed_reduced", CFG.tcp_speed_max * (1 + 1e-12), -4),
    ("reduced_transition_s", 0.0, 0), ("reduced_transition_s", -1e-9, -4),
    ("position_tolerance", 0.0, 0), ("position_tolerance", -1e-9, -4),
    ("velocity_tolerance", 0.0, 0), ("velocity_tolerance", -1e-9, -4),
    ("tcp_speed_tolerance", 0.0, 0), ("tcp_speed_tolerance", -1e-9, -4),
    ("wall_margin", 0.0, 0), ("wall_margin", -1e-9, -4), ("wall_margin", NAN, -4),
    ("acceleration_tolerance", INF, -4), ("following_error_max", NAN, -4),
    ("stop_profile", 2, -5), ("stop_profile", -1, -5),
    ("fault_category", 0, 0), ("fault_category", 2, 0),
    ("fault_category", 3, -6), ("fault_category", -1, -6),
    ("following_category", 0, 0), ("following_category", 2, 0),
    ("following_category", 3, -6), ("following_category", -1, -6),
    ("n_walls", -1, -7), ("n_walls", 17, -7), ("n_spheres", -1, -7), ("n_spheres", 49, -7),
    ("n_spheres", 0, -7),                                  # walls but nothing to keep out
    ("walls[0].normal[2]", 0.5, -8),      # (the board's first wall: the floor, normal +z)
    ("walls[0].offset", INF, -8), ("walls[0].kind", 3, -8),
    ("spheres[0].frame", -1, -9), ("spheres[0].frame", N + 2, -9),
    ("spheres[0].frame", N + 1, 0), ("spheres[0].frame", 0, 0),
    ("spheres[0].radius", 0.0, 0), ("spheres[0].radius", -1e-9, -9),
    ("spheres[0].center[2]", INF, -9),
]


@pytest.mark.parametrize("field, value, code", CASES, ids=[f"{f}={v}" for f, v, _ in CASES])
def test_one_field_at_its_boundary(field, value, code):
    if field.startswith("walls[0]"):
        assert CFG.walls[0].kind == "plane"
    assert _check(_set(field, value)) == code


def setattr_index(array, i, value):
    array[i] = value


@pytest.mark.parametrize("kind", [1, 2], ids=["keep_out", "keep_in"])
@pytest.mark.parametrize("edit, code", [
    (lambda w: None, 0),
    (lambda w: setattr_index(w.hi, 1, -1.0), -8),           # lo == hi: an empty box
    (lambda w: setattr_index(w.lo, 2, -INF), -8),
    (lambda w: setattr_index(w.hi, 0, NAN), -8),
])
def test_a_box_needs_finite_corners_with_lo_below_hi(kind, edit, code):
    def change(c):
        _with_box(kind)(c)
        edit(c.walls[0])
    assert _check(change) == code


def test_no_walls_and_no_spheres_is_allowed():
    def neither(c):
        c.n_walls = c.n_spheres = 0
    assert _check(neither) == 0


def test_a_plane_normal_must_be_a_unit_vector():
    def normal(x, y, z):
        def change(c):
            c.n_walls = 1
            w = c.walls[0]
            w.kind, w.offset = 0, 0.0
            w.normal[0], w.normal[1], w.normal[2] = x, y, z
        return change
    s = 1 / math.sqrt(3)
    assert _check(normal(s, s, s)) == 0
    assert _check(normal(0.0, 0.0, 1.0 + 1e-6)) == -8
    assert _check(normal(0.0, 0.0, 0.0)) == -8


def test_null_arguments_and_a_bad_model_are_refused():
    model, c = native_model(ARM), native_config(CFG)
    assert LIB.safety_config_check(FFI.NULL, c) == -1
    assert LIB.safety_config_check(model, FFI.NULL) == -1
    model.mass[0] = -1.0
    assert LIB.safety_config_check(model, c) == -1
    assert LIB.safety_block_alloc(model, c) == FFI.NULL      # alloc checks the same

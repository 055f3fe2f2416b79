"""Inbound command validation (edge.rt.commands) on its own, no broker: every bound of
every argument type at the bound, just inside and just outside, for minima of 0 and below
0 as well as above; both payload encodings; the shape of the request map."""

import json
import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import load_yaml
from edge.errors import ConfigError
from edge.rt.commands import (
    ArgSpec,
    CommandRejected,
    CommandSpec,
    builtin_commands,
    parse_commands,
)

# (min, max) pairs: a minimum of 0 (the falsy bound), a negative one, a positive one
BOUNDS = [(0.0, 5.0), (-3.0, 3.0), (-4.0, -1.0), (1.0, 4.0), (0.0, 0.0)]


def accepts(spec: ArgSpec, value) -> bool:
    try:
        spec.check("x", value)
    except CommandRejected:
        return False
    return True


@pytest.mark.parametrize(("lo", "hi"), BOUNDS)
@pytest.mark.parametrize("kind", ["float", "int"])
def test_numbers_at_and_beyond_both_bounds(kind, lo, hi):
    spec = ArgSpec(kind, min=lo, max=hi)
    lo_v, hi_v = (int(lo), int(hi)) if kind == "int" else (lo, hi)
    step = 1 if kind == "int" else 1e-9
    assert accepts(spec, lo_v) and accepts(spec, hi_v)          # bounds are inclusive
    assert not accepts(spec, lo_v - step)                      # just below the minimum
    assert not accepts(spec, hi_v + step)                      # just above the maximum
    assert not accepts(spec, lo_v - 1000)
    assert not accepts(spec, hi_v + 1000)


@pytest.mark.parametrize("lo", [0.0, -1.0])
def test_only_a_minimum_or_only_a_maximum(lo):
    low_only = ArgSpec("float", min=lo)
    assert accepts(low_only, lo) and accepts(low_only, 1e300)
    assert not accepts(low_only, lo - 0.001)
    high_only = ArgSpec("float", max=lo)
    assert accepts(high_only, lo) and accepts(high_only, -1e300)
    assert not accepts(high_only, lo + 0.001)
    assert accepts(ArgSpec("float"), -1e300) and accepts(ArgSpec("float"), 1e300)


def test_a_rejection_names_the_argument_and_the_range():
    with pytest.raises(CommandRejected, match=r"'speed'.*\[0\.0, 1\.0\]"):
        ArgSpec("float", min=0.0, max=1.0).check("speed", -0.5)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_floats_must_be_finite_even_without_bounds(value):
    assert not accepts(ArgSpec("float"), value)
    assert not accepts(ArgSpec("float", min=-1e308, max=1e308), value)
    assert not accepts(ArgSpec("floats", length=2), [0.0, value])


def test_types_are_strict():
    assert not accepts(ArgSpec("int"), 1.0)
    assert not accepts(ArgSpec("int"), True)            # a bool is not an int here
    assert not accepts(ArgSpec("float"), False)
    assert not accepts(ArgSpec("float"), "1.0")
    assert not accepts(ArgSpec("float"), None)
    assert ArgSpec("float").check("x", 2) == 2.0 and isinstance(ArgSpec("float").check("x", 2),
                                                                 float)
    assert ArgSpec("int").check("x", -7) == -7
    assert ArgSpec("bool").check("x", False) is False
    assert not accepts(ArgSpec("bool"), 0) and not accepts(ArgSpec("bool"), "true")
    assert not accepts(ArgSpec("str"), 5)


def test_strings_up_to_their_length():
    assert accepts(ArgSpec("str"), "a" * 256) and not accepts(ArgSpec("str"), "a" * 257)
    assert accepts(ArgSpec("str", length=3), "abc") and not accepts(ArgSpec("str", length=3),
                                                                    "abcd")
    assert accepts(ArgSpec("str", length=3), "")


@pytest.mark.parametrize(("lo", "hi"), [*BOUNDS, (-2.5, -0.5)])
def test_float_lists_check_length_and_every_element(lo, hi):
    spec = ArgSpec("floats", min=lo, max=hi, length=3)
    assert spec.check("q", [lo, hi, hi]) == [lo, hi, hi]
    assert not accepts(spec, [lo, hi])                   # too short
    assert not accepts(spec, [lo, hi, hi, hi])           # too long
    assert not accepts(spec, [lo, lo - 0.001, hi])       # one element below
    assert not accepts(spec, [lo, hi, hi + 0.001])       # one element above
    assert not accepts(spec, (lo, lo, lo))               # a list, not a tuple
    assert accepts(ArgSpec("floats"), []) and accepts(ArgSpec("floats"), [1.0] * 40)


@settings(max_examples=200, deadline=None)
@given(lo=st.floats(-1e6, 1e6), width=st.floats(0, 1e6),
       value=st.floats(allow_nan=True, allow_infinity=True))
def test_accepted_exactly_when_finite_and_within(lo, width, value):
    hi = lo + width
    assert accepts(ArgSpec("float", min=lo, max=hi), value) == \
        (math.isfinite(value) and lo <= value <= hi)


# -- the request map ----------------------------------------------------------------

JOG = CommandSpec("jog", {"axis": ArgSpec("int", True, 0, 5),
                          "velocity": ArgSpec("float", True, -10.0, 10.0),
                          "note": ArgSpec("str", False)})


def encodings(body):
    return [json.dumps(body).encode(), msgpack.packb(body)]


@pytest.mark.parametrize("enc", [0, 1])
def test_a_valid_request_comes_back_checked(enc):
    for rid in ("r-1", 17, None):
        got = JOG.validate(encodings({"id": rid, "args": {"axis": 0, "velocity": -10}})[enc])
        assert got == {"id": rid, "args": {"axis": 0, "velocity": -10.0}}
    got = JOG.validate(encodings({"args": {"axis": 5, "velocity": 10.0, "note": "n"}})[enc])
    assert got == {"id": None, "args": {"axis": 5, "velocity": 10.0, "note": "n"}}


@pytest.mark.parametrize("enc", [0, 1])
@pytest.mark.parametrize(("body", "reason"), [
    ({"args": {"axis": -1, "velocity": 0.0}}, "'axis'"),
    ({"args": {"axis": 6, "velocity": 0.0}}, "'axis'"),
    ({"args": {"axis": 0, "velocity": -10.001}}, "'velocity'"),
    ({"args": {"axis": 0, "velocity": 10.001}}, "'velocity'"),
    ({"args": {"axis": 0}}, "missing argument 'velocity'"),
    ({"args": {"axis": 0, "velocity": 0.0, "speed": 1}}, "unknown argument"),
    ({"args": [0, 1]}, "'args' must be a map"),
    ({"id": 1.5, "args": {"axis": 0, "velocity": 0.0}}, "'id'"),
    ({"id": [1], "args": {"axis": 0, "velocity": 0.0}}, "'id'"),
    ({"args": {"axis": 0, "velocity": 0.0}, "extra": 1}, "must be a map"),
])
def test_invalid_requests_are_rejected_with_the_reason(enc, body, reason):
    with pytest.raises(CommandRejected, match=reason):
        JOG.validate(encodings(body)[enc])


def test_payloads_that_are_not_maps_or_too_large():
    for raw in (b"[1, 2]", msgpack.packb([1, 2]), b"{not json", b"\xc1", msgpack.packb(3)):
        with pytest.raises(CommandRejected):
            JOG.validate(raw)
    limit = 16 * 1024                                         # docs/bus.md: 16 KiB
    ok = {"args": {"axis": 0, "velocity": 0.0, "note": ""}}
    pad = limit - len(json.dumps(ok).encode())
    at_limit = json.dumps(ok).encode() + b" " * pad               # trailing blanks: valid JSON
    assert len(at_limit) == limit and JOG.validate(at_limit)["args"]["axis"] == 0
    with pytest.raises(CommandRejected, match=f"larger than {limit} bytes"):
        JOG.validate(at_limit + b" ")
    assert CommandSpec("reset", {}).validate(b"{}") == {"id": None, "args": {}}


def test_builtin_command_bounds():
    cmds = builtin_commands(6)
    assert set(cmds) == {"stop", "reset", "enable", "disable", "move_joint", "jog"}

    def ok(name, args):
        try:
            cmds[name].validate(msgpack.packb({"args": args}))
        except CommandRejected:
            return False
        return True

    assert ok("stop", {}) and ok("stop", {"category": 0}) and ok("stop", {"category": 2})
    assert not ok("stop", {"category": -1}) and not ok("stop", {"category": 3})
    q = [0.0] * 6
    assert ok("move_joint", {"positions": q}) and not ok("move_joint", {"positions": q[:5]})
    assert ok("move_joint", {"positions": q, "speed_scale": 0.0})
    assert ok("move_joint", {"positions": q, "speed_scale": 1.0})
    assert not ok("move_joint", {"positions": q, "speed_scale": -0.01})
    assert not ok("move_joint", {"positions": q, "speed_scale": 1.01})
    assert ok("jog", {"axis": 0, "velocity": -10.0}) and ok("jog", {"axis": 5, "velocity": 10})
    assert not ok("jog", {"axis": 6, "velocity": 0.0}) and not ok("jog", {"axis": -1,
                                                                           "velocity": 0.0})
    assert not ok("jog", {"axis": 0, "velocity": 10.5})
    assert ok("enable", {}) and not ok("enable", {"force": True})


def test_board_defined_commands():
    node = load_yaml("""
commands:
  stop:
  set_flow: {speed: {type: float, min: 0, max: 2.5}, label: {type: str, required: false}}
  nudge: {offset: {type: float, min: -0.5, max: 0}}
""", "cmds.yaml").child("commands")
    cmds = parse_commands(node, 6)
    assert cmds["stop"] == builtin_commands(6)["stop"]
    flow = cmds["set_flow"]
    assert flow.validate(b'{"args": {"speed": 0}}')["args"] == {"speed": 0.0}
    assert flow.validate(b'{"args": {"speed": 2.5, "label": "x"}}')["args"]["label"] == "x"
    for bad in (b'{"args": {"speed": -0.1}}', b'{"args": {"speed": 2.6}}', b'{"args": {}}'):
        with pytest.raises(CommandRejected):
            flow.validate(bad)
    nudge = cmds["nudge"]
    assert nudge.validate(b'{"args": {"offset": -0.5}}')["args"] == {"offset": -0.5}
    for bad in (b'{"args": {"offset": -0.51}}', b'{"args": {"offset": 0.01}}'):
        with pytest.raises(CommandRejected):
            nudge.validate(bad)
    listed = parse_commands(load_yaml("commands: [stop, jog]\n", "l.yaml").child("commands"), 6)
    assert set(listed) == {"stop", "jog"}


@pytest.mark.parametrize(("text", "field"), [
    ("commands: [fly]\n", "fly"),
    ("commands: {fly: }\n", "fly"),
    ("commands: {'no way': {a: {type: int}}}\n", "identifier"),
    ("commands: {c: {a: {type: complex}}}\n", "type"),
    ("commands: {c: {a: {type: int, unit: m}}}\n", "unit"),
])
def test_bad_command_definitions_name_the_field(text, field):
    with pytest.raises(ConfigError, match=field):
        parse_commands(load_yaml(text, "bad.yaml").child("commands"), 6)

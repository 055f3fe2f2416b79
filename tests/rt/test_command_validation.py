"""Inbound command validation without a broker: hostile payloads are rejected with a
reason (and the id when it is readable), and nothing but CommandRejected ever escapes."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.commands import ArgSpec, CommandRejected, CommandSpec, builtin_commands

COMMANDS = builtin_commands(2)
CUSTOM = CommandSpec("set", {"level": ArgSpec("int", True, 0, 100),
                             "label": ArgSpec("str", False),
                             "gain": ArgSpec("float", False, -1.0, 1.0),
                             "on": ArgSpec("bool", False),
                             "free": ArgSpec("int", False)})
SPECS = [*COMMANDS.values(), CUSTOM]


def deep_json(depth: int) -> bytes:
    return b'{"args": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE = [
    # (payload, the id the reply must carry, a phrase of the reason)
    (b'{"id": 100000000000000000000000000000, "args": {}}', None, "int within int64"),
    (msgpack.packb({"id": 2 ** 64 - 1, "args": {}}), None, "int within int64"),
    (deep_json(6000), None, "nested too deeply"),
    (b'{"id": "\\udc80", "args": {}}', None, "valid UTF-8"),
    (b'{"id": 3, "args": {"category": NaN}}', None, "not strict JSON"),
    (b'{"id": 3, "args": {"category": -Infinity}}', None, "not strict JSON"),
    (b'{"id": 4, "id": 5, "args": {}}', None, "duplicate key"),
    (b'{"id": "\xff\xfe", "args": {}}', None, "neither msgpack nor JSON"),
    (msgpack.packb({"id": msgpack.ExtType(5, b"x"), "args": {}}), None, "'id' must be"),
    (msgpack.packb({"id": 6, "args": {"category": msgpack.ExtType(1, b"")}}), 6, "must be an int"),
    (b"\xdd\xff\xff\xff\xff", None, "neither msgpack nor JSON"),          # array of 2^32-1
    (b"\xdf\xff\xff\xff\xff", None, "neither msgpack nor JSON"),          # map of 2^32-1
    (b"\x91" * 5000, None, "neither msgpack nor JSON"),                   # 5000-deep arrays
    (msgpack.packb({"id": 7, "args": {"category": 2 ** 64 - 1}}), 7, "64 bits"),
    (b'{"id": 8, "args": {"category": 100000000000000000000000}}', 8, "64 bits"),
    (msgpack.packb({"id": "x" * 129, "args": {}}), None, "at most 128"),
    (b'{"id": 9, "args": {"category": 1}, "extra": 0}', 9, "must be a map with"),
]


@pytest.mark.parametrize("payload, request_id, reason", HOSTILE)
def test_hostile_stop_payloads_are_rejected_with_id_and_reason(payload, request_id,
                                                              reason) -> None:
    with pytest.raises(CommandRejected) as err:
        COMMANDS["stop"].validate(payload)
    assert err.value.request_id == request_id
    assert reason in str(err.value)
    msgpack.packb({"id": err.value.request_id, "error": str(err.value)})   # replyable


def test_a_readable_id_rides_on_every_later_rejection() -> None:
    with pytest.raises(CommandRejected) as err:
        COMMANDS["move_joint"].validate(json.dumps(
            {"id": "req-1", "args": {"positions": [0.0]}}).encode())
    assert err.value.request_id == "req-1" and "list of 2 numbers" in str(err.value)


@pytest.mark.parametrize("args, reason", [
    ({"level": 0, "label": "\udc80"}, "valid UTF-8"),
    ({"level": 0, "label": "x" * 257}, "at most 256"),
    ({"level": -1}, "within [0, 100]"),          # the minimum is checked when it is 0
    ({"level": 101}, "within [0, 100]"),
    ({"level": 5, "gain": -1.5}, "within [-1.0, 1.0]"),
    ({"level": 5, "gain": 10 ** 400}, "must be finite"),
    ({"level": 5, "free": -(2 ** 63) - 1}, "64 bits"),
    ({"level": 5, "on": 1}, "must be a bool"),
    ({"level": True}, "must be an int"),
])
def test_argument_checks(args, reason) -> None:
    with pytest.raises(CommandRejected, match=reason.replace("[", r"\[").replace("]", r"\]")):
        CUSTOM.validate(json.dumps({"id": 1, "args": args}).encode())


def test_int64_bounds_and_limits_are_accepted() -> None:
    body = {"id": 2 ** 63 - 1, "args": {"level": 100, "free": -(2 ** 63), "label": "é" * 256,
                                        "gain": -1.0, "on": False}}
    got = CUSTOM.validate(msgpack.packb(body))
    assert got == {"id": 2 ** 63 - 1, "args": body["args"]}
    assert CUSTOM.validate(msgpack.packb({"args": {"level": 0}})) == {"id": None,
                                                                      "args": {"level": 0}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)
bodies = st.fixed_dictionaries({}, optional={"id": json_values, "args": json_values,
                                             "x": json_values}) | json_values
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1) | st.floats()
    | st.text(max_size=8) | st.binary(max_size=8)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)


def only_rejections(spec: CommandSpec, raw: bytes) -> None:
    """validate() either returns a checked, msgpack-encodable command or raises
    CommandRejected with a replyable id; anything else fails the test."""
    try:
        command = spec.validate(raw)
    except CommandRejected as exc:
        msgpack.packb({"id": exc.request_id, "error": str(exc)})
        return
    msgpack.packb(command)
    assert set(command) == {"id", "args"} and set(command["args"]) <= set(spec.args)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64), spec=st.sampled_from(SPECS))
def test_arbitrary_bytes_only_ever_raise_command_rejected(raw, spec) -> None:
    only_rejections(spec, raw)
    only_rejections(spec, b"{" + raw)


@settings(max_examples=300, deadline=None)
@given(body=bodies, spec=st.sampled_from(SPECS))
def test_arbitrary_json_only_ever_raises_command_rejected(body, spec) -> None:
    only_rejections(spec, json.dumps(body).encode())       # allow_nan: NaN literals too


@settings(max_examples=300, deadline=None)
@given(body=st.fixed_dictionaries({}, optional={"id": msgpack_values, "args": msgpack_values})
       | msgpack_values, spec=st.sampled_from(SPECS))
def test_arbitrary_msgpack_only_ever_raises_command_rejected(body, spec) -> None:
    only_rejections(spec, msgpack.packb(body, use_bin_type=True))


@settings(max_examples=100, deadline=None)
@given(depth=st.integers(1, 20_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_any_nesting_depth_is_rejected_or_accepted_never_raised(depth, opener) -> None:
    closer = b"]" if opener == b"[" else b"}"
    only_rejections(COMMANDS["stop"], b'{"args": ' + opener * depth + b"1" + closer * depth
                    + b"}")
    only_rejections(COMMANDS["stop"], b"\x81\xa4args" + b"\x91" * depth + b"\x01")

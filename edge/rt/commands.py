"""Commands from outside (MQTT `cmd/<name>`): which ones a board allows, and their checks.
The built-in ones are the motion controller's (edge/motion/requests.py, MOTION_REQUESTS).

A command is validated completely before anything reaches the runtime: unknown names,
missing or extra arguments, wrong types, values out of range and oversized payloads are
rejected with a reason the sender gets back.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from typing import Any

import msgpack

from edge.config import Node

MAX_COMMAND_BYTES = 16 * 1024
MAX_ID_CHARS = 128
MAX_STR_CHARS = 256                         # a "str" argument without its own `length`
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
ARG_TYPES = ("bool", "int", "float", "str", "floats")


@dataclass(frozen=True)
class CommandRate:
    """`mqtt: command_rate: {per_s, burst}`: a token bucket per command name; `stop` is
    never limited."""
    per_s: float = 20.0
    burst: int = 40


class CommandRejected(Exception):
    """Why an inbound command was refused (sent back in the reply); `request_id` is the
    request's id when one could be read and is representable, else None."""

    def __init__(self, reason: str, request_id: str | int | None = None) -> None:
        super().__init__(reason)
        self.request_id = request_id


def _valid_text(value: str) -> bool:
    """True when `value` encodes as UTF-8: JSON escapes can carry lone surrogates
    ("\\udc80") that no msgpack or MQTT peer downstream could encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constants(name: str) -> Any:
    raise CommandRejected(f"payload is not strict JSON: {name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CommandRejected(f"payload has a duplicate key {key[:32]!r}")
        out[key] = value
    return out


def decode_payload(raw: bytes) -> Any:
    """A command body from strict JSON (no NaN/Infinity, no duplicate keys, valid UTF-8)
    or msgpack; raises CommandRejected for anything else, whatever the bytes."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"payload larger than {MAX_COMMAND_BYTES} bytes")
    try:
        if raw.lstrip()[:1] == b"{":
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constants,
                              object_pairs_hook=_unique_keys)
        # strict_map_key: only str keys; array and map headers are bounded by len(raw)
        return msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except CommandRejected:
        raise
    except RecursionError:
        raise CommandRejected("payload is nested too deeply") from None
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError, OverflowError) as exc:
        raise CommandRejected(f"payload is neither msgpack nor JSON: "
                              f"{type(exc).__name__}: {str(exc)[:80]}") from None


def read_request_id(body: Any) -> str | int | None:
    """The body's `id` when it is one a reply can carry: a str of at most MAX_ID_CHARS
    characters of valid UTF-8, or an int within int64; None when absent or not."""
    if not isinstance(body, dict):
        return None
    rid = body.get("id")
    if isinstance(rid, str) and len(rid) <= MAX_ID_CHARS and _valid_text(rid):
        return rid
    if isinstance(rid, int) and not isinstance(rid, bool) and INT64_MIN <= rid <= INT64_MAX:
        return rid
    return None


@dataclass(frozen=True)
class ArgSpec:
    type: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    length: int | None = None               # for "floats" (and max length for "str")

    def check(self, name: str, value: Any) -> Any:
        """The checked value; raises CommandRejected for a wrong type, a value out of
        [min, max] (ints also within int64), a non-finite number, a wrong length."""
        if self.type == "bool":
            if not isinstance(value, bool):
                raise CommandRejected(f"argument '{name}' must be a bool")
            return value
        if self.type == "str":
            limit = MAX_STR_CHARS if self.length is None else self.length
            if not isinstance(value, str) or len(value) > limit or not _valid_text(value):
                raise CommandRejected(f"argument '{name}' must be a string of at most "
                                      f"{limit} characters of valid UTF-8")
            return value
        if self.type == "floats":
            if not isinstance(value, list) or (self.length is not None
                                               and len(value) != self.length):
                raise CommandRejected(f"argument '{name}' must be a list of {self.length} numbers")
            return [self._number(name, v, float) for v in value]
        return self._number(name, value, int if self.type == "int" else float)

    def _number(self, name: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            what = "an int" if kind is int else "a number"
            raise CommandRejected(f"argument '{name}' must be {what}")
        if kind is int and not INT64_MIN <= value <= INT64_MAX:
            raise CommandRejected(f"argument '{name}' must fit in 64 bits")
        if kind is float:
            try:
                value = float(value)
            except OverflowError:                # an int beyond the float range
                raise CommandRejected(f"argument '{name}' must be finite") from None
            if not math.isfinite(value):
                raise CommandRejected(f"argument '{name}' must be finite")
        too_low = self.min is not None and value < self.min
        if too_low or (self.max is not None and value > self.max):
            raise CommandRejected(f"argument '{name}' must be within [{self.min}, {self.max}]")
        return value


@dataclass(frozen=True)
class CommandSpec:
    name: str
    args: dict[str, ArgSpec]

    def validate(self, raw: bytes) -> dict[str, Any]:
        """Decode a msgpack or JSON map {"id": .., "args": {..}} → {"id", "args"} checked.

        Raises CommandRejected, and nothing else, whatever `raw` holds; the exception
        carries the request id when one could be read (see `read_request_id`)."""
        if not isinstance(raw, (bytes, bytearray)):
            raise CommandRejected("payload must be bytes")
        body = decode_payload(bytes(raw))
        request_id = read_request_id(body)
        try:
            return self._check_body(body, request_id)
        except CommandRejected as exc:
            exc.request_id = request_id
            raise
        except Exception as exc:        # a checker bug must not become a dead receiver
            raise CommandRejected(f"malformed command ({type(exc).__name__})",
                                  request_id) from None

    def _check_body(self, body: Any, request_id: str | int | None) -> dict[str, Any]:
        if not isinstance(body, dict) or set(body) - {"id", "args"}:
            raise CommandRejected("payload must be a map with 'args' and optionally 'id'")
        if body.get("id") is not None and request_id is None:
            raise CommandRejected(f"'id' must be a string of at most {MAX_ID_CHARS} "
                                  "characters of valid UTF-8 or an int within int64")
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise CommandRejected("'args' must be a map")
        unknown = set(args) - set(self.args)
        if unknown:
            names = ", ".join(sorted(repr(str(u)[:32]) for u in unknown)[:8])
            raise CommandRejected(f"unknown argument(s): {names}")
        checked = {}
        for name, spec in self.args.items():
            if name not in args:
                if spec.required:
                    raise CommandRejected(f"missing argument '{name}'")
                continue
            checked[name] = spec.check(name, args[name])
        return {"id": request_id, "args": checked}


# The built-in commands are the motion controller's requests offered over MQTT (its table,
# MOTION_REQUESTS); the runtime core reaches that section package by name, never by import.
BUILTIN_COMMANDS = "edge.motion.requests:mqtt_commands"


def builtin_commands(n_axes: int) -> dict[str, CommandSpec]:
    """The controller's own commands, for an arm of n_axes; a board allows a subset of
    them by name."""
    module_name, func_name = BUILTIN_COMMANDS.split(":")
    return getattr(importlib.import_module(module_name), func_name)(n_axes)


def parse_commands(node: Node, n_axes: int) -> dict[str, CommandSpec]:
    """`commands:` — a list of built-in names, or a map name → {arg: {type, min, max, ...}}
    for the board's own commands (null for a built-in)."""
    builtins = builtin_commands(n_axes)
    if isinstance(node.value, list):
        items = {item.scalar(str): (item, None) for item in node.sequence()}
    else:
        items = {name: (child, child) for name, child in node.mapping().items()}
    out: dict[str, CommandSpec] = {}
    for name, (where, spec_node) in items.items():
        if not name.isidentifier():
            raise where.error(f"command name {name!r} must be an identifier")
        if spec_node is None or spec_node.value is None:
            if name not in builtins:
                raise where.error(f"unknown built-in command {name!r} (built-ins: "
                                  f"{', '.join(builtins)}); give its arguments to define it")
            out[name] = builtins[name]
            continue
        args = {}
        for arg_name, arg in spec_node.mapping().items():
            arg.only("type", "required", "min", "max", "length")
            spec = ArgSpec(type=arg.get("type", str, choices=ARG_TYPES),
                           required=arg.get("required", bool, True),
                           min=arg.get("min", float, None), max=arg.get("max", float, None),
                           length=arg.get("length", int, None, min=0))
            if spec.min is not None and spec.max is not None and spec.min > spec.max:
                raise arg.error(f"min ({spec.min:g}) exceeds max ({spec.max:g}): no value "
                                "would pass", "max")
            if spec.type in ("bool", "str") and (spec.min is not None or spec.max is not None):
                raise arg.error(f"min and max are for numbers, not {spec.type}",
                                "min" if spec.min is not None else "max")
            args[arg_name] = spec
        out[name] = CommandSpec(name, args)
    return out

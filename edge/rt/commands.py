"""Commands from outside (MQTT `cmd/<name>`): the checks of their payloads and arguments.

Which commands a board allows is its `mqtt: commands:` (edge/rt/bus_config.py); the
built-in ones are the motion controller's (edge/motion/requests.py, MOTION_REQUESTS).

A command is validated completely before anything reaches the runtime: unknown names,
missing or extra arguments, wrong types, values out of range and oversized payloads are
rejected with a reason the sender gets back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import msgpack

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

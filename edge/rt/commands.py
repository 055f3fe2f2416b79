"""Commands from outside (MQTT `cmd/<name>`): which ones a board allows, and their checks.

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

from edge.config import Node

MAX_COMMAND_BYTES = 16 * 1024
ARG_TYPES = ("bool", "int", "float", "str", "floats")


class CommandRejected(Exception):
    """Why an inbound command was refused (sent back in the reply)."""


@dataclass(frozen=True)
class ArgSpec:
    type: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    length: int | None = None               # for "floats" (and max length for "str")

    def check(self, name: str, value: Any) -> Any:
        if self.type == "bool":
            if not isinstance(value, bool):
                raise CommandRejected(f"argument '{name}' must be a bool")
            return value
        if self.type == "str":
            if not isinstance(value, str) or len(value) > (self.length or 256):
                raise CommandRejected(f"argument '{name}' must be a string of at most "
                                      f"{self.length or 256} characters")
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
        if kind is float:
            value = float(value)
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
        """Decode a msgpack or JSON map {"id": .., "args": {..}} → {"id", "args"} checked."""
        if len(raw) > MAX_COMMAND_BYTES:
            raise CommandRejected(f"payload larger than {MAX_COMMAND_BYTES} bytes")
        try:
            body = json.loads(raw) if raw.lstrip()[:1] == b"{" else msgpack.unpackb(raw, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                UnicodeDecodeError) as exc:
            raise CommandRejected(f"payload is neither msgpack nor JSON: {exc}") from None
        if not isinstance(body, dict) or set(body) - {"id", "args"}:
            raise CommandRejected("payload must be a map with 'args' and optionally 'id'")
        request_id = body.get("id")
        if request_id is not None and not isinstance(request_id, (str, int)):
            raise CommandRejected("'id' must be a string or an int")
        args = body.get("args", {})
        if not isinstance(args, dict):
            raise CommandRejected("'args' must be a map")
        unknown = set(args) - set(self.args)
        if unknown:
            raise CommandRejected(f"unknown argument(s): {', '.join(sorted(map(str, unknown)))}")
        checked = {}
        for name, spec in self.args.items():
            if name not in args:
                if spec.required:
                    raise CommandRejected(f"missing argument '{name}'")
                continue
            checked[name] = spec.check(name, args[name])
        return {"id": request_id, "args": checked}


def builtin_commands(n_axes: int) -> dict[str, CommandSpec]:
    """The controller's own commands; a board allows a subset of them by name."""
    joints = ArgSpec("floats", length=n_axes)
    return {
        "stop": CommandSpec("stop", {"category": ArgSpec("int", False, 0, 2)}),
        "reset": CommandSpec("reset", {}),
        "enable": CommandSpec("enable", {}),
        "disable": CommandSpec("disable", {}),
        "move_joint": CommandSpec("move_joint", {
            "positions": joints, "speed_scale": ArgSpec("float", False, 0.0, 1.0)}),
        "jog": CommandSpec("jog", {"axis": ArgSpec("int", True, 0, n_axes - 1),
                                   "velocity": ArgSpec("float", True, -10.0, 10.0)}),
    }


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

"""Board files: YAML in, a validated model out; every error names file, line and field.

The loader keeps YAML line numbers on every node (`Node`), so a section parser can say
exactly where a wrong value is. Each top-level section has one parser, living with the
concern it configures (SECTION_PARSERS); this module owns only the `cycle` section.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.errors import ConfigError

BOARDS_DIR = Path(__file__).resolve().parent / "boards"
DEFAULT_BOARD = "sim_arm"

# section name -> "module:function" taking (Node, Board) and returning the parsed section
SECTION_PARSERS: dict[str, str] = {
    "cycle": "edge.config:parse_cycle",
    "axes": "edge.config:parse_axes",
    "motion": "edge.motion.config:parse_motion",
    "safety": "edge.motion.safety:parse_safety",
    "program": "edge.motion.program:parse_program",
    "logic": "edge.logic.config:parse_logic",
    "acquisition": "edge.acquisition.config:parse_acquisition",
    "bus": "edge.rt.bus_config:parse_bus",
    "mqtt": "edge.rt.bus_config:parse_mqtt",
}


class Node:
    """A YAML value with the file and line it came from, and checked accessors."""

    def __init__(self, value: Any, file: str, line: int, path: str) -> None:
        self.value = value
        self.file = file
        self.line = line
        self.path = path

    def error(self, message: str, field_name: str | None = None) -> ConfigError:
        """A ConfigError pointing at this node (or at its child `field_name`)."""
        if field_name is not None and isinstance(self.value, dict) and field_name in self.value:
            child = self.value[field_name]
            return ConfigError(message, file=self.file, line=child.line,
                               field=f"{self.path}.{field_name}".lstrip("."))
        name = f"{self.path}.{field_name}" if field_name else self.path
        return ConfigError(message, file=self.file, line=self.line, field=name.lstrip(".") or None)

    # -- structure -------------------------------------------------------------------
    def mapping(self) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}")
        return self.value

    def sequence(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}")
        return self.value

    def only(self, *allowed: str) -> None:
        """Reject keys not in `allowed` (a typo must not be ignored silently)."""
        for key, child in self.mapping().items():
            if key not in allowed:
                raise ConfigError(f"unknown field (expected one of: {', '.join(allowed)})",
                                  file=self.file, line=child.line, field=child.path)

    def child(self, name: str, default: Any = ...) -> Node | None:
        m = self.mapping()
        if name in m:
            return m[name]
        if default is ...:
            raise self.error("required field is missing", name)
        return None

    # -- scalars ---------------------------------------------------------------------
    def get(self, name: str, kind: type, default: Any = ..., *, min: float | None = None,
            max: float | None = None, choices: tuple | None = None) -> Any:
        """The scalar field `name` checked against type, range and choices."""
        node = self.child(name, default)
        if node is None:
            return default
        return node.scalar(kind, min=min, max=max, choices=choices)

    def scalar(self, kind: type, *, min: float | None = None, max: float | None = None,
               choices: tuple | None = None) -> Any:
        v = self.value
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if kind in (int, float) and isinstance(v, bool) or not isinstance(v, kind):
            raise self.error(f"expected {kind.__name__}, got {_kind(self.value)}")
        if kind is float and not math.isfinite(v):
            raise self.error("must be a finite number")
        if min is not None and v < min:
            raise self.error(f"must be >= {min}, got {v}")
        if max is not None and v > max:
            raise self.error(f"must be <= {max}, got {v}")
        if choices is not None and v not in choices:
            raise self.error(f"must be one of {', '.join(map(str, choices))}, got {v!r}")
        return v

    def floats(self, name: str, length: int | None = None, default: Any = ...) -> list[float] | Any:
        """A list of finite numbers, optionally of an exact length."""
        node = self.child(name, default)
        if node is None:
            return default
        items = node.sequence()
        if length is not None and len(items) != length:
            raise node.error(f"expected {length} numbers, got {len(items)}")
        return [item.scalar(float) for item in items]

    def plain(self) -> Any:
        """The value with line information stripped (for opaque sub-structures)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _to_nodes(node: yaml.Node, file: str, path: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise ConfigError("duplicate field", file=file, line=key_node.start_mark.line + 1,
                                  field=f"{path}.{key}".lstrip("."))
            out[key] = _to_nodes(value_node, file, f"{path}.{key}".lstrip("."))
        return Node(out, file, line, path)
    if isinstance(node, yaml.SequenceNode):
        return Node([_to_nodes(v, file, f"{path}[{i}]") for i, v in enumerate(node.value)],
                    file, line, path)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(f"YAML value: {exc.problem}", file=file, line=line,
                          field=path or None) from None
    return Node(value, file, line, path)


def load_yaml(text: str, file: str) -> Node:
    """Parse YAML text into Nodes; syntax errors become ConfigError with the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"YAML syntax: {exc.problem}", file=file,
                          line=mark.line + 1 if mark else None) from None
    if root is None:
        raise ConfigError("the board file is empty", file=file)
    return _to_nodes(root, file, "")


@dataclass
class CycleConfig:
    period_ns: int = 1_000_000
    busy_tail_us: float = 100.0
    cpu: int = -1              # -1: the last CPU of the machine
    priority: int = 80
    lock_memory: bool = True
    watchdog_ms: float = 0.0   # 0: off


@dataclass
class AxisConfig:
    name: str
    max_velocity: float        # rad/s
    max_acceleration: float    # rad/s^2
    initial_position: float = 0.0
    max_jerk: float = 0.0      # rad/s^3; parse_axes: 10/s x max_acceleration when absent


@dataclass
class Board:
    name: str
    file: str
    cycle: CycleConfig = field(default_factory=CycleConfig)
    axes: list[AxisConfig] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)   # parsed optional sections
    root: Node | None = None


def parse_cycle(node: Node, board: Board) -> CycleConfig:
    node.only("period_us", "busy_tail_us", "cpu", "priority", "lock_memory", "watchdog_ms")
    period_us = node.get("period_us", float, 1000.0, min=50.0, max=1_000_000.0)
    tail = node.get("busy_tail_us", float, 100.0, min=0.0)
    if tail > period_us:
        raise node.error(f"busy_tail_us ({tail}) cannot exceed period_us ({period_us})",
                         "busy_tail_us")
    return CycleConfig(
        period_ns=int(round(period_us * 1000)),
        busy_tail_us=tail,
        cpu=node.get("cpu", int, -1, min=-1),
        priority=node.get("priority", int, 80, min=0, max=99),
        lock_memory=node.get("lock_memory", bool, True),
        watchdog_ms=node.get("watchdog_ms", float, 0.0, min=0.0),
    )


def parse_axes(node: Node, board: Board) -> list[AxisConfig]:
    axes: list[AxisConfig] = []
    items = node.sequence()
    if not 1 <= len(items) <= 16:
        raise node.error(f"a board has 1 to 16 axes, got {len(items)}")
    for item in items:
        item.only("name", "max_velocity", "max_acceleration", "max_jerk", "initial_position")
        if any(a.name == item.get("name", str) for a in axes):
            raise item.error("axis names must be unique", "name")
        axes.append(AxisConfig(
            name=item.get("name", str),
            max_velocity=item.get("max_velocity", float, min=1e-9),
            max_acceleration=item.get("max_acceleration", float, min=1e-9),
            initial_position=item.get("initial_position", float, 0.0),
        ))
        axes[-1].max_jerk = item.get("max_jerk", float, 10.0 * axes[-1].max_acceleration,
                                     min=1e-9)
    return axes


def _section_parser(name: str, node: Node):
    target = SECTION_PARSERS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"section '{name}' is not supported by this build of edge",
                              file=node.file, line=node.line, field=name) from None
        raise
    return getattr(module, func_name)


def parse_board(text: str, file: str) -> Board:
    """Validate a board file's text; raises ConfigError naming file, line and field."""
    root = load_yaml(text, file)
    top = root.mapping()
    root.only("name", *SECTION_PARSERS)
    board = Board(name=root.get("name", str), file=file, root=root)
    for section in SECTION_PARSERS:       # fixed order: later sections may use earlier ones
        if section not in top:
            continue
        parsed = _section_parser(section, top[section])(top[section], board)
        if section == "cycle":
            board.cycle = parsed
        elif section == "axes":
            board.axes = parsed
        else:
            board.sections[section] = parsed
    if not board.axes:
        raise root.error("required field is missing", "axes")
    return board


def resolve_board_path(name_or_path: str | None) -> Path:
    """A board name (shipped in edge/boards) or a path to a board file."""
    name_or_path = name_or_path or DEFAULT_BOARD
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"board file not found: {path}")
        return path
    shipped = BOARDS_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        known = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))) or "none"
        raise ConfigError(f"unknown board '{name_or_path}' (shipped boards: {known})")
    return shipped


def load_board(name_or_path: str | None = None) -> Board:
    """Load and validate a shipped board by name, or a board file by path."""
    path = resolve_board_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read board file: {exc}", file=str(path)) from None
    return parse_board(text, str(path))

"""Board files: YAML in, a validated model out; every error names file, line and field.

The loader keeps YAML line numbers on every node (`Node`), so a section parser can say
exactly where a wrong value is. Each top-level section is declared once, with its
parser, by the package it configures (edge.sections); this module declares only the
`cycle` and `axes` sections.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.errors import ConfigError
from edge.sections import DECLARED_IN, Section, declaration, needs_problem

BOARDS_DIR = Path(__file__).resolve().parent / "boards"
DEFAULT_BOARD = "sim_arm"

class Node:
    """A YAML value with the file and line it came from, and checked accessors.

    column: 1-based column where the value starts (None for a node built by hand), so an
    error inside a value (an expression in a HIL scenario) can point at its character."""

    def __init__(self, value: Any, file: str, line: int, path: str,
                 column: int | None = None) -> None:
        self.value = value
        self.file = file
        self.line = line
        self.path = path
        self.column = column

    def error(self, message: str, field_name: str | None = None) -> ConfigError:
        """A ConfigError pointing at this node (or at its child `field_name`)."""
        if field_name is not None and isinstance(self.value, dict) and field_name in self.value:
            child = self.value[field_name]   # its own file: a HIL scenario's override
            return ConfigError(message, file=child.file, line=child.line,
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
                                  file=child.file, line=child.line, field=child.path)

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


# Bounds on what a board file may cost to load: a real board is a few kB, a few hundred
# values and a dozen levels deep; anything far beyond is a mistake or an attack (nested
# aliases expand exponentially, deep nesting exhausts the parser's recursion).
MAX_BOARD_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_VALUES = 100_000

# YAML 1.1 (PyYAML) reads `1e12` and `1.5e3` as strings: its float pattern wants a dot
# and a signed exponent. Board files read them as floats, as YAML 1.2 and JSON do.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


# libyaml scans and parses (about 6x faster than PyYAML's Python scanner on a board);
# composing stays in Python, so the bounds below hold whichever parser runs.
_LIBYAML = getattr(yaml, "__with_libyaml__", False)
_PARSER = (yaml._yaml.CParser,) if _LIBYAML else (yaml.reader.Reader, yaml.scanner.Scanner,
                                             yaml.parser.Parser)


class _BoardLoader(yaml.composer.Composer, *_PARSER, yaml.constructor.SafeConstructor,
                   yaml.resolver.Resolver):
    """A safe loader that bounds nesting depth and alias count while composing."""

    def __init__(self, text: str, file: str) -> None:
        if _LIBYAML:
            yaml._yaml.CParser.__init__(self, text)
        else:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        yaml.composer.Composer.__init__(self)
        self._file = file
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):   # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} aliases (*name)", file=self._file,
                                  line=self.peek_event().start_mark.line + 1)
            return yaml.composer.Composer.compose_node(self, parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=self._file,
                                  line=self.peek_event().start_mark.line + 1)
            return yaml.composer.Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


def _reader_error_line(text: str, position: int) -> int:
    """The line of a reader error: libyaml counts the position in UTF-8 bytes, PyYAML in
    characters."""
    if _LIBYAML:
        return text.encode("utf-8", "surrogatepass")[:position].count(b"\n") + 1
    return text.count("\n", 0, position) + 1


_BoardLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT,
                                   list("-+.0123456789"))


class _Expansion:
    """Counts the values a board expands to (aliases repeat what they name)."""

    def __init__(self, file: str) -> None:
        self.file = file
        # one constructor per file: it keeps what it built by node, so a value an alias
        # repeats is constructed once
        self.constructor = yaml.constructor.SafeConstructor()
        self.values = 0

    def count(self, node: yaml.Node, path: str) -> None:
        self.values += 1
        # an alias inside an anchored value can carry nesting past what composing saw
        if path.count(".") + path.count("[") >= MAX_DEPTH:
            raise ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=self.file,
                              line=node.start_mark.line + 1)
        if self.values > MAX_VALUES:
            raise ConfigError(f"the board expands to more than {MAX_VALUES} values "
                              "(aliases repeating aliases?)", file=self.file,
                              line=node.start_mark.line + 1)


def _to_nodes(node: yaml.Node, file: str, path: str, expansion: _Expansion) -> Node:
    expansion.count(node, path)
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("a field name must be plain text", file=file,
                                  line=key_node.start_mark.line + 1, field=path or None)
            key = key_node.value
            if key in out:
                raise ConfigError("duplicate field", file=file, line=key_node.start_mark.line + 1,
                                  field=f"{path}.{key}".lstrip("."))
            out[key] = _to_nodes(value_node, file, f"{path}.{key}".lstrip("."), expansion)
        return Node(out, file, line, path, column)
    if isinstance(node, yaml.SequenceNode):
        return Node([_to_nodes(v, file, f"{path}[{i}]", expansion)
                     for i, v in enumerate(node.value)], file, line, path, column)
    try:
        value = expansion.constructor.construct_object(node)
    except (yaml.constructor.ConstructorError, ValueError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"YAML value: {problem}", file=file, line=line,
                          field=path or None) from None
    return Node(value, file, line, path, column)


def load_yaml(text: str, file: str) -> Node:
    """Parse YAML text into Nodes within the bounds above; raises ConfigError naming the
    line for syntax errors, characters YAML forbids (NUL), too deep nesting, too many
    aliases or too large an expansion."""
    if len(text) > MAX_BOARD_BYTES:
        raise ConfigError(f"the board file is larger than {MAX_BOARD_BYTES // 1024} KiB",
                          file=file)
    loader = None
    try:
        loader = _BoardLoader(text, file)     # the reader checks the characters here
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = f"YAML syntax: {exc.problem}"
        if exc.problem == "exceeded maximum nesting depth":   # libyaml's own bound (1000)
            problem = f"nested more than {MAX_DEPTH} levels deep"
        raise ConfigError(problem, file=file, line=mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(f"character U+{code:04X} is not allowed in a board file",
                          file=file, line=_reader_error_line(text, exc.position)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML: {exc}".splitlines()[0], file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise ConfigError("the board file is empty", file=file)
    return _to_nodes(root, file, "", _Expansion(file))


@dataclass
class CycleConfig:
    period_ns: int = 1_000_000
    busy_tail_us: float = 100.0
    cpu: int = -1              # -1: the last CPU of the machine
    priority: int = 80
    lock_memory: bool = True
    watchdog_ms: float = 200.0   # 0 only when the board says so explicitly: off

    @property
    def watchdog_ticks(self) -> int:
        """The watchdog timeout in ticks (0: off)."""
        return int(round(self.watchdog_ms * 1e6 / self.period_ns))


def default_busy_tail_us(period_us: float) -> float:
    """100 µs, or a tenth of the period when that is shorter (a 50 µs period spins 5 µs)."""
    return min(100.0, period_us / 10.0)


def default_watchdog_ms(period_us: float) -> float:
    """200 ms, or 10 periods when that is longer."""
    return max(200.0, 10 * period_us / 1e3)


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
    text: str | None = None          # the board file as parsed (the flight recorder keeps it)
    options: dict[str, str] = field(default_factory=dict)   # parse_board's options


def parse_cycle(node: Node, board: Board) -> CycleConfig:
    node.only("period_us", "busy_tail_us", "cpu", "priority", "lock_memory", "watchdog_ms")
    period_us = node.get("period_us", float, 1000.0, min=50.0, max=1_000_000.0)
    tail = node.get("busy_tail_us", float, default_busy_tail_us(period_us), min=0.0)
    if tail > period_us:
        raise node.error(f"busy_tail_us ({tail}) cannot exceed period_us ({period_us})",
                         "busy_tail_us")
    cfg = CycleConfig(
        period_ns=int(round(period_us * 1000)),
        busy_tail_us=tail,
        cpu=node.get("cpu", int, -1, min=-1),
        priority=node.get("priority", int, 80, min=0, max=99),
        lock_memory=node.get("lock_memory", bool, True),
        watchdog_ms=node.get("watchdog_ms", float, default_watchdog_ms(period_us), min=0.0),
    )
    # under one tick rounds to 0 ticks, which would switch the watchdog off unsaid
    if 0 < cfg.watchdog_ms * 1e6 < cfg.period_ns:
        raise node.error(f"watchdog_ms {cfg.watchdog_ms:g} is shorter than one tick; the minimum "
                         f"at period_us {period_us:g} is {period_us / 1e3:g} (or 0: off)",
                         "watchdog_ms")
    return cfg


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


# The board name is the default MQTT topic level and the state directory's name: one
# path component, no MQTT wildcard or separator, not '.' or '..'.
BOARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_board_name(root: Node) -> str:
    name = root.get("name", str)
    if not BOARD_NAME.match(name):
        raise root.error(f"{name!r} is not a board name: 1 to 64 letters, digits, '_', '-' "
                         "or '.', starting with a letter or digit", "name")
    return name


def host_problem(host: str) -> str | None:
    """Why `host` is not a usable network host (None when it is): an IPv4 or IPv6
    address, or a DNS name (RFC 1123 labels)."""
    if not host:
        return "the host is empty"
    if re.fullmatch(r"[0-9.]+", host) or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"{host!r} is not a valid IP address"
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
                                                label) for label in labels):
        return f"{host!r} is not a valid host name"
    return None


def check_writable_dir(path: Path, what: str) -> None:
    """Refuse a directory edge could not create or write into; checks, creates nothing.
    Raises ConfigError naming `what`."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: {probe} is not writable by this user")


CORE_SECTIONS = ("cycle", "axes")      # Board attributes, read by the runtime itself


def parse_board(text: str, file: str, options: dict[str, str] | None = None) -> Board:
    """Validate a board file's text; raises ConfigError naming file, line and field.

    options: section name -> a command-line value that replaces that section (`edge run
    --mqtt URL`), turned into settings by the section's `from_option`.
    """
    return parse_board_nodes(load_yaml(text, file), file, options, text=text)


def parse_board_nodes(root: Node, file: str, options: dict[str, str] | None = None, *,
                      text: str | None = None) -> Board:
    """parse_board on a board already loaded with load_yaml (a HIL scenario merges its
    overrides into it first: their nodes keep the scenario file's lines). text: the file
    as read, kept for the flight recorder (None for a board merged from several files)."""
    top = root.mapping()
    root.only("name", *DECLARED_IN)
    board = Board(name=parse_board_name(root), file=file, root=root, text=text,
                  options=dict(options or {}))
    if "axes" not in top:       # before the sections that count on the axes
        raise root.error("required field is missing", "axes")
    for name in DECLARED_IN:       # fixed order: later sections may use earlier ones
        if name not in top:
            continue
        section = declaration(name, top[name])
        problem = needs_problem(name, top)
        if problem:
            raise top[name].error(problem)
        parsed = section.parse(top[name], board)
        if name in CORE_SECTIONS:
            setattr(board, name, parsed)
        else:
            board.sections[name] = parsed
    if not board.axes:
        raise root.error("required field is missing", "axes")
    for name, value in (options or {}).items():
        section = declaration(name)
        if section.from_option is None:
            raise ConfigError(f"section '{name}' cannot be given on the command line")
        board.sections[name] = section.from_option(value, board)
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


def load_board(name_or_path: str | None = None,
               options: dict[str, str] | None = None) -> Board:
    """Load and validate a shipped board by name, or a board file by path (options: as
    for parse_board)."""
    path = resolve_board_path(name_or_path)
    return parse_board(read_yaml_file(path), str(path), options)


def read_yaml_file(path: Path, what: str = "board file") -> str:
    """The text of a board file (or another YAML file edge reads, named by `what`) within
    the size bound; ConfigError naming the file when it cannot be read."""
    try:
        if path.stat().st_size > MAX_BOARD_BYTES:
            raise ConfigError(f"the {what} is larger than {MAX_BOARD_BYTES // 1024} KiB",
                              file=str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what}: {exc}", file=str(path)) from None


SECTIONS = (Section("cycle", parse_cycle), Section("axes", parse_axes))

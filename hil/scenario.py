"""HIL scenario files: YAML read with edge's board loader (errors name file, line and
field; inside an expression, the column too), expanded into runs, one per combination
of parameter values. The format is described in docs/hil.md.

    name: collision_link3
    board: sim_arm                  # a shipped board or a path (relative to this file)
    overrides: {program: null}      # merged into the board: null removes a section
    seed: 1                         # seeds the random parameter draws
    duration: 1.5 s
    parameters: {torque_nm: [30.0, 60.0]}        # a sweep: one run per value
    signals: {latched: {stop: latched}, ...}     # hil.signals.SOURCES
    steps: [...]                                 # hil.timeline.STEP_KINDS
    assert: [...]                                # hil.temporal.FORMS
    measure: [{name: .., change: .., from: .., until: ..}]   # reported, not judged
    devices: {pump: {kind: modbus_tcp, registers: [...]}}    # real time: hil.realtime
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import (
    Board,
    Node,
    load_yaml,
    parse_board_nodes,
    read_yaml_file,
    resolve_board_path,
)
from edge.errors import ConfigError, LogicError
from hil.signals import Signal, parse_signals
from hil.temporal import FORMS, Assertion, Condition, Measure
from hil.timeline import FaultStep, Step, parse_steps, parse_ticks

FIELDS = ("name", "description", "board", "overrides", "seed", "duration", "parameters",
          "signals", "steps", "assert", "measure", "devices")
MAX_RUNS = 1000
MAX_TICKS = 200_000          # 200 s at 1 kHz
MAX_DRAWS = 1000
_PARAMETER = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ASSERT_FIELDS = {"always": (), "never": (), "at_end": (), "eventually": ("within",),
                  "after": ("within", "expect")}


@dataclass
class Run:
    """One run of a scenario: the board and everything to do and check on it."""

    scenario: str
    file: str
    index: int
    params: dict[str, Any]
    seed: int
    board: Board
    duration_ticks: int
    signals: list[Signal]
    steps: list[Step]
    assertions: list[Assertion]
    measures: list[Measure] = field(default_factory=list)
    description: str = ""
    board_data: dict[str, Any] = field(default_factory=dict)   # merged, for `edge run`
    devices: list[Any] = field(default_factory=list)           # hil.realtime.Device

    @property
    def id(self) -> str:
        """The run's name in reports: the scenario, with its parameter values if any."""
        if not self.params:
            return self.scenario
        return f"{self.scenario}[{','.join(f'{k}={_fmt(v)}' for k, v in self.params.items())}]"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class Scenario:
    """A scenario file, loaded: its runs are built one at a time (`run(i)`)."""

    file: str
    name: str
    seed: int
    root: Node
    lines: list[str]
    param_sets: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.param_sets)

    def run(self, index: int) -> Run:
        """Run `index` (0 .. len - 1), built and checked; ConfigError naming the file,
        line and field of what is wrong."""
        params = self.param_sets[index]
        root = _substitute(self.root, params)
        top = root.mapping()
        merged, board_path = _merged_board(root, Path(self.file))
        board = parse_board_nodes(merged, board_path)
        duration_node = root.child("duration")
        duration = parse_ticks(duration_node, board.cycle.period_ns, minimum=1)
        if duration > MAX_TICKS:             # the trace and its rows are held in memory
            raise duration_node.error(f"a run lasts at most {MAX_TICKS} ticks, got {duration}")
        signals = parse_signals(root.child("signals", None), board)
        steps = parse_steps(root.child("steps", None), board, duration)
        types = {s.name: s.type for s in signals}
        for name, value in params.items():
            if name.upper() in (t.upper() for t in types):
                raise top["parameters"].error(f"parameter '{name}' has the name of a signal",
                                              name)
            types[name] = "BOOL" if isinstance(value, bool) else \
                "INT" if isinstance(value, int) else "REAL"
        faults = {s.name for s in steps if isinstance(s, FaultStep)}
        for s in signals:
            if s.spec not in faults and s.node.child("injected", None) is not None:
                raise s.node.error(f"no fault named '{s.spec}' in the steps (faults: "
                                   f"{', '.join(sorted(faults)) or 'none'})", "injected")
        assertions = _assertions(root.child("assert"), types, board, self.lines)
        measures = _measures(root.child("measure", None), types, self.lines)
        from hil.realtime import parse_devices

        devices = parse_devices(root.child("devices", None), board)
        return Run(self.name, self.file, index, params, self.seed, board, duration, signals,
                   steps, assertions, measures, str(top["description"].value)
                   if "description" in top else "", merged.plain(), devices)


def load_scenario(path: str | Path, seed: int | None = None) -> Scenario:
    """Read a scenario file and expand its parameters (random draws from `seed`, else the
    file's `seed`); raises ConfigError naming file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scenario file not found: {path}")
    text = read_yaml_file(path, "scenario file")
    if not text.strip():
        raise ConfigError("the scenario file is empty", file=str(path))
    root = load_yaml(text, str(path))
    root.mapping()
    root.only(*FIELDS)
    name = root.get("name", str, path.stem)
    if not _NAME.match(name):
        raise root.error(f"{name!r} is not a scenario name: 1 to 64 letters, digits, '_', "
                         "'-' or '.'", "name")
    root.get("description", str, "")
    file_seed = root.get("seed", int, 0, min=0, max=2**63 - 1)
    seed = file_seed if seed is None else seed
    return Scenario(str(path), name, seed, root, text.splitlines(),
                    _expand(root.child("parameters", None), seed))


def _expand(node: Node | None, seed: int) -> list[dict[str, Any]]:
    """Every combination of the parameters' values, in declaration order; a list is a
    sweep, {uniform: [lo, hi], count: n} or {integers: [lo, hi], count: n} n draws."""
    if node is None:
        return [{}]
    rng = np.random.default_rng(seed)
    names, values = [], []
    for name, child in node.mapping().items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError("a parameter name is letters, digits and '_'", file=child.file,
                              line=child.line, field=child.path)
        names.append(name)
        values.append(_values(child, rng))
    total = int(np.prod([len(v) for v in values]))
    if total > MAX_RUNS:
        raise node.error(f"the parameters make {total} runs (at most {MAX_RUNS})")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def _values(node: Node, rng: np.random.Generator) -> list[Any]:
    if isinstance(node.value, list):
        items = node.sequence()
        if not items:
            raise node.error("a sweep lists at least one value")
        out = []
        for item in items:
            v = item.value
            if not isinstance(v, bool | int | float):
                raise item.error(f"a parameter value is a number or a boolean, got {v!r}")
            out.append(v)
        return out
    m = node.mapping()
    kinds = [k for k in ("uniform", "integers") if k in m]
    if len(kinds) != 1:
        raise node.error("a parameter is a list (a sweep), or {uniform: [lo, hi], count: n} "
                         "or {integers: [lo, hi], count: n} (seeded draws)")
    node.only(kinds[0], "count")
    count = node.get("count", int, 1, min=1, max=MAX_DRAWS)
    if kinds[0] == "uniform":
        lo, hi = node.floats("uniform", 2)
        if not lo <= hi:
            raise node.error("expected [lo, hi] with lo <= hi", "uniform")
        return [float(x) for x in rng.uniform(lo, hi, count)]
    bounds = node.child("integers").sequence()
    if len(bounds) != 2:
        raise node.child("integers").error("expected [lo, hi]")
    lo, hi = (b.scalar(int) for b in bounds)
    if not lo <= hi:
        raise node.error("expected [lo, hi] with lo <= hi", "integers")
    return [int(x) for x in rng.integers(lo, hi, count, endpoint=True)]


def _substitute(node: Node, params: dict[str, Any]) -> Node:
    """A copy of the tree with every scalar `$name` (or `${name}`) replaced by that
    parameter's value; the parameters themselves are left as written."""
    value = node.value
    if isinstance(value, dict):
        new: Any = {k: v if k == "parameters" and node.path == "" else _substitute(v, params)
                    for k, v in value.items()}
    elif isinstance(value, list):
        new = [_substitute(v, params) for v in value]
    elif isinstance(value, str) and (m := _PARAMETER.match(value)):
        if m[1] not in params:
            known = ", ".join(params) or "none"
            raise node.error(f"unknown parameter '{m[1]}' (parameters: {known})")
        new = params[m[1]]
    else:
        new = value
    return Node(new, node.file, node.line, node.path, node.column)


def _merged_board(root: Node, scenario_path: Path) -> tuple[Node, str]:
    """The board the scenario names, with its overrides merged in (still nodes), and
    the board file's path."""
    board_node = root.child("board")
    ref = board_node.scalar(str)
    relative = scenario_path.parent / ref
    path = relative if ref.endswith((".yaml", ".yml")) and relative.is_file() else ref
    try:
        board_path = resolve_board_path(str(path))
    except ConfigError as exc:
        raise board_node.error(exc.message) from None
    base = load_yaml(read_yaml_file(board_path), str(board_path))
    overrides = root.child("overrides", None)
    if overrides is not None:
        overrides.mapping()
        base = _merge(base, overrides)
    return base, str(board_path)


def _merge(base: Node, over: Node) -> Node:
    """`over` merged into `base`: mappings key by key (null removes the key), anything
    else replaced. Each node keeps the file and line it came from."""
    if not (isinstance(base.value, dict) and isinstance(over.value, dict)):
        return _moved(over, base.path)
    merged = dict(base.value)
    for key, child in over.value.items():
        if child.value is None:
            if key not in merged:              # a typo must not pass unnoticed
                raise child.error(f"the board has no '{key}' to remove")
            del merged[key]
        elif key in merged:
            merged[key] = _merge(merged[key], child)
        else:
            merged[key] = _moved(child, f"{base.path}.{key}".lstrip("."))
    return Node(merged, base.file, base.line, base.path, base.column)


def _moved(node: Node, path: str) -> Node:
    """`node` where the board would have it (its field path), still in its own file."""
    if path == node.path:
        return node
    value = node.value
    if isinstance(value, dict):
        value = {k: _moved(v, f"{path}.{k}".lstrip(".")) for k, v in value.items()}
    elif isinstance(value, list):
        value = [_moved(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return Node(value, node.file, node.line, path, node.column)


def _assertions(node: Node, types: dict[str, str], board: Board,
                lines: list[str]) -> list[Assertion]:
    items = node.sequence()
    if not items:
        raise node.error("a scenario asserts at least one thing")
    out = []
    for item in items:
        m = item.mapping()
        forms = [f for f in FORMS if f in m]
        if len(forms) != 1:
            raise item.error(f"an assertion has one form: {', '.join(FORMS)}")
        form = forms[0]
        item.only(form, *_ASSERT_FIELDS[form])
        within = None
        if "within" in _ASSERT_FIELDS[form]:
            within = parse_ticks(item.child("within"), board.cycle.period_ns)
        target = item.child("expect") if form == "after" else m[form]
        expect = _condition(target, types, lines)
        event = _condition(m[form], types, lines) if form == "after" else None
        out.append(Assertion(form, expect, f"{item.file}:{item.line}", within, event))
    return out


def _measures(node: Node | None, types: dict[str, str], lines: list[str]) -> list[Measure]:
    if node is None:
        return []
    out: list[Measure] = []
    for item in node.sequence():
        item.only("name", "change", "from", "until")
        name = item.get("name", str)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or \
                name in (m.name for m in out):
            raise item.error("a measure has a name of its own: letters, digits and '_'",
                             "name")
        until = item.child("until", None)
        out.append(Measure(name, _condition(item.child("change"), types, lines,
                                            want=("REAL", "INT")),
                           _condition(item.child("from"), types, lines),
                           None if until is None else _condition(until, types, lines)))
    return out


def _condition(node: Node, types: dict[str, str], lines: list[str],
               want: tuple[str, ...] = ("BOOL",)) -> Condition:
    text = node.value
    if isinstance(text, bool):          # `always: true` and the like
        text = "TRUE" if text else "FALSE"
    if not isinstance(text, str):
        raise node.error(f"expected an expression, got {text!r}")
    try:
        return Condition(text, types, want=want)
    except LogicError as exc:
        line, column = _position(node, exc, lines)
        raise ConfigError(exc.message, file=node.file, line=line, column=column,
                          field=node.path) from None


def _position(node: Node, exc: LogicError, lines: list[str]) -> tuple[int, int | None]:
    """Where in the file the expression error is: the expression's own line and column
    mapped through the YAML scalar's position (plain, quoted or a block `|`)."""
    line, column = exc.line or 1, exc.column or 1
    if node.column is None or not 0 < node.line <= len(lines):
        return node.line, None
    start = lines[node.line - 1][node.column - 1:node.column]
    if start in ("|", ">"):              # a block scalar: its text starts on the next line
        at = node.line + line
        if at > len(lines):
            return node.line, None
        text = lines[at - 1]
        return at, len(text) - len(text.lstrip(" ")) + column
    if line == 1:
        return node.line, node.column + (start in ("'", '"')) + column - 1
    at = node.line + line - 1          # a plain scalar folded over lines
    text = lines[at - 1] if at <= len(lines) else ""
    return at, len(text) - len(text.lstrip(" ")) + column

"""The `logic` section of a board file: scan period, signal sources, the program.

    logic:
      period_ms: 10                 # scan period, a whole number of cycle ticks
      deadline_ms: 5                # optional (default: the period)
      on_miss: stop                 # log | fault | stop
      topic_prefix: logic           # events, outputs and faults are published under it
      signals:
        q0:      {state: q.0, type: REAL}               # native state record field
        stopped: {state: stop_category, type: INT}
        door:    {topic: io/door, field: closed, type: BOOL, default: false}
      program: |
        WHEN q0 > 1.2 AND NOT door FOR 50ms THEN EVENT "door_open_moving"; STOP 1; END_WHEN

The program is compiled here, so a mistake in it is reported with the board file's line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import Board, Node
from edge.errors import ConfigError, LogicError
from edge.logic.compiler import as_type
from edge.logic.nodes import VALUE_TYPES
from edge.logic.program import Program
from edge.logic.quality import POLICIES, SUBSTITUTE, OnBad

# state record fields a signal may read; per-axis arrays take ".<axis index>"
STATE_SCALARS = ("mode", "fault_code", "stop_category", "inputs", "outputs")
STATE_ARRAYS = ("q", "qd", "tau", "q_cmd", "qd_cmd", "signals")
STATE_BITS = ("inputs", "outputs")       # "inputs.3": bit 3 of the digital inputs, BOOL


@dataclass
class SignalSource:
    name: str
    type: str
    topic: str | None = None
    path: tuple[str | int, ...] = ()     # keys / indices into the message data
    state_field: str | None = None
    state_index: int | None = None
    state_bit: int | None = None
    default: Any = None
    on_bad: OnBad | None = None          # None: the default (safe for STOP rules, else hold)
    max_age_ms: float | None = None      # not GOOD once the last GOOD value is older
    quality_path: tuple[str | int, ...] | None = None   # None: "quality" beside the value


@dataclass
class LogicConfig:
    period_ticks: int
    deadline_ticks: int
    on_miss: str
    priority: int
    topic_prefix: str
    signals: list[SignalSource]
    program: Program
    text: str = field(repr=False, default="")


def _quality_fields(src: SignalSource, node: Node) -> None:
    """on_bad / substitute / max_age_ms / quality_field of a topic signal."""
    policy = node.get("on_bad", str, None, choices=POLICIES)
    sub = node.child("substitute", None)
    if sub is not None and policy not in (None, SUBSTITUTE):
        raise node.error(f"a substitute value goes with on_bad: substitute, not {policy}",
                         "substitute")
    if policy == SUBSTITUTE and sub is None:
        raise node.error("on_bad: substitute needs a 'substitute' value", "on_bad")
    if sub is not None:
        try:
            src.on_bad = OnBad(SUBSTITUTE, as_type(sub.plain(), src.type))
        except LogicError as exc:
            raise node.error(exc.message, "substitute") from None
    elif policy is not None:
        src.on_bad = OnBad(policy)
    src.max_age_ms = node.get("max_age_ms", float, None, min=0.001)
    qfield = node.get("quality_field", str, None)
    if qfield is not None:
        src.quality_path = tuple(int(p) if p.isdigit() else p for p in qfield.split(".") if p)


def _signal(name: str, node: Node, n_axes: int) -> SignalSource:
    node.only("topic", "field", "state", "type", "default", "on_bad", "substitute",
              "max_age_ms", "quality_field")
    type_name = node.get("type", str, choices=VALUE_TYPES)
    has_topic, has_state = node.child("topic", None), node.child("state", None)
    if (has_topic is None) == (has_state is None):
        raise node.error("a signal reads either a bus 'topic' or a native 'state' field")
    src = SignalSource(name, type_name)
    default = node.child("default", None)
    try:
        src.default = as_type(default.plain() if default is not None else
                              {"BOOL": False, "INT": 0, "REAL": 0.0, "TIME": 0}[type_name],
                              type_name)
    except LogicError as exc:
        raise node.error(exc.message, "default") from None
    if has_topic is not None:
        src.topic = node.get("topic", str)
        path = node.get("field", str, "")
        src.path = tuple(int(p) if p.isdigit() else p for p in path.split(".") if p)
        _quality_fields(src, node)
        return src
    for f in ("on_bad", "substitute", "max_age_ms", "quality_field"):
        if node.child(f, None) is not None:
            raise node.error("a state signal is read from the native state record of the "
                             "release tick and is always GOOD: quality fields are for "
                             "topic signals", f)
    spec = node.get("state", str)
    base, _, index = spec.partition(".")
    if base in STATE_SCALARS and not index:
        src.state_field = base
    elif base in STATE_BITS and index.isdigit():
        if int(index) > 31:
            raise node.error(f"bit {index} is out of range (0 .. 31)", "state")
        if type_name != "BOOL":
            raise node.error(f"a bit of '{base}' is a BOOL signal", "type")
        src.state_field, src.state_bit = base, int(index)
    elif base in STATE_ARRAYS and index.isdigit():
        limit = n_axes if base != "signals" else 64
        if int(index) >= limit:
            raise node.error(f"index {index} is out of range (0 .. {limit - 1})", "state")
        src.state_field, src.state_index = base, int(index)
    else:
        raise node.error(f"unknown state field '{spec}' (expected one of "
                         f"{', '.join(STATE_SCALARS)}, <{'|'.join(STATE_ARRAYS)}>.<index> or "
                         f"<{'|'.join(STATE_BITS)}>.<bit>)",
                         "state")
    return src


def parse_logic(node: Node, board: Board) -> LogicConfig:
    """Validate the logic section and compile its program; raises ConfigError naming the
    board file line (for a program error: the line inside the program, mapped)."""
    node.only("period_ms", "deadline_ms", "on_miss", "priority", "topic_prefix", "signals",
              "program", "program_file")
    period_ns = board.cycle.period_ns
    period_ms = node.get("period_ms", float, 10.0, min=0.001, max=60_000.0)
    period_ticks = round(period_ms * 1e6 / period_ns)
    if period_ticks < 1 or abs(period_ticks * period_ns - period_ms * 1e6) > 1e-3:
        raise node.error(f"must be a whole number of cycle periods ({period_ns / 1e6} ms)",
                         "period_ms")
    deadline_ms = node.get("deadline_ms", float, period_ms, min=0.001)
    deadline_ticks = round(deadline_ms * 1e6 / period_ns)
    if not 1 <= deadline_ticks <= period_ticks:
        raise node.error("must be between one cycle period and period_ms", "deadline_ms")
    signals_node = node.child("signals", None)
    sources: list[SignalSource] = []
    if signals_node is not None:
        for name, child in signals_node.mapping().items():
            sources.append(_signal(name, child, len(board.axes)))
    prog_node, file_node = node.child("program", None), node.child("program_file", None)
    if (prog_node is None) == (file_node is None):
        raise node.error("give the program inline ('program') or as a file ('program_file')")
    if prog_node is not None:
        text = prog_node.scalar(str)
        first_line = prog_node.line + (1 if "\n" in text else 0)
        where, file = prog_node, prog_node.file   # an override: the scenario file
    else:
        path = Path(file_node.scalar(str))
        if not path.is_absolute():
            path = Path(node.file).resolve().parent / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise file_node.error(f"cannot read the program: {exc}") from None
        first_line, where, file = 1, file_node, str(path)
    try:
        program = Program(text, {s.name: s.type for s in sources}, period_ns=period_ns,
                          on_bad={s.name: s.on_bad for s in sources})
    except LogicError as exc:
        if exc.line is None:
            raise where.error(exc.message) from None
        line = exc.line + first_line - 1 if prog_node is not None else exc.line
        raise ConfigError(f"{exc.message} (program line {exc.line}, column {exc.column})",
                          file=file, line=line, field=where.path) from None
    return LogicConfig(
        period_ticks=period_ticks, deadline_ticks=deadline_ticks,
        on_miss=node.get("on_miss", str, "stop", choices=("log", "fault", "stop")),
        priority=node.get("priority", int, 10, min=-100, max=100),
        topic_prefix=node.get("topic_prefix", str, "logic"),
        signals=sources, program=program, text=text)

"""The signals a HIL scenario records: one table of source kinds (SOURCES), each a parser
that reads `name: {<kind>: <what>, ...}` from the scenario file and says how to sample
it, once per tick, into the run's trace.

Two ways of sampling: from the tick's native state record (joint state, latched stop,
fault code, digital inputs, TCP from the measured joints), handed over by the executor
in tick order even after a stall of the Python side; or live, right after the tick ran
(the safety and observer blocks' status, the motion controller's state, bus topics, task
counters, the faults the scenario injects). Every value has a type of the logic language
(BOOL, INT, REAL), so the assertions compile against the signals like logic rules do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config import Board, Node
from edge.errors import ConfigError, LogicError
from edge.logic.checker import signal_scope
from edge.logic.compiler import as_type
from edge.logic.config import STATE_ARRAYS, STATE_BITS, STATE_SCALARS
from edge.rt.contract import FaultCode, Input
from edge.rt.native import NO_STOP

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

RECORD, LIVE = "record", "live"
BOOL, INT, REAL = "BOOL", "INT", "REAL"
SAFETY_FIELDS = {"speed_scale": REAL, "tcp_speed": REAL, "tcp_speed_cmd": REAL,
                 "min_wall_distance": REAL, "min_wall_distance_cmd": REAL, "stopping": BOOL,
                 "standstill": BOOL, "reduced": BOOL, "limiting": BOOL, "enabled": BOOL,
                 "n_faults": INT, "resets_refused": INT}
OBSERVER_FIELDS = {"collision": BOOL, "contact": BOOL, "collision_axis": INT,
                   "peak_ratio": REAL}
MOTION_STATES = ("disabled", "idle", "moving", "stopping", "faulted", "teach")
INPUT_BITS = {flag.name.lower(): int(flag) for flag in Input}
FAULT_NAMES = {code.name.lower(): int(code) for code in FaultCode}


class Probe:
    """What live sources read after a tick: the runtime, the faults the scenario has on,
    and the blocks' status read at most once per tick."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.active_faults: set[str] = set()
        self._memo: dict[str, Any] = {}
        self._bulk: dict[str, Any] = {}

    def memo_bulk(self, key: str, make: Callable[[], Any]) -> Any:
        """One object per key for the whole run (a reader several signals share)."""
        if key not in self._bulk:
            self._bulk[key] = make()
        return self._bulk[key]

    def next_tick(self) -> None:
        self._memo.clear()

    def memo(self, key: str, read: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]


@dataclass
class Signal:
    """One recorded signal. `bind(probe)` gives the reader: reader(record) for RECORD
    signals, reader() for LIVE ones; it raises EdgeError when the runtime lacks what the
    signal reads (the caller points the error at `node`)."""

    name: str
    type: str
    how: str
    bind: Callable[[Probe], Callable[..., Any]]
    node: Node
    spec: str
    # RECORD signals: bulk(probe) gives reader(records) -> one value per record (a column
    # slice read at once, what the runner uses); LIVE ones: per_tick when the value may
    # change at any tick (a native block's status), not only when Python runs
    bulk: Callable[[Probe], Callable[[Any], Any]] | None = None
    per_tick: bool = False

    @property
    def dtype(self) -> str:
        return {BOOL: "bool", INT: "int64", REAL: "float64"}[self.type]


def _indexed(spec: str, node: Node, what: str, limit: int) -> int:
    base, _, index = spec.partition(".")
    if not index.isdigit() or int(index) >= limit:
        raise node.error(f"'{spec}': expected {base}.<index> with an index 0 .. {limit - 1}",
                         what)
    return int(index)


def _state(name: str, spec: str, node: Node, board: Board) -> Signal:
    base, _, index = spec.partition(".")
    if base in STATE_SCALARS and not index:
        return Signal(name, INT, RECORD, lambda p: lambda rec: int(rec[base]), node, spec,
                      lambda p: lambda recs: recs[base])
    if base in STATE_BITS and index:
        bit = _indexed(spec, node, "state", 32)
        return Signal(name, BOOL, RECORD, lambda p: lambda rec: bool(int(rec[base]) >> bit & 1),
                      node, spec, lambda p: lambda recs: (recs[base] >> bit) & 1 != 0)
    if base in STATE_ARRAYS and index:
        i = _indexed(spec, node, "state", len(board.axes) if base != "signals" else 64)
        return Signal(name, REAL, RECORD, lambda p: lambda rec: float(rec[base][i]), node, spec,
                      lambda p: lambda recs: recs[base][:, i])
    raise node.error(f"unknown state field '{spec}' (expected one of {', '.join(STATE_SCALARS)},"
                     f" <{'|'.join(STATE_ARRAYS)}>.<index> or <{'|'.join(STATE_BITS)}>.<bit>)",
                     "state")


def _stop(name: str, spec: str, node: Node, board: Board) -> Signal:
    if spec == "latched":
        return Signal(name, BOOL, RECORD,
                      lambda p: lambda rec: int(rec["stop_category"]) != NO_STOP, node, spec,
                      lambda p: lambda recs: recs["stop_category"] != NO_STOP)
    if spec == "category":
        def category(rec) -> int:
            c = int(rec["stop_category"])
            return -1 if c == NO_STOP else c

        def categories(recs):
            c = recs["stop_category"].astype(np.int64)
            return np.where(c == NO_STOP, -1, c)
        return Signal(name, INT, RECORD, lambda p: category, node, spec,
                      lambda p: categories)
    raise node.error(f"unknown stop field '{spec}' (expected latched or category: -1 when "
                     "no stop is latched)", "stop")


def _fault(name: str, spec: str, node: Node, board: Board) -> Signal:
    if spec == "code":
        return Signal(name, INT, RECORD, lambda p: lambda rec: int(rec["fault_code"]), node, spec,
                      lambda p: lambda recs: recs["fault_code"])
    if spec not in FAULT_NAMES:
        raise node.error(f"unknown fault '{spec}' (expected code or one of "
                         f"{', '.join(FAULT_NAMES)})", "fault")
    code = FAULT_NAMES[spec]
    return Signal(name, BOOL, RECORD, lambda p: lambda rec: int(rec["fault_code"]) == code,
                  node, spec, lambda p: lambda recs: recs["fault_code"] == code)


def _input(name: str, spec: str, node: Node, board: Board) -> Signal:
    if spec not in INPUT_BITS:
        raise node.error(f"unknown input '{spec}' (expected one of {', '.join(INPUT_BITS)})",
                         "input")
    mask = INPUT_BITS[spec]
    return Signal(name, BOOL, RECORD, lambda p: lambda rec: bool(int(rec["inputs"]) & mask),
                  node, spec, lambda p: lambda recs: recs["inputs"] & mask != 0)


def _section(node: Node, board: Board, section: str, what: str) -> Any:
    """The board's `section` a `what` signal reads; ConfigError at the signal otherwise."""
    found = board.sections.get(section)
    if found is None:
        raise node.error(f"a {what} signal needs the board's {section} section", what)
    return found


def _motion_section(node: Node, board: Board, what: str) -> Any:
    return _section(node, board, "motion", what)


def _tcp(name: str, spec: str, node: Node, board: Board) -> Signal:
    axis = {"x": 0, "y": 1, "z": 2}.get(spec)
    if axis is None:
        raise node.error(f"unknown tcp field '{spec}' (expected x, y or z: the tool position "
                         "from the measured joints, m)", "tcp")
    arm = _motion_section(node, board, "tcp").arm
    n = arm.n

    def bind(p: Probe) -> Callable:
        from edge.motion.arm_model import NativeArm

        fk = NativeArm(arm).fk
        return lambda rec: float(fk(rec["q"][:n])[axis, 3])

    def bulk(p: Probe) -> Callable:
        tool = p.memo_bulk("tcp", lambda: _tool_positions(arm))
        return lambda recs: tool(recs)[:, axis]
    return Signal(name, REAL, RECORD, bind, node, spec, bulk)


def _tool_positions(arm: Any) -> Callable[[np.ndarray], np.ndarray]:
    """records -> (len, 3) tool positions, m; x, y and z signals share one call per block
    of records (the last block is kept)."""
    from edge.motion.arm_model import NativeArm

    native = NativeArm(arm)
    ffi, lib, model, n = native.ffi, native.lib, native.model, arm.n
    q = np.empty(n)
    frame = np.empty((4, 4))
    cq, cframe = ffi.from_buffer("double[]", q), ffi.from_buffer("double[]", frame)
    last: list[Any] = [None, None]

    def positions(recs: np.ndarray) -> np.ndarray:
        if last[0] is recs:
            return last[1]
        qs = recs["q"][:, :n]
        out = np.empty((len(recs), 3))
        for j in range(len(recs)):
            q[:] = qs[j]
            lib.arm_fk(model, cq, cframe)
            out[j] = frame[:3, 3]
        last[0], last[1] = recs, out
        return out
    return positions


def _safety(name: str, spec: str, node: Node, board: Board) -> Signal:
    if spec not in SAFETY_FIELDS:
        raise node.error(f"unknown safety field '{spec}' (expected one of "
                         f"{', '.join(SAFETY_FIELDS)})", "safety")
    kind = SAFETY_FIELDS[spec]

    def bind(p: Probe) -> Callable:
        monitor = p.runtime.lookup("safety")
        status = _status_reader(monitor, "safety_status *", monitor.lib.safety_get_status,
                                monitor.block.handle)
        return lambda: _typed(getattr(p.memo("safety", status), spec), kind)
    return Signal(name, kind, LIVE, bind, node, spec, per_tick=True)


def _status_reader(monitor: Any, ctype: str, get: Callable, handle: Any) -> Callable[[], Any]:
    """A native block's status struct, filled in place by one call (the monitor's own
    status() builds a dict of every field, too slow to call at every tick)."""
    st = monitor.ffi.new(ctype)

    def read() -> Any:
        get(handle, st)
        return st
    return read


def _typed(value: Any, kind: str) -> Any:
    """A status field (a cffi int or double) as a value of its logic type."""
    return float(value) if kind == REAL else bool(value) if kind == BOOL else int(value)


def _observer(name: str, spec: str, node: Node, board: Board) -> Signal:
    if spec.startswith("residual."):
        i = _indexed(spec, node, "observer", len(board.axes))

        def residual(p: Probe) -> Callable:
            slots = _observer_of(p).residual_slots
            return lambda rec: float(rec["signals"][slots.start + i])

        def residuals(p: Probe) -> Callable:
            slot = _observer_of(p).residual_slots.start + i
            return lambda recs: recs["signals"][:, slot]
        return Signal(name, REAL, RECORD, residual, node, spec, residuals)
    if spec not in OBSERVER_FIELDS:
        raise node.error(f"unknown observer field '{spec}' (expected one of "
                         f"{', '.join(OBSERVER_FIELDS)} or residual.<joint>)", "observer")
    kind = OBSERVER_FIELDS[spec]

    def bind(p: Probe) -> Callable:
        monitor = _observer_of(p)
        status = _status_reader(monitor, "observer_status *", monitor.lib.observer_get_status,
                                monitor.observer.handle)
        return lambda: _typed(getattr(p.memo("observer", status), spec), kind)
    return Signal(name, kind, LIVE, bind, node, spec, per_tick=True)


def _observer_of(p: Probe) -> Any:
    from edge.errors import EdgeError

    monitor = p.runtime.lookup("safety")
    if monitor.observer is None:
        raise EdgeError("the board's safety section has no collision observer")
    return monitor


def _motion(name: str, spec: str, node: Node, board: Board) -> Signal:
    _motion_section(node, board, "motion")
    if spec in MOTION_STATES:
        return Signal(name, BOOL, LIVE, lambda p: (
            lambda c: lambda: c.state.value == spec)(p.runtime.lookup("motion")), node, spec)
    if spec in ("moves_done", "accepted", "rejected"):
        def bind(p: Probe) -> Callable:
            c = p.runtime.lookup("motion")
            return (lambda: c.moves_done) if spec == "moves_done" else \
                (lambda: c.verdicts[spec])
        return Signal(name, INT, LIVE, bind, node, spec)
    raise node.error(f"unknown motion field '{spec}' (expected a controller state: "
                     f"{', '.join(MOTION_STATES)}; or moves_done, accepted, rejected)", "motion")


def _topic_reader(p: Probe, topic: str, path: tuple, kind: str, default: Any,
                  equals: str | None = None) -> Callable:
    bus = p.runtime.bus

    def read() -> Any:
        msg = bus.latest(topic)
        if msg is None:
            return default
        value: Any = msg.data
        try:
            for key in path:
                value = value[key]
            if equals is not None:
                return value == equals
            return as_type(value, kind)
        except (KeyError, IndexError, TypeError, LogicError):
            return default
    return read


def _topic(name: str, spec: str, node: Node, board: Board) -> Signal:
    from edge.errors import BusError
    from edge.rt.bus import check_topic

    try:
        check_topic(spec)
    except BusError as exc:
        raise node.error(str(exc), "topic") from None
    field_path = node.get("field", str, "")
    path = tuple(int(k) if k.isdigit() else k for k in field_path.split(".") if k)
    if node.child("is", None) is not None:          # a text field, compared: a BOOL
        text = node.get("is", str)
        node.only("topic", "field", "is", "default")
        default = _default(node, BOOL)
        return Signal(name, BOOL, LIVE, lambda p: _topic_reader(p, spec, path, BOOL, default,
                                                                equals=text), node, spec)
    kind = node.get("type", str, choices=(BOOL, INT, REAL))
    default = _default(node, kind)
    return Signal(name, kind, LIVE, lambda p: _topic_reader(p, spec, path, kind, default),
                  node, spec)


def _messages(name: str, spec: str, node: Node, board: Board) -> Signal:
    """How many messages on the topic were delivered so far (its last one's seq + 1): the
    report draws its rate."""
    from edge.errors import BusError
    from edge.rt.bus import check_topic

    try:
        check_topic(spec)
    except BusError as exc:
        raise node.error(str(exc), "messages") from None

    def bind(p: Probe) -> Callable:
        latest = p.runtime.bus.latest

        def read() -> int:
            msg = latest(spec)
            return 0 if msg is None else msg.seq + 1
        return read
    return Signal(name, INT, LIVE, bind, node, spec)


def _default(node: Node, kind: str) -> Any:
    given = node.child("default", None)
    try:
        return as_type(given.plain() if given is not None else
                       {BOOL: False, INT: 0, REAL: 0.0}[kind], kind)
    except LogicError as exc:
        raise node.error(exc.message, "default") from None


def _logic(name: str, spec: str, node: Node, board: Board) -> Signal:
    logic = board.sections.get("logic")
    if logic is None:
        raise node.error("a logic signal needs the board's logic section", "logic")
    sym = logic.program.scope.symbols.get(spec.upper())
    if sym is None or spec not in logic.program.output_names:
        raise node.error(f"'{spec}' is not a VAR_OUTPUT of the board's logic program "
                         f"(outputs: {', '.join(logic.program.output_names) or 'none'})", "logic")
    topic = f"{logic.topic_prefix}/outputs"
    default = _default(node, sym.type)
    return Signal(name, sym.type, LIVE,
                  lambda p: _topic_reader(p, topic, (spec,), sym.type, default), node, spec)


def _task(name: str, spec: str, node: Node, board: Board) -> Signal:
    task_name, _, counter = spec.rpartition(".")
    if counter not in ("releases", "misses") or not task_name:
        raise node.error(f"'{spec}': expected <task>.releases or <task>.misses", "task")

    def bind(p: Probe) -> Callable:
        from edge.errors import EdgeError

        task = next((t for t in p.runtime.executor.tasks if t.name == task_name), None)
        if task is None:
            names = ", ".join(t.name for t in p.runtime.executor.tasks)
            raise EdgeError(f"no task named '{task_name}' (tasks: {names})")
        return lambda: getattr(task, counter)
    return Signal(name, INT, LIVE, bind, node, spec)


CHANNEL_FIELDS = {"value": REAL, "quality": INT,
                  **{q.lower(): BOOL for q in ("GOOD", "STALE", "OUT_OF_RANGE", "COMM_ERROR",
                                               "INVALID")}}


def _acquisition(node: Node, board: Board, what: str) -> Any:
    return _section(node, board, "acquisition", what)


def _channel(name: str, spec: str, node: Node, board: Board) -> Signal:
    channel, _, field = spec.rpartition(".")
    channels = [c.name for c in _acquisition(node, board, "channel").channels]
    if channel not in channels or field not in CHANNEL_FIELDS:
        raise node.error(f"'{spec}': expected <channel>.<{'|'.join(CHANNEL_FIELDS)}> with a "
                         f"channel of the board (channels: {', '.join(channels)})", "channel")
    kind = CHANNEL_FIELDS[field]

    def bind(p: Probe) -> Callable:
        from edge.acquisition.channel import Quality
        from edge.acquisition.sampler import CHANNEL_PREFIX

        bus, topic = p.runtime.bus, CHANNEL_PREFIX + channel
        quality = {q.name: int(q) for q in Quality}

        def read() -> Any:
            msg = bus.latest(topic)
            data = msg.data if msg is not None else {}
            q = data.get("quality")
            if field == "value":
                v = data.get("value")
                return float("nan") if v is None else float(v)
            if field == "quality":
                return quality.get(q, -1)
            return q == field.upper()
        return read
    return Signal(name, kind, LIVE, bind, node, spec)


def _threshold(name: str, spec: str, node: Node, board: Board) -> Signal:
    rules = [r.name for r in _acquisition(node, board, "threshold").thresholds]
    if spec not in rules:
        raise node.error(f"no threshold rule '{spec}' on the board (rules: "
                         f"{', '.join(rules) or 'none'})", "threshold")

    def bind(p: Probe) -> Callable:
        from edge.acquisition.thresholds import EVENT_PREFIX

        bus, topic = p.runtime.bus, EVENT_PREFIX + spec

        def read() -> bool:
            msg = bus.latest(topic)
            return msg is not None and msg.data.get("state") == "raised"
        return read
    return Signal(name, BOOL, LIVE, bind, node, spec)


def _injected(name: str, spec: str, node: Node, board: Board) -> Signal:
    # checked against the scenario's fault names once its steps are read
    return Signal(name, BOOL, LIVE, lambda p: lambda: spec in p.active_faults, node, spec)


# kind -> parser(name, what, node, board); `topic` also reads field/type/default
SOURCES: dict[str, Callable[[str, str, Node, Board], Signal]] = {
    "state": _state, "stop": _stop, "fault": _fault, "input": _input, "tcp": _tcp,
    "safety": _safety, "observer": _observer, "motion": _motion, "topic": _topic,
    "logic": _logic, "task": _task, "injected": _injected, "messages": _messages,
    "channel": _channel, "threshold": _threshold,
}
_EXTRA_FIELDS = {"topic": ("field", "type", "is", "default"), "logic": ("default",)}


from hil.outside import OUTSIDE_FIELDS, OUTSIDE_SOURCES  # noqa: E402 - they build on Signal

SOURCES.update(OUTSIDE_SOURCES)
_EXTRA_FIELDS.update(OUTSIDE_FIELDS)


def parse_signals(node: Node | None, board: Board) -> list[Signal]:
    """The scenario's `signals:` mapping; ConfigError naming file, line and field."""
    if node is None:
        return []
    out: list[Signal] = []
    for name, child in node.mapping().items():
        try:
            signal_scope({name: BOOL})
            if name.upper() in (s.name.upper() for s in out):
                raise LogicError(f"'{name}' is declared twice (names are case-insensitive)")
        except LogicError as exc:
            raise ConfigError(exc.message, file=child.file, line=child.line,
                              field=child.path) from None
        kinds = [k for k in child.mapping() if k in SOURCES]
        if len(kinds) != 1:
            raise child.error(f"a signal names one source: {', '.join(SOURCES)}")
        kind = kinds[0]
        child.only(kind, *_EXTRA_FIELDS.get(kind, ()))
        spec = child.get(kind, str)
        out.append(SOURCES[kind](name, spec, child, board))
    return out


def bind_signal(signal: Signal, probe: Probe) -> Callable[..., Any]:
    """The signal's reader on this runtime; ConfigError at its declaration otherwise."""
    from edge.errors import EdgeError

    try:
        return signal.bind(probe)
    except EdgeError as exc:
        raise signal.node.error(exc.message if isinstance(exc, ConfigError)
                                else exc.one_line()) from None

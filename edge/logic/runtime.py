"""Runs the board's logic program as a LET task: signals in from the bus and the native
state record of the release tick, events / outputs / stop requests out at r + D.

Topics (prefix configurable, default `logic`):
  <prefix>/events   {"rule": index, "line": n, "event": name} for each fired EVENT
  <prefix>/outputs  {name: value} of every VAR_OUTPUT, when any of them changed
  <prefix>/faults   {"flags": word, "names": [...]} when the math fault word changed
A STOP action asks the cycle for a stop of that category (the harshest of the scan).
"""

from __future__ import annotations

import logging
from typing import Any

from edge.errors import LogicError
from edge.logic.compiler import FAULT_NAMES, as_type
from edge.logic.config import LogicConfig, SignalSource
from edge.rt.executor import FAULT_REQUESTED, LetTask, TaskContext

log = logging.getLogger(__name__)


class LogicTask:
    """The body of the logic LetTask; keeps counters for the run summary."""

    def __init__(self, cfg: LogicConfig) -> None:
        self.cfg = cfg
        self.program = cfg.program
        self.inputs: dict[str, Any] = {s.name: s.default for s in cfg.signals}
        self._by_topic: dict[str, list[SignalSource]] = {}
        for src in cfg.signals:
            if src.topic is not None:
                self._by_topic.setdefault(src.topic, []).append(src)
        self._state_sources = [s for s in cfg.signals if s.state_field is not None]
        prefix = cfg.topic_prefix
        self.topic_events, self.topic_outputs = f"{prefix}/events", f"{prefix}/outputs"
        self.topic_faults = f"{prefix}/faults"
        self._last_outputs: dict[str, Any] | None = None
        self._last_faults = 0
        self._warned: set[str] = set()
        self._seen: dict[str, Any] = {}     # topic -> the Message its signals were read from
        self.scans = self.events = self.stop_requests = self.bad_inputs = 0

    def _read_topics(self, ctx: TaskContext) -> None:
        """Each topic is looked up once per scan, and its signals converted only when a
        new message arrived (messages are immutable)."""
        inputs, seen = self.inputs, self._seen
        for topic, sources in self._by_topic.items():
            msg = ctx.latest(topic)
            if msg is None or seen.get(topic) is msg:
                continue
            seen[topic] = msg
            for src in sources:
                inputs[src.name] = self._read(msg.data, src)

    def _read(self, value: Any, src: SignalSource) -> Any:
        try:
            for key in src.path:
                value = value[key]
            return as_type(value, src.type)
        except (KeyError, IndexError, TypeError, LogicError) as exc:
            self._bad(src, f"topic '{src.topic}'", exc)
            return self.inputs[src.name]

    def _bad(self, src: SignalSource, where: str, exc: Exception) -> None:
        """A value that does not fit its type: counted, logged once, last value kept."""
        self.bad_inputs += 1
        if src.name not in self._warned:
            self._warned.add(src.name)
            log.warning("logic signal '%s': cannot read a %s from %s (%s); keeping its last "
                        "value", src.name, src.type, where, exc)

    def __call__(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        self._read_topics(ctx)
        state = ctx.state
        for src in self._state_sources:
            raw = state[src.state_field]
            if src.state_index is not None:
                raw = raw[src.state_index]
            elif src.state_bit is not None:
                raw = bool((int(raw) >> src.state_bit) & 1)
            try:
                inputs[src.name] = as_type(raw, src.type)
            except LogicError as exc:
                self._bad(src, f"state field '{src.state_field}'", exc)
        result = self.program.scan(inputs, ctx.tick)
        self.scans += 1
        lines = self.program.rule_lines
        for rule, name in result.events:
            ctx.publish(self.topic_events, {"rule": rule, "line": lines[rule], "event": name})
        self.events += len(result.events)
        if result.stops:
            self.stop_requests += 1
            ctx.request_stop(min(result.stops), FAULT_REQUESTED)
        if self.program.output_names:
            outputs = self.program.outputs()
            if outputs != self._last_outputs:
                ctx.publish(self.topic_outputs, outputs)
                self._last_outputs = outputs
        if result.faults != self._last_faults:
            ctx.publish(self.topic_faults, {"flags": result.faults, "names": [
                n for bit, n in FAULT_NAMES.items() if result.faults & bit]})
            self._last_faults = result.faults

    def summary(self) -> dict[str, Any]:
        return {"scans": self.scans, "events": self.events, "stop_requests": self.stop_requests,
                "bad_inputs": self.bad_inputs, "rules": self.program.rule_count,
                "faults": self.program.faults.names()}


def attach(runtime, cfg: LogicConfig) -> LogicTask:
    """Add the logic task to a Runtime (called through SECTION_ATTACH)."""
    body = LogicTask(cfg)
    runtime.add_task(LetTask("logic", body, period_ticks=cfg.period_ticks,
                             deadline_ticks=cfg.deadline_ticks, priority=cfg.priority,
                             on_miss=cfg.on_miss))
    runtime.extra_summary["logic"] = body.summary
    return body

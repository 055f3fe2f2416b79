"""Runs the board's logic program as a LET task: signals in from the bus and the native
state record of the release tick, events / outputs / stop requests out at r + D.

Topics (prefix configurable, default `logic`):
  <prefix>/events   {"rule": index, "line": n, "event": name} for each fired EVENT
  <prefix>/outputs  {name: value} of every VAR_OUTPUT, when any of them changed
  <prefix>/faults   {"flags": word, "names": [...]} when the math fault word changed
A STOP action asks the cycle for a stop of that category (the harshest of the scan).

Every signal enters the scan with its quality and age (`x.good`, `x.age`, see
quality.py): a topic signal is GOOD while its last message carried a readable value whose
quality (the `quality` key beside the value, as acquisition samples have) is GOOD, and,
with `max_age_ms`, while that value is not older than the limit. State signals come from
the state record of the release tick and are always GOOD.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from edge.errors import LogicError
from edge.logic.compiler import FAULT_NAMES, as_type
from edge.logic.config import LogicConfig, SignalSource, parse_logic
from edge.logic.quality import SUBSTITUTE, age_key, good_key
from edge.rt.executor import FAULT_REQUESTED, LetTask, TaskContext
from edge.sections import Section

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
        self.bad_episodes = 0               # times a signal went from GOOD to not GOOD
        for src in cfg.signals:
            self.inputs[good_key(src.name)] = True
            self.inputs[age_key(src.name)] = 0
        period_ns = cfg.program.period_ns
        self._topic_sources = [s for s in cfg.signals if s.topic is not None]
        # per topic signal: [last GOOD value, ns it was acquired (None: not yet), message
        # quality GOOD, reason when not, max age ns or None]
        self._track: dict[str, list] = {
            s.name: [s.default, None, True, "", None if s.max_age_ms is None else
                     int(s.max_age_ms * 1e6)] for s in self._topic_sources}
        self._policy = {s.name: cfg.program.on_bad.get(s.name) for s in self._topic_sources}
        self._period_ns = period_ns
        self._start_ns: int | None = None

    def _read_topics(self, ctx: TaskContext) -> None:
        """Each topic is looked up once per scan, and its signals converted only when a
        new message arrived (messages are immutable)."""
        seen = self._seen
        for topic, sources in self._by_topic.items():
            msg = ctx.latest(topic)
            if msg is None or seen.get(topic) is msg:
                continue
            seen[topic] = msg
            for src in sources:
                self._read(msg, src)

    def _read(self, msg: Any, src: SignalSource) -> None:
        """Take one message: a readable value of GOOD quality becomes the signal's last
        GOOD value, stamped with its acquisition tick (the `tick` beside it, else the
        message's); anything else makes the signal not GOOD, with the reason."""
        track = self._track[src.name]
        parent: Any = None
        value: Any = msg.data
        try:
            for key in src.path:
                parent, value = value, value[key]
            if value is None:
                raise LogicError("no value (the source publishes null)")
            value = as_type(value, src.type)
        except (KeyError, IndexError, TypeError, LogicError) as exc:
            self._bad(src, f"topic '{src.topic}'", exc)
            track[2], track[3] = False, f"unreadable value ({exc})"
            return
        quality = self._quality(msg.data, parent, src)
        if isinstance(value, float) and not math.isfinite(value):
            quality = "INVALID"            # NaN and infinities are never a GOOD value
        if quality != "GOOD":
            track[2], track[3] = False, f"quality {quality}"
            return
        tick = parent.get("tick") if isinstance(parent, dict) else None
        if not isinstance(tick, int) or isinstance(tick, bool) or tick > msg.tick:
            tick = msg.tick
        track[0], track[1], track[2] = value, tick * self._period_ns, True

    @staticmethod
    def _quality(data: Any, parent: Any, src: SignalSource) -> str:
        """The quality a message gives the value: its `quality_field`, else the key
        `quality` beside the value when there is one, else GOOD."""
        try:
            if src.quality_path is not None:
                q = data
                for key in src.quality_path:
                    q = q[key]
            elif isinstance(parent, dict) and "quality" in parent:
                q = parent["quality"]
            else:
                return "GOOD"
        except (KeyError, IndexError, TypeError):
            return "MISSING"
        return q if isinstance(q, str) else repr(q)

    def _qualify(self, now_ns: int) -> None:
        """Each scan: every topic signal's value, quality and age as of the release."""
        inputs, start = self.inputs, self._start_ns
        for src in self._topic_sources:
            name = src.name
            value, since, msg_good, reason, max_age = self._track[name]
            age = now_ns - (since if since is not None else start)
            good = msg_good and (max_age is None or age <= max_age)
            if not good and msg_good:
                reason = f"no GOOD value for {age / 1e6:g} ms (max_age_ms " \
                         f"{max_age / 1e6:g})"
            gk = good_key(name)
            if inputs[gk] and not good:
                self.bad_episodes += 1
                policy = self._policy[name]
                log.warning("logic signal '%s' is not GOOD (%s): %s", name, reason,
                            "its STOP rules are forced" if policy and policy.policy == "safe"
                            else f"using {policy.value!r}" if policy and
                            policy.policy == SUBSTITUTE else "holding its last GOOD value")
            inputs[gk] = good
            inputs[age_key(name)] = age
            policy = self._policy[name]
            inputs[name] = policy.value if (not good and policy is not None and
                                            policy.policy == SUBSTITUTE) else value

    def _bad(self, src: SignalSource, where: str, exc: Exception) -> None:
        """A value that does not fit its type: counted, logged once, last value kept."""
        self.bad_inputs += 1
        if src.name not in self._warned:
            self._warned.add(src.name)
            log.warning("logic signal '%s': cannot read a %s from %s (%s); keeping its last "
                        "value", src.name, src.type, where, exc)

    def __call__(self, ctx: TaskContext) -> None:
        inputs = self.inputs
        now_ns = ctx.tick * self._period_ns
        if self._start_ns is None:
            self._start_ns = now_ns         # a signal's age counts from the first scan
        self._read_topics(ctx)
        self._qualify(now_ns)
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
                "bad_inputs": self.bad_inputs, "bad_episodes": self.bad_episodes,
                "rules": self.program.rule_count,
                "faults": self.program.faults.names()}


def attach(runtime, cfg: LogicConfig) -> LogicTask:
    """Add the logic task to a Runtime (the `logic` section's builder)."""
    body = LogicTask(cfg)
    runtime.add_task(LetTask("logic", body, period_ticks=cfg.period_ticks,
                             deadline_ticks=cfg.deadline_ticks, priority=cfg.priority,
                             on_miss=cfg.on_miss))
    runtime.add_summary("logic", body.summary)
    runtime.add_component("logic", body)
    runtime.add_topics(body.topic_events, body.topic_outputs, body.topic_faults)
    return body


SECTIONS = (Section("logic", parse_logic, attach),)

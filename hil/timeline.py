"""The timeline of a HIL scenario: what happens at which tick. One table of step kinds
(STEP_KINDS); each parsed step gives the events it puts on the timeline, each a tick and
what to do just before that tick runs.

    steps:
      - enable: {}                          # at the cursor (tick 0 at the start)
      - wait: 150 ms                        # moves the cursor: ticks, ms or s
      - move_joint: {positions: [...]}      # any motion request a program step can be
      - at: 0.6 s                           # or set the cursor
        fault: {kind: collision, joint: 2, torque_nm: 40, for: 50 ms, name: hit}
      - publish: {topic: io/door, data: {closed: false}}
      - stop: {category: 1}                 # a latched protective stop; {} a motion stop
      - reset: {}
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.config import Board, Node
from edge.motion.program import STEPS, issue_step, parse_request_step
from hil.plant_faults import FAULT_KINDS, PlantFault, Stall
from hil.rig_faults import RIG_FAULT_KINDS

if TYPE_CHECKING:
    from hil.runner import Bench

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ticks?|ms|s)\s*$")
_SCALE_NS = {"ms": 1e6, "s": 1e9}


def parse_ticks(node: Node, period_ns: int, *, minimum: int = 0) -> int:
    """A duration or time as a whole number of ticks: an integer (ticks) or a string
    `N ticks`, `N ms`, `N s`; ConfigError naming the node otherwise."""
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        ticks = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        number, unit = float(m[1]), m[2]
        if unit.startswith("tick"):
            if not number.is_integer():
                raise node.error(f"{value!r}: a number of ticks is a whole number")
            ticks = int(number)
        else:
            exact = number * _SCALE_NS[unit] / period_ns
            ticks = round(exact)
            if abs(exact - ticks) > 1e-6:
                raise node.error(f"{value!r} is not a whole number of ticks "
                                 f"({period_ns / 1e6:g} ms each)")
    else:
        raise node.error(f"expected a duration: ticks (an integer), or a string such as "
                         f"'10 ticks', '50 ms', '0.2 s'; got {value!r}")
    if ticks < minimum:
        raise node.error(f"must be at least {minimum} ticks, got {ticks}")
    return ticks


Action = Callable[["Bench"], None]


@dataclass
class Step(ABC):
    """One step of the timeline, read from the scenario file at `line`."""

    kind: str
    tick: int
    line: int

    @abstractmethod
    def events(self) -> list[tuple[int, Action]]:
        """(tick, action) pairs this step puts on the timeline."""

    def bind(self, bench: Bench) -> None:  # noqa: B027 - most steps need nothing bound
        """Check the step against the built runtime (EdgeError when it cannot apply)."""


@dataclass
class RequestStep(Step):
    """A motion request to the controller, queued for its next release."""

    request: Any = None            # edge.motion.program.ProgramStep
    args: Any = None               # the step's fields as written (a command's arguments)

    def events(self) -> list[tuple[int, Action]]:
        return [(self.tick, lambda bench: bench.record_request(
            self, issue_step(bench.runtime.lookup("motion"), self.request)))]

    def bind(self, bench: Bench) -> None:
        bench.runtime.lookup("motion")


@dataclass
class StopStep(Step):
    """`stop: {}` a motion stop (the controller brakes, nothing latched); with a category,
    a protective stop of the cycle at the next tick boundary, latched until reset."""

    category: int | None = None

    def events(self) -> list[tuple[int, Action]]:
        if self.category is None:
            return [(self.tick, lambda bench: bench.record_request(
                self, bench.runtime.lookup("motion").stop()))]
        return [(self.tick, lambda bench: bench.runtime.request_stop(self.category))]


@dataclass
class ResetStep(Step):
    def events(self) -> list[tuple[int, Action]]:
        return [(self.tick, lambda bench: bench.record_request(
            self, bench.runtime.lookup("motion").reset()))]

    def bind(self, bench: Bench) -> None:
        bench.runtime.lookup("motion")


@dataclass
class PublishStep(Step):
    """A message on the in-process bus, as a device or a bridge would publish it: staged
    before the tick, seen by subscribers from the tick after (LET)."""

    topic: str = ""
    data: Any = None

    def events(self) -> list[tuple[int, Action]]:
        return [(self.tick, lambda bench: bench.runtime.bus.publish(self.topic, self.data))]


@dataclass
class FaultStep(Step):
    """A fault of FAULT_KINDS, on at `tick`, off at `end_tick` (None: to the end)."""

    fault: PlantFault | None = None
    name: str = ""
    end_tick: int | None = None

    def events(self) -> list[tuple[int, Action]]:
        out = [(self.tick, lambda bench: bench.fault_on(self))]
        if self.end_tick is not None:
            out.append((self.end_tick, lambda bench: bench.fault_off(self)))
        return out

    def bind(self, bench: Bench) -> None:
        self.fault.bind(bench.runtime)


def _request(kind: str, body: Node, board: Board, tick: int) -> Step:
    return RequestStep(kind, tick, body.line, parse_request_step(kind, body, board),
                       body.plain() or {})


def _stop(kind: str, body: Node, board: Board, tick: int) -> Step:
    if body.value is None:
        body.value = {}
    body.only("category")
    return StopStep(kind, tick, body.line, body.get("category", int, None, choices=(0, 1, 2)))


def _reset(kind: str, body: Node, board: Board, tick: int) -> Step:
    if body.value not in (None, {}):
        raise body.error("reset takes no fields: reset: {}")
    return ResetStep(kind, tick, body.line)


def _publish(kind: str, body: Node, board: Board, tick: int) -> Step:
    from edge.errors import BusError
    from edge.rt.bus import check_topic

    body.only("topic", "data")
    topic = body.get("topic", str)
    try:
        check_topic(topic)
    except BusError as exc:
        raise body.error(str(exc), "topic") from None
    return PublishStep(kind, tick, body.line, topic, body.child("data").plain())


def _fault(kind: str, body: Node, board: Board, tick: int) -> Step:
    fault_kind = body.get("kind", str)
    kinds = {**FAULT_KINDS, **RIG_FAULT_KINDS}
    cls = kinds.get(fault_kind)
    if cls is None:
        raise body.error(f"unknown fault kind {fault_kind!r} (kinds: {', '.join(kinds)})",
                         "kind")
    body.only("kind", "name", "for", *cls.fields)
    fault = cls(body, board)
    length = body.child("for", None)
    end = None
    if length is not None:
        if not cls.lasting:
            raise body.error(f"a {fault_kind} fault acts once: it takes no 'for'", "for")
        end = tick + parse_ticks(length, board.cycle.period_ns, minimum=1)
    if isinstance(fault, Stall) and (end is None or end - tick > Stall.MAX_TICKS):
        raise body.error(f"a stall lasts 1 to {Stall.MAX_TICKS} ticks: give it a 'for' "
                         "(the Python side takes up the missed ticks when it ends)", "for")
    return FaultStep(kind, tick, body.line, fault, body.get("name", str, fault_kind), end)


# step key -> parser(kind, body, board, tick); `wait` and `at` are the timeline's own
STEP_KINDS: dict[str, Callable[[str, Node, Board, int], Step]] = {
    **{name: _request for name, step in STEPS.items() if step is not None and name != "stop"},
    "stop": _stop, "reset": _reset, "publish": _publish, "fault": _fault,
}


def parse_steps(node: Node | None, board: Board, duration_ticks: int) -> list[Step]:
    """The `steps:` list in timeline order; ConfigError naming file, line and field."""
    if node is None:
        return []
    period_ns = board.cycle.period_ns
    cursor = 0
    steps: list[Step] = []
    names: set[str] = set()
    for item in node.sequence():
        m = item.mapping()
        if "at" in m:
            cursor = parse_ticks(m["at"], period_ns)
        actions = [k for k in m if k != "at"]
        if actions == ["wait"]:
            cursor += parse_ticks(m["wait"], period_ns)
            continue
        if len(actions) != 1 or actions[0] not in STEP_KINDS:
            raise item.error(f"a step is `wait: D` or one of {', '.join(STEP_KINDS)} "
                             "(with an optional `at: T`)")
        if cursor >= duration_ticks:
            raise item.error(f"the step is at tick {cursor}, past the end of the run "
                             f"(duration {duration_ticks} ticks)")
        kind = actions[0]
        step = STEP_KINDS[kind](kind, m[kind], board, cursor)
        if isinstance(step, FaultStep):
            if step.name in names:
                raise m[kind].error(f"two faults named '{step.name}': give each a `name`")
            names.add(step.name)
        steps.append(step)
    return steps

"""The board's `program:` section: a short sequence of motion steps run once at start
(the simulated arm's demo), each waiting for the previous one to finish.

    program:
      - enable: {}
      - move_joint: {positions: [0, -1.2, 1.2, 0, 1.57, 0], speed_scale: 0.5}
      - move_linear: {offset: [0.1, 0, -0.05], speed_m_s: 0.1}   # or xyz: [..], rpy: [..]
      - move_circular: {via_offset: [0.05, 0.05, 0], offset: [0, 0.1, 0]}
      - wait: 0.5                                                # seconds
      - move_joint: {positions: [...]}
      - stop: {after_s: 0.3}          # stop the move before it, 0.3 s after it began
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.config import Board, Node
from edge.motion.requests import JOINTS, MOTION_REQUESTS, VECTOR
from edge.rt.executor import LetTask
from edge.sections import Section

# the steps: the motion requests that are steps (their fields are the table's), and
# `wait: <seconds>`, which is the program's own
STEPS = {
    **{r.name: r.step for r in MOTION_REQUESTS.values() if r.step is not None}, "wait": None}


@dataclass
class ProgramStep:
    kind: str
    args: dict[str, Any]
    line: int


@dataclass
class Program:
    steps: list[ProgramStep]
    file: str = ""


def _joint_limits(board: Board) -> tuple[list[float], list[float]] | None:
    """(q_min, q_max) a move_joint target must respect: the safety section's, else the
    arm's (rad)."""
    safety = board.sections.get("safety")
    if safety is not None:
        return list(safety.q_min), list(safety.q_max)
    motion = board.sections.get("motion")
    if motion is not None:
        return [link.q_min for link in motion.arm.links], [link.q_max for link in motion.arm.links]
    return None


def parse_program(node: Node, board: Board) -> Program:
    """Parse `program:`; raises ConfigError naming file, line and field (targets beyond
    the joint limits included). Needs the motion section."""
    if "motion" not in board.sections:
        raise node.error("the program section needs a motion section (the arm) in the board")
    steps = []
    for item in node.sequence():
        m = item.mapping()
        if len(m) != 1:
            raise item.error(f"a step is one of: {', '.join(STEPS)}")
        (kind, body), = m.items()
        if kind not in STEPS:
            raise item.error(f"unknown step {kind!r} (steps: {', '.join(STEPS)})")
        if STEPS[kind] is None:                           # wait
            steps.append(ProgramStep(kind, {"seconds": body.scalar(float, min=0.0, max=3600)},
                                     body.line))
            continue
        steps.append(parse_request_step(kind, body, board))
    return Program(steps, node.file)


def parse_request_step(kind: str, body: Node, board: Board) -> ProgramStep:
    """One motion request as a step (`kind` a key of STEPS with fields, `body` its
    mapping), checked against the board's joint limits; raises ConfigError naming file,
    line and field. The program section and HIL scenario timelines read steps with it."""
    step = STEPS[kind]
    if body.value is None:
        body.value = {}
    body.only(*step.fields)
    args: dict[str, Any] = {}
    n_axes = len(board.axes)
    for name, child in body.mapping().items():
        if step.fields[name] == JOINTS:
            args[name] = body.floats(name, n_axes)
        elif step.fields[name] == VECTOR:
            args[name] = body.floats(name, 3)
        else:
            args[name] = child.scalar(float, min=0.0)
    if step.check is not None:
        step.check(body, args, _joint_limits(board))
    return ProgramStep(kind, args, body.line)


def issue_step(controller, step: ProgramStep):
    """Ask `controller` (the MotionController) for the request of a step, its offsets
    resolved against the tool position it commands now; returns the Request."""
    a = dict(step.args)
    a.pop("after_s", None)                   # the program's own: when to interrupt
    c = controller
    tool = c.arm.fk(c.q_cmd)[:3, 3] if hasattr(c, "q_cmd") else np.zeros(3)
    if "offset" in a:
        a["xyz"] = list(tool + np.asarray(a.pop("offset")))
    if "via_offset" in a:
        a["via"] = list(tool + np.asarray(a.pop("via_offset")))
    return c.request(step.kind, **a)


@dataclass
class ProgramRunner:
    """Issues the steps one by one through the motion controller (a LET task, 10 ms). A
    step is completed once the controller accepted it and it ended (a move interrupted by
    the program's own `stop` step counts as completed); the first rejected step, or a
    fault, fails the program."""

    runtime: Any
    program: Program
    index: int = 0                    # steps issued
    completed: int = 0
    started_tick: int = 0
    current: Any = None               # the request issued last, "wait", or None
    log: list[dict[str, Any]] = field(default_factory=list)
    failed: str | None = None

    controller: Any = None            # the motion controller, found at connect

    def attach(self) -> None:
        period = max(1, int(round(10e6 / self.runtime.period_ns)))
        self.runtime.add_task(LetTask("program", self.scan, period_ticks=period, priority=40))
        self.runtime.add_summary("program", self.summary, failure=program_failed)
        self.runtime.on_connect(self._connect)

    def _connect(self) -> None:
        self.controller = self.runtime.lookup("motion")

    def _busy(self) -> bool:
        c = self.controller
        if not self.current.final:
            return True
        return c.state.value in ("moving", "stopping") or bool(c.requests)

    def scan(self, ctx) -> None:
        steps = self.program.steps
        if self.failed or self.completed == len(steps):
            return
        c = self.controller
        if c.state.value == "faulted":
            self.failed = f"controller faulted during step {self.completed + 1}"
            return
        elapsed_s = (ctx.tick - self.started_tick) * self.runtime.period_ns * 1e-9
        step = steps[self.index] if self.index < len(steps) else None
        if self.current == "wait":
            if elapsed_s < steps[self.index - 1].args["seconds"]:
                return
            self._finished(ctx.tick)
        elif self.current is not None:
            if self.current.status == "rejected":
                self.failed = (f"{self.program.file}:{steps[self.index - 1].line}: "
                               f"step rejected: {self.current.reason}")
                return
            interrupt = step is not None and step.kind == "stop" and \
                elapsed_s >= step.args.get("after_s", 0.0)
            if self._busy() and not interrupt:
                return
            self._finished(ctx.tick)
        if step is None:
            return
        self.current = "wait" if step.kind == "wait" else issue_step(c, step)
        self.started_tick = ctx.tick
        self.log.append({"step": self.index + 1, "kind": step.kind, "issued": ctx.tick})
        self.index += 1

    def _finished(self, tick: int) -> None:
        self.log.append({"step": self.index, "kind": self.program.steps[self.index - 1].kind,
                         "done": tick})
        self.completed += 1
        self.current = None

    def summary(self) -> dict[str, Any]:
        return {"steps": len(self.program.steps), "completed": self.completed,
                "failed": self.failed}


def program_failed(summary: dict[str, Any]) -> str | None:
    """The program's summary says it failed (why, in one line)."""
    return f"program failed: {summary['failed']}" if summary.get("failed") else None


def attach(runtime, program: Program) -> ProgramRunner:
    runner = ProgramRunner(runtime, program)
    runner.attach()
    runtime.add_component("program", runner)
    return runner


SECTIONS = (Section("program", parse_program, attach, needs=("motion",)),)

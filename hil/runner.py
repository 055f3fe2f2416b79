"""Runs one scenario run in virtual time: builds the controller from the board
(Runtime(board, virtual_time=True)), steps it tick by tick, applies the timeline's
events just before their tick, samples every signal into a trace, and judges the
assertions on it. Same run and seed, same trace, bit for bit: its SHA-256 says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from hil.scenario import Run
from hil.signals import RECORD, Probe, bind_signal
from hil.temporal import Measured, Trace, Verdict
from hil.timeline import FaultStep, Step


@dataclass
class RunResult:
    """What one run gave: plain data, so a worker process can hand it back."""

    id: str
    scenario: str
    file: str
    index: int
    params: dict[str, Any]
    seed: int
    ticks: int = 0
    sha256: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    measures: list[Measured] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # rejected requests and the like
    error: str | None = None       # the run could not be carried out (one line)
    seconds: float = 0.0
    trace_file: str | None = None
    description: str = ""
    figures: list = field(default_factory=list)     # hil.report.Figure, with --report

    @property
    def passed(self) -> bool:
        return self.error is None and all(v.passed for v in self.verdicts)

    def failures(self) -> list[str]:
        if self.error is not None:
            return [self.error]
        return [v.message() for v in self.verdicts if not v.passed]


class Bench:
    """The controller of one run, and what the timeline acts on while it is stepped."""

    def __init__(self, run: Run, *, check: bool = False) -> None:
        """check: build the controller as `edge check` does (nothing durable written) and
        bind everything, to validate the run without stepping it. Raises ConfigError
        naming the scenario line of a signal or step the controller cannot serve."""
        from edge.rt.runtime import Runtime

        self.run = run
        self.runtime = (Runtime.for_check if check else Runtime)(run.board, virtual_time=True)
        self.probe = Probe(self.runtime)
        self.stalls = 0
        self.requests: list[tuple[Step, Any]] = []
        n = run.duration_ticks
        self.columns = {s.name: np.zeros(n, dtype=s.dtype) for s in run.signals}
        self._record: list[tuple[np.ndarray, Callable]] = []
        self._live: list[tuple[np.ndarray, Callable]] = []
        for s in run.signals:
            reader = bind_signal(s, self.probe)
            (self._record if s.how == RECORD else self._live).append((self.columns[s.name],
                                                                       reader))
        for step in run.steps:
            try:
                step.bind(self)
            except EdgeError as exc:
                from edge.errors import ConfigError

                raise ConfigError(exc.one_line(), file=run.file, line=step.line) from None
        self._recorded = np.zeros(n, dtype=bool)
        self.runtime.executor.add_state_listener(self._on_record, 1)

    # -- what the timeline calls ----------------------------------------------------
    def fault_on(self, step: FaultStep) -> None:
        step.fault.start(self.runtime, self.runtime.cycle.tick)
        self.probe.active_faults.add(step.name)
        self.stalls += step.fault.stalls

    def fault_off(self, step: FaultStep) -> None:
        step.fault.end(self.runtime, self.runtime.cycle.tick)
        self.probe.active_faults.discard(step.name)
        self.stalls -= step.fault.stalls

    def record_request(self, step: Step, request: Any) -> None:
        self.requests.append((step, request))

    # -- sampling -------------------------------------------------------------------
    def _on_record(self, tick: int, records: np.ndarray) -> None:
        """The executor hands over each tick's state record in order (after a stall, the
        ticks it missed, when it takes them up)."""
        if tick >= len(self._recorded):
            return
        rec = records[-1]
        for column, read in self._record:
            column[tick] = read(rec)
        self._recorded[tick] = True

    def go(self) -> Trace:
        """Step the whole run; the trace."""
        events: dict[int, list[Callable[[Bench], None]]] = {}
        for step in self.run.steps:
            for tick, action in step.events():
                events.setdefault(tick, []).append(action)
        cycle, executor, probe = self.runtime.cycle, self.runtime.executor, self.probe
        for k in range(self.run.duration_ticks):
            for action in events.get(k, ()):
                action(self)
            if self.stalls:
                cycle.step(1)            # Python frozen: the cycle alone
            else:
                executor.step(1)
            probe.next_tick()
            for column, read in self._live:
                column[k] = read()
        if self.stalls:                  # a stall to the end: Python takes up the ticks
            self.stalls = 0
            executor.step(1)
        if not self._recorded.all():
            missing = int(np.flatnonzero(~self._recorded)[0])
            raise EdgeError(f"no state record for tick {missing}: the state ring dropped it")
        types = {s.name: s.type for s in self.run.signals}
        return Trace(np.arange(self.run.duration_ticks, dtype=np.int64), self.columns, types,
                     self.runtime.period_ns)

    def notes(self) -> list[str]:
        """One line per request of the timeline the controller rejected."""
        out = []
        for step, req in self.requests:
            if req.status == "rejected":
                out.append(f"{self.run.file}:{step.line}: {step.kind} at tick {step.tick} "
                           f"was rejected: {req.reason}")
        return out


def execute(run: Run, trace_dir: str | Path | None = None,
            report_dir: str | Path | None = None) -> RunResult:
    """Carry out one run and judge it; an EdgeError on the way becomes the result's
    error (one line), never an exception. report_dir: draw the run's plots there (a
    folder of the report's directory, hil.report)."""
    result = RunResult(run.id, run.scenario, run.file, run.index, dict(run.params), run.seed,
                       ticks=run.duration_ticks, description=run.description)
    started = time.perf_counter()
    try:
        bench = Bench(run)
        trace = bench.go()
        result.notes = bench.notes()
        judge(run, trace, result, trace_dir, report_dir)
    except EdgeError as exc:
        result.error = exc.one_line()
    result.seconds = time.perf_counter() - started
    return result


def judge(run: Run, trace: Trace, result: RunResult, trace_dir: str | Path | None,
          report_dir: str | Path | None = None) -> None:
    """Judge the assertions and take the measures on a run's trace (from virtual or real
    time) into `result`; write the trace and draw the run's plots when asked."""
    rows = trace.rows()
    for row in rows:                     # parameters are constants of the expressions
        row.update(run.params)
    result.verdicts = [a.judge(trace, rows) for a in run.assertions]
    result.measures = [m.take(trace, rows) for m in run.measures]
    result.sha256 = trace.sha256()
    if trace_dir is not None:
        from hil.reports import write_parquet

        result.trace_file = str(write_parquet(trace, Path(trace_dir), result))
    if report_dir is not None:
        from hil.report import render_run

        result.figures = render_run(run, trace, rows, result, Path(report_dir))

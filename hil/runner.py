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
from hil.signals import RECORD, Probe, Signal, bind_signal
from hil.temporal import Measured, Trace, Verdict
from hil.timeline import FaultStep, Step

RECORD_BLOCK_TICKS = 256    # state records handed to the recorder at once
PULL_CHUNK_TICKS = 1024     # at most this many ticks a chunk (the executor's PULL_RECORDS)


class _Held:
    """Live signals that change only when Python runs or a timeline step acts: read at
    those ticks, each value held over the ticks up to the next read."""

    def __init__(self, columns: list[tuple[np.ndarray, Callable]]) -> None:
        self.columns = columns
        self.values: list = [None] * len(columns)
        self.held = 0                 # the first tick not yet written

    def read_at(self, tick: int) -> None:
        """The values read now are in effect from `tick` on."""
        for i, (column, read) in enumerate(self.columns):
            if tick > self.held:
                column[self.held:tick] = self.values[i]
            if tick < len(column):
                self.values[i] = read()
        self.held = tick


def _one_by_one(bind: Callable) -> Callable:
    """A per-record reader (a source without a bulk one) as a reader of many records."""
    def bulk(probe: Probe) -> Callable:
        read = bind(probe)
        return lambda records: [read(rec) for rec in records]
    return bulk


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
    trace: Trace | None = field(default=None, repr=False, compare=False)  # keep_trace

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
        self._live: list[tuple[np.ndarray, Callable]] = []       # change when Python runs
        self._per_tick: list[tuple[np.ndarray, Callable]] = []   # may change at any tick
        for s in run.signals:
            if s.how == RECORD:
                bind = s.bulk or _one_by_one(s.bind)
                reader = bind_signal(Signal(s.name, s.type, s.how, bind, s.node, s.spec),
                                     self.probe)
                self._record.append((self.columns[s.name], reader))
            else:
                reader = bind_signal(s, self.probe)
                (self._per_tick if s.per_tick else self._live).append(
                    (self.columns[s.name], reader))
        for step in run.steps:
            try:
                step.bind(self)
            except EdgeError as exc:
                from edge.errors import ConfigError

                raise ConfigError(exc.one_line(), file=run.file, line=step.line) from None
        self._recorded = 0              # the records of ticks before this are in the columns
        self.runtime.executor.add_state_listener(self._on_records, RECORD_BLOCK_TICKS)

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
    def _on_records(self, tick: int, records: np.ndarray) -> None:
        """The executor hands over the state records of a block of ticks ending at `tick`,
        in order (after a stall, when Python takes the missed ticks up); each record
        signal reads its column slice at once."""
        first = tick + 1 - len(records)
        if first != self._recorded:
            raise EdgeError(f"the state records of ticks {self._recorded} .. {first - 1} "
                            "did not reach the recorder")
        end = min(tick + 1, self.run.duration_ticks)
        if end > first:
            records = records[:end - first]
            for column, read in self._record:
                column[first:end] = read(records)
        self._recorded = tick + 1

    def _read_live(self, columns: list[tuple[np.ndarray, Callable]], k: int) -> None:
        for column, read in columns:
            column[k] = read()

    def go(self) -> Trace:
        """Step the whole run; the trace.

        The cycle runs in chunks: up to the next tick at which the executor has Python
        work, or a timeline event; the signals read live are read after each chunk (they
        change only when Python runs or a timeline step acts), and held over the ticks in
        between. Signals of a native block's status are read after every tick; then the
        ticks without Python work are stepped on the cycle alone, as the executor would
        step them in one chunk."""
        duration = self.run.duration_ticks
        events: dict[int, list[Callable[[Bench], None]]] = {}
        for step in self.run.steps:
            for tick, action in step.events():
                events.setdefault(tick, []).append(action)
        stops = sorted(t for t in events if 0 < t < duration) + [duration]
        cycle, executor, probe = self.runtime.cycle, self.runtime.executor, self.probe
        # ticks the cycle may run ahead of Python: the watchdog's kicks must still come
        most = max(1, min(executor.kick_every_ticks or PULL_CHUNK_TICKS, PULL_CHUNK_TICKS))
        live = _Held(self._live)
        live.read_at(0)
        k, next_stop = 0, 0
        ahead = 0                     # ticks the cycle ran since Python last processed
        python_at = -1                # the executor's next tick with Python work (known)
        while k < duration:
            if k in events:
                for action in events[k]:
                    action(self)
                live.read_at(k)
                python_at = -1        # a step may have staged work (a bus message)
            while stops[next_stop] <= k:
                next_stop += 1
            if self.stalls:              # Python frozen: the cycle alone, one tick
                cycle.step(1)
                m, python = 1, False
            elif self._per_tick:
                m, python = 1, True
                if python_at < k:
                    python_at = executor.next_python_tick(k)
                if ahead + 1 < most and python_at > k:
                    cycle.step(1)        # no Python work at k: the executor would pass over
                    ahead, python = ahead + 1, False
                else:
                    executor.step(1)
                    ahead = 0
            else:
                m, python = min(executor.next_python_tick(k) - k + 1, stops[next_stop] - k,
                                most), True
                executor.step(m)
            if self._per_tick:
                probe.next_tick()
                self._read_live(self._per_tick, k)
            k += m
            if python:                   # Python ran at k - 1 (the chunk's last tick)
                live.read_at(k - 1)
        live.read_at(duration)
        if self.stalls:                  # a stall to the end: Python takes up the ticks
            self.stalls = 0
            executor.step(1)
        tail = duration - self._recorded
        if tail > 0:
            records = executor.history(executor.HISTORY_TICKS)
            ticks = records["tick"]
            records = records[(ticks >= self._recorded) & (ticks < duration)]
            if len(records) != tail:
                raise EdgeError(f"no state record for tick {self._recorded}: the state ring "
                                "dropped it")
            for column, read in self._record:
                column[self._recorded:] = read(records)
        types = {s.name: s.type for s in self.run.signals}
        return Trace(np.arange(duration, dtype=np.int64), self.columns, types,
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
            report_dir: str | Path | None = None, *, keep_trace: bool = False) -> RunResult:
    """Carry out one run and judge it; an EdgeError on the way becomes the result's
    error (one line), never an exception. report_dir: draw the run's plots there (a
    folder of the report's directory, hil.report). keep_trace: the trace stays on the
    result."""
    result = RunResult(run.id, run.scenario, run.file, run.index, dict(run.params), run.seed,
                       ticks=run.duration_ticks, description=run.description)
    started = time.perf_counter()
    try:
        bench = Bench(run)
        trace = bench.go()
        result.notes = bench.notes()
        if keep_trace:
            result.trace = trace
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

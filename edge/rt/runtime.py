"""A whole controller built from a board: native cycle, blocks, executor, bus, services.

A board becomes a controller in three phases (docs/composition.md): each section present
is built by the package that declares it (edge.sections), adding blocks to the tick's
STAGES, tasks, services and named components; then connect places the blocks in the
cycle in stage order and runs the sections' connect hooks, which look up each other's
components by name. This module wires that, runs it in virtual or real time, and
summarises what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from edge.config import Board
from edge.errors import ConfigError, EdgeError, SchedulingError
from edge.rt.bus import Bus
from edge.rt.executor import CYCLE_CMD_STOP, FAULT_REQUESTED, Executor, LetTask
from edge.rt.native import TARGET_CYCLE, TICK_ASAP, Block, Cycle
from edge.sections import DECLARED_IN, declaration, needs_problem

log = logging.getLogger(__name__)

# The tick, in order: the cycle calls every block's read (drive inputs), applies the
# commands due, calls every block's step in this stage order, then every block's write
# (drive outputs). Within a stage, blocks keep the order they were added in.
STAGES: tuple[tuple[str, str], ...] = (
    ("drive", "drives: read measured inputs first in the tick, write setpoints last"),
    ("motion", "what the controller asks for: trajectory, path player, setpoints"),
    ("integrators", "integrators' native blocks (Runtime(user_blocks=...))"),
    ("safety", "collision observer, then the safety monitor: the last word on commands"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
_REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class CoreOptions:
    """What sections set on the runtime's own cycle and bus before any section is built
    (Section.core_options)."""

    estop_category: int = 0              # the stop the e-stop input triggers (safety)
    bus_order: tuple[str, ...] = ()      # delivery rank by first matching pattern (bus)
    bus_queue: int = 1024                # default subscriber queue bound (bus)
    bus_overflow: str = "drop_oldest"    # (bus)


def _default_cpu() -> int:
    """The last CPU this process may use: keeps CPU 0 for the kernel and Python."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-1] if allowed else -1


def _board_sections(board: Board) -> list[str]:
    """The board's sections in build order (DECLARED_IN); ConfigError for one edge does
    not know (a board assembled by hand)."""
    unknown = [name for name in board.sections if name not in DECLARED_IN]
    if unknown:
        raise ConfigError(f"unknown board section {unknown[0]!r}", file=board.file)
    return [name for name in DECLARED_IN if name in board.sections]


class Runtime:
    """One controller: build it from a board, then `run_virtual` or `run_realtime`."""

    def __init__(self, board: Board, *, virtual_time: bool = False,
                 user_blocks: Sequence[Block] = ()) -> None:
        """user_blocks: integrators' native blocks (edge.rt.native.load_block), their own
        stage after motion and before safety, in the order given, with or without a
        motion section."""
        cfg = board.cycle
        self.board = board
        self.virtual_time = virtual_time
        self.period_ns = cfg.period_ns
        sections = _board_sections(board)
        options = CoreOptions()
        for name in sections:
            core = declaration(name).core_options
            if core is not None:
                options = dataclasses.replace(options, **core(board.sections[name]))
        watchdog_ticks = cfg.watchdog_ticks
        if not watchdog_ticks:
            log.warning("the safety watchdog is off (cycle.watchdog_ms: 0)")
        self.cycle = Cycle(
            cfg.period_ns, len(board.axes),
            busy_tail_ns=int(cfg.busy_tail_us * 1000),
            cpu=cfg.cpu if cfg.cpu >= 0 else _default_cpu(),
            priority=cfg.priority, lock_memory=cfg.lock_memory,
            watchdog_ticks=watchdog_ticks, estop_category=options.estop_category)
        clock = (lambda: self.bus.tick * self.period_ns) if virtual_time else time.time_ns
        self.bus = Bus(clock, order=options.bus_order, default_maxlen=options.bus_queue,
                       default_overflow=options.bus_overflow)
        kick_every = max(1, watchdog_ticks // 4) if watchdog_ticks else 0
        self.executor = Executor(self.cycle, self.bus, kick_every_ticks=kick_every)
        self._stages: dict[str, list[Block]] = {name: [] for name in STAGE_NAMES}
        self._components: dict[str, Any] = {}
        self._connect_hooks: list[tuple[str | None, Callable[[], None]]] = []
        self._services: list[tuple[str, Callable[[], AbstractAsyncContextManager]]] = []
        self._stop_hooks: list[Callable[[], None]] = []
        self._summaries: dict[str, Callable[[], Any]] = {}
        self._failures: dict[str, Callable[[Any], str | None]] = {}
        self._topics: list[str] = []
        self._section: str | None = None       # the section being built or connected
        self._connected = False
        for block in user_blocks:
            self.add_block(block, "integrators")
        self.bus.internal += 1      # what sections publish while built is the controller's
        try:
            self._build(sections)
            self._connect()
        finally:
            self.bus.internal -= 1

    @classmethod
    def for_check(cls, board: Board, *, virtual_time: bool = False) -> Runtime:
        """Everything `edge run` builds and checks, without starting the cycle thread or
        any service, and without writing durable state (`edge check`, `edge run
        --explain`): each section builds its Section.for_check settings."""
        checked = dict(board.sections)
        for name in _board_sections(board):
            for_check = declaration(name).for_check
            if for_check is not None:
                checked[name] = for_check(checked[name])
        return cls(dataclasses.replace(board, sections=checked), virtual_time=virtual_time)

    # -- composition ---------------------------------------------------------------
    def add_block(self, block: Block, stage: str) -> Block:
        """Add a native block to a stage of the tick (STAGES); the cycle's order and the
        block's command index (`block.index`) are fixed at connect."""
        if stage not in self._stages:
            raise EdgeError(f"unknown tick stage {stage!r} (stages: {', '.join(STAGE_NAMES)})")
        if self._connected:
            raise EdgeError(f"cannot add block '{block.name}': the runtime is connected "
                            "(add blocks from a section's build)")
        self._stages[stage].append(block)
        return block

    def add_component(self, name: str, component: Any) -> None:
        """Offer `component` to the other sections under `name` (see `lookup`)."""
        if name in self._components:
            raise EdgeError(f"two sections offer a component named {name!r}")
        self._components[name] = component

    def lookup(self, name: str, default: Any = _REQUIRED) -> Any:
        """The component offered under `name`, or `default`; without a default, an
        EdgeError naming what is missing and which section asked for it. Sections call
        it from a connect hook, once every section is built."""
        if name in self._components:
            return self._components[name]
        if default is not _REQUIRED:
            return default
        who = f"the {self._section} section" if self._section else "the caller"
        offered = ", ".join(sorted(self._components)) or "none"
        raise EdgeError(f"{who} needs the component {name!r}, which no section of board "
                        f"'{self.board.name}' offers (offered: {offered})")

    def on_connect(self, fn: Callable[[], None]) -> None:
        """`fn()` runs at connect, after every section is built and the blocks are placed
        in the cycle, in the order registered (so in section order)."""
        self._connect_hooks.append((self._section, fn))

    def add_topics(self, *topics: str) -> None:
        """Declare the topics (or '+'/'#' patterns) a section publishes, for --explain."""
        self._topics.extend(t for t in topics if t not in self._topics)

    def add_summary(self, name: str, fn: Callable[[], Any],
                    failure: Callable[[Any], str | None] | None = None) -> None:
        """`fn()` is this section's part of the run summary, under `name`; `failure(part)`
        says why the run ended faulted (one line), or None when it did not."""
        self._summaries[name] = fn
        if failure is not None:
            self._failures[name] = failure

    def failures(self, summary: dict[str, Any]) -> list[str]:
        """Why a run ended faulted, from its `summary()` (empty when the run is fine)."""
        found = (failure(summary.get(name) or {}) for name, failure in self._failures.items())
        return [why for why in found if why]

    @property
    def summary_names(self) -> tuple[str, ...]:
        """The summary entries the sections contributed, in build order."""
        return tuple(self._summaries)

    def _build(self, sections: list[str]) -> None:
        for name in sections:
            with self._in_section(name):
                problem = needs_problem(name, self.board.sections)
                if problem:
                    raise ConfigError(problem)
                build = declaration(name).build
                if build is not None:
                    build(self, self.board.sections[name])

    def _connect(self) -> None:
        for stage in STAGE_NAMES:
            for block in self._stages[stage]:
                self.cycle.add_block(block)
        self._connected = True
        for section, fn in self._connect_hooks:
            with self._in_section(section):
                fn()

    @contextlib.contextmanager
    def _in_section(self, name: str | None) -> Iterator[None]:
        """Build or connect section `name`: an error names the section's file and line."""
        self._section = name
        try:
            yield
        except EdgeError as exc:   # a key, a device, a directory: say which section
            if name is None or isinstance(exc, ConfigError) and exc.file is not None:
                raise
            root = self.board.root
            node = root.value.get(name) if root is not None else None
            if node is None and isinstance(exc, ConfigError):
                raise                # not from the board file (edge run --mqtt URL)
            raise ConfigError(exc.message if isinstance(exc, ConfigError)
                              else exc.one_line(), file=self.board.file,
                              line=node.line if node is not None else None,
                              field=name) from None
        finally:
            self._section = None

    def add_task(self, task: LetTask) -> None:
        self.executor.add_task(task)

    def request_stop(self, category: int, fault_code: int = FAULT_REQUESTED) -> None:
        """A stop from outside the tasks (a console, a bus command): applied at the next
        tick boundary, latched until reset."""
        if category not in (0, 1, 2):
            raise SchedulingError(f"stop category must be 0, 1 or 2, got {category}")
        self.cycle.push_command(TICK_ASAP, TARGET_CYCLE, CYCLE_CMD_STOP, (category, fault_code))

    def add_service(self, factory: Callable[[], AbstractAsyncContextManager],
                    name: str = "service") -> None:
        """Something long-lived (a bridge, a device poller), entered when running in real
        time and exited on shutdown. Virtual time runs without services."""
        self._services.append((name, factory))

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._services)

    def add_stop_hook(self, fn: Callable[[], None]) -> None:
        """`fn()` runs when a run ends without an exception, in either mode (virtual time:
        after the last tick; real time: after the services closed): what a section must
        save at stop, such as counters, is saved however the run was driven."""
        self._stop_hooks.append(fn)

    def _stopped(self) -> None:
        for fn in self._stop_hooks:
            fn()

    def explain(self) -> dict[str, Any]:
        """What this controller is made of, before it runs (`edge run --explain`): the
        blocks in tick order with their stage, the tasks, the services, the bus."""
        blocks = [{"index": b.index, "stage": stage, "name": b.name}
                  for stage in STAGE_NAMES for b in self._stages[stage]]
        tasks = [{"name": t.name, "period_ticks": t.period_ticks,
                  "deadline_ticks": t.deadline_ticks, "offset_ticks": t.offset_ticks,
                  "priority": t.priority, "on_miss": t.on_miss,
                  "stop_category": t.stop_category} for t in self.executor.tasks]
        bus = self.bus.stats()
        return {"board": self.board.name, "period_us": self.period_ns / 1e3,
                "stages": list(STAGE_NAMES), "blocks": blocks, "tasks": tasks,
                "services": list(self.service_names),
                "components": sorted(self._components),
                "bus": {"order": list(self.bus.order), "publishes": list(self._topics),
                        "subscriptions": [s["pattern"] for s in bus["subscriptions"]],
                        "published_at_start": sorted(bus["published_per_topic"])}}

    # -- running -------------------------------------------------------------------
    def ticks_for(self, duration_s: float) -> int:
        if duration_s <= 0:
            raise SchedulingError(f"duration must be positive, got {duration_s} s")
        return max(1, int(round(duration_s * 1e9 / self.period_ns)))

    def run_virtual(self, duration_s: float) -> None:
        """Step the whole controller through duration_s of virtual time, no sleeping."""
        self.executor.step(self.ticks_for(duration_s))
        self._stopped()

    async def run_realtime(self, duration_s: float | None,
                           stop: asyncio.Event | None = None) -> None:
        """Run on the real-time thread with services, until the duration or SIGINT/SIGTERM."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for _, factory in self._services:
                    await stack.enter_async_context(factory())
                await self.executor.run(None if duration_s is None else duration_s, stop)
            self._stopped()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    # -- reporting -----------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Ticks, wake-up latency percentiles, overruns, deadline misses, real-time status."""
        st = self.cycle.stats()
        out: dict[str, Any] = {
            "board": self.board.name,
            "mode": "virtual" if self.virtual_time else "realtime",
            "period_us": self.period_ns / 1e3,
            "ticks": st.ticks,
            "overruns": st.overruns,
            "missed_periods": st.missed_periods,
            "late_commands": st.late_commands,
            "rejected_commands": st.rejected_commands,
            "command_overflows": st.command_overflows,
            "state_drops": st.state_drops,
            "exec_us": {"p50": self.cycle.exec_us(0.5), "p99": self.cycle.exec_us(0.99),
                        "max": self.cycle.exec_us(1.0)},
            "executor": self.executor.stats(),
            "bus": self.bus.stats(),
        }
        if not self.virtual_time:
            out["latency_us"] = self.cycle.latency_summary_us()
            out["busy_tail_us"] = self.board.cycle.busy_tail_us
            out["busy_tail_cpu_fraction"] = st.spin_cpu_fraction
            out["realtime"] = {"sched_fifo": st.rt_fifo, "cpu_affinity": st.rt_affinity,
                               "mlockall": st.rt_mlock, "refused": st.realtime_report()}
        for name, fn in self._summaries.items():
            out[name] = fn()
        return out

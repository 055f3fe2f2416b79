"""A whole controller built from a board: native cycle, blocks, executor, bus, services.

Each optional board section is attached by the module that owns its concern
(SECTION_ATTACH); this module only wires them together, runs them in virtual or real
time, and summarises what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from edge.config import Board
from edge.errors import ConfigError, EdgeError, SchedulingError
from edge.rt.bus import Bus
from edge.rt.executor import CYCLE_CMD_STOP, FAULT_REQUESTED, Executor, LetTask
from edge.rt.native import (
    TARGET_CYCLE,
    TICK_ASAP,
    Block,
    Cycle,
    drive_sim_block,
    setpoint_block,
)

log = logging.getLogger(__name__)

# section name -> "module:function" taking (runtime, parsed section), in attach order
SECTION_ATTACH: dict[str, str] = {
    "motion": "edge.motion.runtime:attach",
    "safety": "edge.motion.safety_monitor:attach",   # after motion: checks what it commands
    "program": "edge.motion.program:attach",          # the demo program drives the controller
    "logic": "edge.logic.runtime:attach",
    "acquisition": "edge.acquisition.runtime:attach",
    "bus": "edge.rt.bus_config:attach",
    "mqtt": "edge.rt.bus_config:attach_mqtt",        # checks files and directories first
}


def _default_cpu() -> int:
    """The last CPU this process may use: keeps CPU 0 for the kernel and Python."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-1] if allowed else -1


class Runtime:
    """One controller: build it from a board, then `run_virtual` or `run_realtime`."""

    def __init__(self, board: Board, *, virtual_time: bool = False,
                 user_blocks: Sequence[Block] = ()) -> None:
        """user_blocks: integrators' native blocks (edge.rt.native.load_block), run after
        the motion blocks and before the safety layer, in the order given."""
        self.user_blocks = list(user_blocks)
        cfg = board.cycle
        self.board = board
        self.virtual_time = virtual_time
        self.period_ns = cfg.period_ns
        watchdog_ticks = cfg.watchdog_ticks
        if not watchdog_ticks:
            log.warning("the safety watchdog is off (cycle.watchdog_ms: 0)")
        self.cycle = Cycle(
            cfg.period_ns, len(board.axes),
            busy_tail_ns=int(cfg.busy_tail_us * 1000),
            cpu=cfg.cpu if cfg.cpu >= 0 else _default_cpu(),
            priority=cfg.priority, lock_memory=cfg.lock_memory,
            watchdog_ticks=watchdog_ticks,
            estop_category=getattr(board.sections.get("safety"), "estop_category", 0))
        clock = (lambda: self.bus.tick * self.period_ns) if virtual_time else time.time_ns
        bus_cfg = board.sections.get("bus")
        self.bus = Bus(clock, order=bus_cfg.order, default_maxlen=bus_cfg.queue,
                       default_overflow=bus_cfg.overflow) if bus_cfg else Bus(clock)
        kick_every = max(1, watchdog_ticks // 4) if watchdog_ticks else 0
        self.executor = Executor(self.cycle, self.bus, kick_every_ticks=kick_every)
        self._services: list[Callable[[], AbstractAsyncContextManager]] = []
        self._stop_hooks: list[Callable[[], None]] = []
        self.extra_summary: dict[str, Callable[[], Any]] = {}
        self._attach_sections()

    @classmethod
    def for_check(cls, board: Board) -> Runtime:
        """Everything `edge run` builds and checks, without starting the cycle thread or
        any service, and without writing durable state (`edge check`)."""
        acquisition = board.sections.get("acquisition")
        if acquisition is not None and acquisition.usage is not None:
            # the usage counters count a power cycle when built: not for a check
            board = dataclasses.replace(board, sections={
                **board.sections, "acquisition": dataclasses.replace(acquisition, usage=None)})
        return cls(board)

    # -- composition ---------------------------------------------------------------
    def add_block(self, block: Block) -> int:
        """Append a native block to the tick order (before the cycle starts)."""
        return self.cycle.add_block(block)

    def add_task(self, task: LetTask) -> None:
        self.executor.add_task(task)

    def request_stop(self, category: int, fault_code: int = FAULT_REQUESTED) -> None:
        """A stop from outside the tasks (a console, a bus command): applied at the next
        tick boundary, latched until reset."""
        if category not in (0, 1, 2):
            raise SchedulingError(f"stop category must be 0, 1 or 2, got {category}")
        self.cycle.push_command(TICK_ASAP, TARGET_CYCLE, CYCLE_CMD_STOP, (category, fault_code))

    def add_service(self, factory: Callable[[], AbstractAsyncContextManager]) -> None:
        """Something long-lived (a bridge, a device poller), entered when running in real
        time and exited on shutdown. Virtual time runs without services."""
        self._services.append(factory)

    def add_stop_hook(self, fn: Callable[[], None]) -> None:
        """`fn()` runs when a run ends without an exception, in either mode (virtual time:
        after the last tick; real time: after the services closed): what a section must
        save at stop, such as counters, is saved however the run was driven."""
        self._stop_hooks.append(fn)

    def _stopped(self) -> None:
        for fn in self._stop_hooks:
            fn()

    def _attach_sections(self) -> None:
        if "motion" not in self.board.sections:
            self._attach_minimal_motion()
        for name, target in SECTION_ATTACH.items():
            if name not in self.board.sections:
                continue
            module_name, func_name = target.split(":")
            attach = getattr(importlib.import_module(module_name), func_name)
            try:
                attach(self, self.board.sections[name])
            except EdgeError as exc:   # a key, a device, a directory: say which section
                if isinstance(exc, ConfigError) and exc.file is not None:
                    raise
                root = self.board.root
                node = root.value.get(name) if root is not None else None
                if node is None and isinstance(exc, ConfigError):
                    raise                # not from the board file (edge run --mqtt URL)
                raise ConfigError(exc.message if isinstance(exc, ConfigError)
                                  else exc.one_line(), file=self.board.file,
                                  line=node.line if node is not None else None,
                                  field=name) from None

    def _attach_minimal_motion(self) -> None:
        """No motion section: rate-limited setpoints on a simulated drive, and a demo task
        that moves every axis between its initial position and an offset pose."""
        axes = self.board.axes
        home = [a.initial_position for a in axes]
        setpoint_index = self.add_block(setpoint_block([a.max_velocity for a in axes],
                                                       [a.max_acceleration for a in axes]))
        self.add_block(drive_sim_block(home, tau_s=0.005))
        period_ticks = max(1, int(round(2e9 / self.period_ns)))   # every 2 s
        poses = [home, [q + 0.5 for q in home]]

        def demo(ctx) -> None:
            pose = poses[(ctx.tick // period_ticks) % 2]
            ctx.command(setpoint_index, 1, pose)

        self.add_task(LetTask("demo_moves", demo, period_ticks=period_ticks,
                              deadline_ticks=min(10, period_ticks)))

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
                for factory in self._services:
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
        for name, fn in self.extra_summary.items():
            out[name] = fn()
        return out

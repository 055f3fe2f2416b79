"""The LET executor: Python cyclic tasks on the native tick, outputs a function of inputs.

A task released at tick r sees the native state record of tick r and the bus as delivered
at r; whatever it publishes becomes visible at r + D and whatever it commands is applied
by the cycle at tick r + D, exactly. Python processes ticks strictly in order, so the
bus, the task order and the outputs depend on ticks alone, never on how fast Python ran:
`step(n)` (virtual time) and `run()` (real time) produce the same outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.errors import SchedulingError
from edge.rt.bus import Bus, Message
from edge.rt.contract import CycleCommand, FaultCode
from edge.rt.native import TARGET_CYCLE, TICK_ASAP, Cycle, StateHistory

log = logging.getLogger(__name__)

CYCLE_CMD_STOP, CYCLE_CMD_KICK = CycleCommand.STOP, CycleCommand.KICK
FAULT_DEADLINE, FAULT_REQUESTED = FaultCode.DEADLINE, FaultCode.REQUESTED
MISS_POLICIES = ("log", "fault", "stop")
MISS_STOP_CATEGORY = {"fault": 2, "stop": 1}   # the default stop of each latching policy
MAX_IDLE_S = 0.02             # real-time loop: longest sleep between checks of `stop`
PULL_RECORDS = 1024           # state records moved per pull, processed before the next
# Real time: a release whose deadline is at least this far lets ready I/O go first
YIELD_SLACK_NS = 2_000_000


@dataclass
class LetTask:
    """A periodic Python task under logical execution time.

    period_ticks: release every this many ticks, from offset_ticks on.
    deadline_ticks: D, 1 <= D <= period; outputs take effect at release + D.
    priority: among tasks released at the same tick, higher runs first (then by name).
    on_miss: "log" counts and logs; "fault" and "stop" also latch a stop with the
        deadline fault (258) in the cycle: by default category 2 for "fault" (controlled
        stop, power kept) and category 1 for "stop" (controlled stop, then power off).
    stop_category: the IEC 60204-1 category (0, 1 or 2) those two policies request, in
        place of their default (boards set it per task, e.g. the motion controller's
        `motion: on_miss_stop_category`).
    """

    name: str
    body: Callable[[TaskContext], None | Awaitable[None]]
    period_ticks: int
    deadline_ticks: int | None = None
    priority: int = 0
    offset_ticks: int = 0
    on_miss: str = "log"
    stop_category: int | None = None
    releases: int = field(default=0, init=False)
    misses: int = field(default=0, init=False)
    injected_misses: int = field(default=0, init=False)   # Executor.inject_deadline_miss
    max_runtime_ns: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.deadline_ticks is None:
            self.deadline_ticks = self.period_ticks
        if self.period_ticks < 1:
            raise SchedulingError(f"task '{self.name}': period must be >= 1 tick")
        if not 1 <= self.deadline_ticks <= self.period_ticks:
            raise SchedulingError(f"task '{self.name}': deadline must be between 1 tick and "
                                  f"the period ({self.period_ticks}), got {self.deadline_ticks}")
        if self.offset_ticks < 0:
            raise SchedulingError(f"task '{self.name}': offset must be >= 0")
        if self.on_miss not in MISS_POLICIES:
            raise SchedulingError(f"task '{self.name}': on_miss must be one of "
                                  f"{', '.join(MISS_POLICIES)}, got {self.on_miss!r}")
        if self.stop_category is None:
            self.stop_category = MISS_STOP_CATEGORY.get(self.on_miss)
        elif self.on_miss not in MISS_STOP_CATEGORY or \
                isinstance(self.stop_category, bool) or self.stop_category not in (0, 1, 2):
            raise SchedulingError(f"task '{self.name}': stop_category must be 0, 1 or 2 with "
                                  f"on_miss fault or stop, got {self.stop_category!r} with "
                                  f"{self.on_miss!r}")

    def released_at(self, tick: int) -> bool:
        return tick >= self.offset_ticks and (tick - self.offset_ticks) % self.period_ticks == 0


class TaskContext:
    """What one release of a task sees and may do; outputs are held until r + D."""

    __slots__ = ("_executor", "task", "tick", "effective_tick", "_state", "_publishes",
                 "_commands", "_hand_overs")

    def __init__(self, executor: Executor, task: LetTask, tick: int) -> None:
        self._executor = executor
        self.task = task
        self.tick = tick
        self.effective_tick = tick + task.deadline_ticks
        self._state: np.void | None = None
        self._publishes: list[tuple[str, Any]] = []
        self._commands: list[tuple[int, int, tuple[float, ...]]] = []
        self._hand_overs: list[tuple[Callable[[], None], Callable[[], None] | None]] = []

    @property
    def state(self) -> np.void:
        """The native state record of tick r (read-only; copied when first looked at,
        so a task that never reads it costs no copy)."""
        if self._state is None:
            self._state = self._executor.state_record(self.tick)
        return self._state

    def latest(self, topic: str) -> Message | None:
        """The last message on `topic` delivered by tick r."""
        return self._executor.bus.latest(topic)

    def recent_states(self, n: int) -> np.ndarray:
        """The native state records of ticks r-n+1 .. r (fewer at start-up)."""
        return self._executor.history(n)

    def publish(self, topic: str, data: Any) -> None:
        """Publish `data` on `topic`, visible to subscribers from tick r + D."""
        self._publishes.append((topic, data))

    def command(self, target: int, kind: int, args: Sequence[float] = ()) -> None:
        """Send a command to a native block (or the cycle), applied at tick r + D."""
        self._commands.append((target, kind, tuple(float(a) for a in args)))

    def request_stop(self, category: int, fault_code: int = FAULT_REQUESTED) -> None:
        """Ask the cycle for a stop of `category` (0, 1, 2), latched until reset."""
        if category not in (0, 1, 2):
            raise SchedulingError(f"stop category must be 0, 1 or 2, got {category}")
        self.command(TARGET_CYCLE, CYCLE_CMD_STOP, (category, fault_code))

    def hand_over(self, apply: Callable[[], None],
                  dropped: Callable[[], None] | None = None) -> None:
        """An output to Python code (a request to the motion controller, say): `apply()`
        runs when tick r + D opens, before that tick's releases, so whoever takes it
        does so at its first release at or after r + D; if this release misses its
        deadline, `dropped()` runs instead (at once), like its other outputs."""
        self._hand_overs.append((apply, dropped))


# The release whose body is running (its coroutine included), for code that a task body
# calls and that must turn what it is asked into that release's outputs
_RELEASE: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "edge_release", default=None)


def current_release() -> TaskContext | None:
    """The release whose task body is running, or None outside every task body (a test,
    a service, a bus callback)."""
    return _RELEASE.get()


async def _within(ctx: TaskContext, awaitable: Awaitable[None]) -> None:
    """Await a task body's awaitable as part of its release (current_release())."""
    token = _RELEASE.set(ctx)
    try:
        await awaitable
    finally:
        _RELEASE.reset(token)


async def _ready_io_first() -> None:
    """Let what became ready while the executor was woken run first (device replies, for
    one): the first yield queues this behind the callbacks already ready, the second
    behind those that the I/O polled in between made ready. A release with time to spare
    before its deadline then runs while a device works on the request just sent, instead
    of holding back the reply that arrived. On the 2-vCPU development VM, the acquisition
    bench's 5 ms release run at once cost back-to-back Modbus polling about 15 % of its
    rate; run after this, a few percent."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class VirtualTimeViolation(SchedulingError):
    """A task awaited real I/O while the executor was stepped in virtual time."""


def _run_to_completion(coro: Awaitable[None], task: LetTask) -> None:
    """Drive a coroutine that never really suspends (virtual time has no I/O)."""
    refusal = (f"task '{task.name}' awaited real I/O in virtual time; hand I/O to a "
               "service and read its results through the bus instead")
    try:
        while True:
            if coro.send(None) is not None:
                coro.close()
                raise VirtualTimeViolation(refusal)
    except StopIteration:
        return
    except RuntimeError as exc:          # asyncio primitives need a running loop
        if "event loop" not in str(exc):
            raise
        coro.close()
        raise VirtualTimeViolation(refusal) from None


class Executor:
    """Releases LetTasks on the native tick and moves their outputs at the deadline."""

    HISTORY_TICKS = 4096

    def __init__(self, cycle: Cycle, bus: Bus, *, kick_every_ticks: int = 0) -> None:
        self.cycle = cycle
        self.bus = bus
        self.tasks: list[LetTask] = []
        self._listeners: list[tuple[Callable[[int, np.ndarray], None], int]] = []
        self._held: dict[int, list[tuple[str, Any]]] = {}   # logical publish tick -> messages
        self._held_hand_overs: dict[int, list[Callable[[], None]]] = {}  # r + D -> apply
        self._states = StateHistory(self.HISTORY_TICKS + PULL_RECORDS)
        self._recorded_from: int | None = None   # first tick whose record was pulled
        self._processed = 0          # ticks processed so far (next tick to process)
        self.missing_records = 0     # release ticks whose record the state ring had dropped
        self._kick_every = kick_every_ticks
        self._last_kick = -(10**9)
        self.deadline_misses = 0
        self.running_realtime = False
        # on_missed(task name, release tick): every miss, timed or injected (the recorder)
        self.on_missed: Callable[[str, int], None] | None = None
        # the ticks before this had their releases when a real-time run ended (the ticks
        # opened after it, once the thread stopped, had none)
        self.released_until: int | None = None

    # -- setup ---------------------------------------------------------------------
    def add_task(self, task: LetTask) -> None:
        """Add a task; the order among simultaneous releases is (priority desc, name)."""
        if any(t.name == task.name for t in self.tasks):
            raise SchedulingError(f"a task named '{task.name}' already exists")
        self.tasks.append(task)
        self.tasks.sort(key=lambda t: (-t.priority, t.name))

    def add_state_listener(self, fn: Callable[[int, np.ndarray], None],
                           every_ticks: int = 1) -> None:
        """Call fn(tick, records) at every tick k with (k + 1) % every_ticks == 0, with the
        state records of ticks k - every_ticks + 1 .. k, before the tasks released at k.
        What a listener publishes is stamped with tick k and visible from k + 1."""
        if every_ticks < 1:
            raise SchedulingError("a state listener runs every 1 tick or more")
        self._listeners.append((fn, every_ticks))

    # -- the tick ------------------------------------------------------------------
    def history(self, n: int) -> np.ndarray:
        """State records of the last n processed ticks (at most HISTORY_TICKS), oldest
        first."""
        if self._recorded_from is None:
            return self._states.span(0, 0)
        n = max(0, min(n, self._processed - self._recorded_from, self.HISTORY_TICKS))
        return self._states.span(self._processed - n, self._processed)

    def _pull(self) -> int | None:
        """Move the records the cycle produced into the history (at most PULL_RECORDS, so
        none is overwritten before it is processed); the tick up to which the ticks can
        now be processed, or None when no record came."""
        span = self.cycle.pop_states_into(self._states, PULL_RECORDS)
        if span is None:
            return None
        # ran_to: read before the move, every tick before it has pushed its record
        first, end, count, ran_to = span
        if self._recorded_from is None:
            self._recorded_from = first
        self._processed = max(self._processed, first)   # earlier ticks left no record
        # All pulled: the ticks up to ran_to have run, and a record missing among them was
        # dropped by a full ring (their releases still happen, counted as missing records)
        return end if count == PULL_RECORDS else max(end, ran_to)

    @property
    def kick_every_ticks(self) -> int:
        """How often Python must feed the cycle's watchdog, in ticks (0: no watchdog)."""
        return self._kick_every

    def next_python_tick(self, tick: int) -> int:
        """The first tick >= `tick` at which Python has anything to do: a stepper (a HIL
        runner) may run the cycle alone up to it."""
        if self.bus.has_staged():
            return tick
        best = self._next_event_tick(tick)
        if self._held:
            best = min(best, min(self._held))
        if self._held_hand_overs:
            best = min(best, min(self._held_hand_overs))
        for _, every in self._listeners:
            best = min(best, tick + (-(tick + 1)) % every)
        return best

    def _open_tick(self, tick: int) -> None:
        """Bus delivery, held publications due now, listeners: all before any release."""
        bus = self.bus
        bus.internal += 1               # what is published now is the controller's own
        try:
            bus.deliver(tick)
            for topic, data in self._held.pop(tick, ()):
                bus.publish(topic, data)
            for apply in self._held_hand_overs.pop(tick, ()):
                apply()
            for listener, every in self._listeners:
                if (tick + 1) % every == 0:
                    listener(tick, self.history(every))
        finally:
            bus.internal -= 1

    def _event_ticks(self, upto: int):
        """The ticks before `upto` where something happens, each opened (bus delivery,
        held publications, listeners) before it is yielded; the ticks in between are
        passed over without Python work."""
        tick = self._processed
        while tick < upto:
            event = self.next_python_tick(tick)
            if event > tick:                      # nothing to do until `event`
                tick = min(event, upto)
                self._processed = tick
                continue
            self._processed = tick + 1
            self._open_tick(tick)
            yield tick
            tick += 1

    def _complete(self, ctx: TaskContext, started_ns: int) -> None:
        """Hand a finished release's outputs over, or apply the miss policy."""
        task = ctx.task
        task.max_runtime_ns = max(task.max_runtime_ns, time.perf_counter_ns() - started_ns)
        # The cycle must not have begun tick r + D before the outputs are queued.
        late = self.running_realtime and self.cycle.tick > ctx.effective_tick
        if not late and task.injected_misses:
            task.injected_misses -= 1
            late = True
        if late:
            self._missed(ctx)
            return
        for target, kind, args in ctx._commands:
            self.cycle.push_command(ctx.effective_tick, target, kind, args)
        if ctx._hand_overs:
            self._held_hand_overs.setdefault(ctx.effective_tick, []).extend(
                apply for apply, _ in ctx._hand_overs)
        if ctx._publishes:
            self._held.setdefault(ctx.effective_tick - 1, []).extend(ctx._publishes)
            if ctx.effective_tick - 1 == ctx.tick:          # D = 1: staged in tick r
                for topic, data in self._held.pop(ctx.tick):
                    self.bus.publish(topic, data)

    def _missed(self, ctx: TaskContext) -> None:
        task = ctx.task
        task.misses += 1
        self.deadline_misses += 1
        if self.on_missed is not None:
            self.on_missed(task.name, ctx.tick)
        log.warning("task '%s' released at tick %d missed its deadline (tick %d); outputs "
                    "dropped, policy %s", task.name, ctx.tick, ctx.effective_tick, task.on_miss)
        if task.on_miss in MISS_STOP_CATEGORY:
            self.cycle.push_command(TICK_ASAP, TARGET_CYCLE, CYCLE_CMD_STOP,
                                    (task.stop_category, FAULT_DEADLINE))
        for _, dropped in ctx._hand_overs:
            if dropped is not None:
                dropped()

    def inject_deadline_miss(self, task_name: str, releases: int = 1) -> None:
        """Fault injection (tests, HIL rigs): the next `releases` releases of the task run
        but count as late, in virtual time as in real time; their outputs are dropped and
        the task's miss policy applies, exactly as for a real overrun. Raises
        SchedulingError for an unknown task or a count below 1."""
        task = next((t for t in self.tasks if t.name == task_name), None)
        if task is None:
            raise SchedulingError(f"no task named '{task_name}'")
        if releases < 1:
            raise SchedulingError("inject at least one deadline miss")
        task.injected_misses += releases

    def _releases(self, tick: int):
        """The tasks released at `tick`, each with its context (which copies the tick's
        state record only if the task looks at it)."""
        checked = False
        for task in self.tasks:
            if task.released_at(tick):
                if not checked:
                    checked = True
                    if not self._states.holds(tick):   # the state ring was full (state_drops)
                        self.missing_records += 1
                task.releases += 1
                yield task, TaskContext(self, task, tick)

    def state_record(self, tick: int) -> np.void:
        """A read-only copy of the state record of `tick`, while the history holds it (if
        the state ring dropped it, the slot's older record: its `tick` field says so)."""
        if not self._processed - self.HISTORY_TICKS <= tick < self._processed:
            raise SchedulingError(f"the state record of tick {tick} is no longer held "
                                  f"(the history keeps the last {self.HISTORY_TICKS} ticks)")
        return self._states.record(tick)

    def _kick(self, tick: int) -> None:
        if self._kick_every and tick - self._last_kick >= self._kick_every:
            self.cycle.push_command(TICK_ASAP, TARGET_CYCLE, CYCLE_CMD_KICK)
            self._last_kick = tick

    def _work(self, upto: int):
        """Process the ticks before `upto` in order: open each event tick, run the tasks
        released at it, hand their outputs over. Yields (awaitable, task) when a task body
        returned an awaitable, and in real time before a release with YIELD_SLACK_NS to
        spare (_ready_io_first); the driver awaits it (or, in virtual time, runs it to
        completion) before resuming, so the release completes before the next one."""
        for tick in self._event_ticks(upto):
            for task, ctx in self._releases(tick):
                if self.running_realtime and (ctx.effective_tick - self.cycle.tick) \
                        * self.cycle.period_ns >= YIELD_SLACK_NS:
                    yield _ready_io_first(), task
                started = time.perf_counter_ns()
                token = _RELEASE.set(ctx)
                self.bus.internal += 1
                try:
                    result = task.body(ctx)
                finally:
                    self.bus.internal -= 1
                    _RELEASE.reset(token)
                if result is not None and inspect.isawaitable(result):
                    yield _within(ctx, result), task
                self.bus.internal += 1
                try:
                    self._complete(ctx, started)
                finally:
                    self.bus.internal -= 1
        self._kick(self._processed)

    def _process_sync(self, upto: int) -> None:
        for awaitable, task in self._work(upto):
            _run_to_completion(awaitable, task)

    async def _process_async(self, upto: int) -> None:
        for awaitable, _ in self._work(upto):
            await awaitable

    # -- driving time --------------------------------------------------------------
    def step(self, n_ticks: int) -> None:
        """Advance n ticks in virtual time. The cycle runs in chunks up to the next tick
        at which Python has something to do; the outputs are the same as tick by tick."""
        if self.running_realtime:
            raise SchedulingError("step() is for virtual time; the executor runs in real time")
        end = self.cycle.tick + n_ticks
        while self.cycle.tick < end:
            now = self.cycle.tick
            # at most PULL_RECORDS ticks a chunk: the state ring never overflows in virtual
            # time, so history() always holds the last ticks
            chunk = min(self.next_python_tick(now) - now + 1, end - now, PULL_RECORDS)
            if self._kick_every:
                chunk = min(chunk, self._kick_every)
            self.cycle.step(chunk)
            while (upto := self._pull()) is not None:
                self._process_sync(upto)

    def _next_event_tick(self, after: int) -> int:
        """The first tick >= after at which a task is released."""
        best = after + 1_000_000
        for task in self.tasks:
            if after <= task.offset_ticks:
                k = task.offset_ticks
            else:
                k = after + (-(after - task.offset_ticks)) % task.period_ticks
            best = min(best, k)
        return best

    async def run(self, duration_s: float | None = None,
                  stop: asyncio.Event | None = None) -> None:
        """Run in real time on the native thread until duration_s elapsed or `stop` set.

        The cycle is started and stopped here; the remaining state records are processed
        after the thread has stopped, so no record is lost from the statistics.
        """
        first = self.cycle.tick
        period_s = self.cycle.period_ns * 1e-9
        end_tick = None if duration_s is None else first + max(1, round(duration_s / period_s))
        stop = stop or asyncio.Event()
        self.running_realtime = True
        self.cycle.start()
        try:
            if self.cycle.wake_fd >= 0:
                await self._run_woken(end_tick, stop)
            else:
                await self._run_polling(end_tick, stop)
        finally:
            self.cycle.stop()
            self.running_realtime = False
            self.released_until = self._processed
            self._drain_after_stop(end_tick)

    def _wake_target(self, end_tick: int | None) -> int:
        """The tick whose state record Python waits for next."""
        target = self._next_event_tick(self._processed)
        if self._kick_every:          # stay awake often enough to feed the watchdog
            target = min(target, self._processed + self._kick_every)
        if end_tick is not None:
            target = min(target, end_tick - 1)
        return target

    async def _run_woken(self, end_tick: int | None, stop: asyncio.Event) -> None:
        """The cycle thread writes to an eventfd once the tick Python waits for has run;
        the event loop calls back on it and the ticks are processed right in that
        callback (no task, future or timer per wake-up). What has to be awaited (a task
        body that returned an awaitable, or the yield that lets ready I/O go first) is
        awaited on an asyncio task, and processing resumes after it."""
        loop = asyncio.get_running_loop()
        fd = self.cycle.wake_fd
        finished = loop.create_future()
        pending: list[asyncio.Task] = []           # the async release being awaited, if any

        def finish(exc: BaseException | None = None) -> None:
            if not finished.done():
                if exc is None:
                    finished.set_result(None)
                else:
                    finished.set_exception(exc)

        def advance(work=None) -> None:
            """Finish `work`, process what the cycle produced, then ask to be woken for
            the next event (a release under way always completes first)."""
            try:
                pulled = False
                while True:
                    if work is not None:
                        for awaitable, _ in work:  # something to await: on a task
                            pending.append(loop.create_task(resume(awaitable, work)))
                            return
                        work = None
                    if stop.is_set() or (end_tick is not None and self._processed >= end_tick):
                        break
                    if pulled and self.cycle.wake_at(self._wake_target(end_tick)):
                        return                     # the eventfd calls back
                    upto, pulled = self._pull(), True
                    if upto is not None:
                        work = self._work(upto if end_tick is None else min(upto, end_tick))
                finish()
            except BaseException as exc:           # a task body failed: run() raises it
                finish(exc)

        async def resume(awaitable, work) -> None:
            try:
                await awaitable
            except BaseException as exc:
                finish(exc)
                return
            finally:
                pending.clear()
            advance(work)

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 8)
            if not pending:
                advance()

        loop.add_reader(fd, readable)
        watch = loop.create_task(stop.wait())
        watch.add_done_callback(lambda _: finish())
        try:
            advance()
            await finished
        finally:
            loop.remove_reader(fd)
            watch.cancel()
            while pending:            # a release in flight completes (or is cancelled
                task = pending[-1]    # with run())
                if finished.cancelled():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run_polling(self, end_tick: int | None, stop: asyncio.Event) -> None:
        """Without an eventfd: sleep until the next event tick should have run."""
        period_s = self.cycle.period_ns * 1e-9
        while not stop.is_set():
            upto = self._pull()
            if upto is not None:
                await self._process_async(upto if end_tick is None else min(upto, end_tick))
            if end_tick is not None and self._processed >= end_tick:
                break
            delay = max(self._wake_target(end_tick) + 1 - self.cycle.tick, 0) * period_s
            await asyncio.sleep(min(max(delay, 0.0002), MAX_IDLE_S))

    def _drain_after_stop(self, end_tick: int | None) -> None:
        """Open the ticks that ran before the thread stopped (listeners, bus), without
        releasing tasks: their outputs could no longer take effect."""
        while (upto := self._pull()) is not None:
            for _ in self._event_ticks(upto if end_tick is None else min(upto, end_tick)):
                pass
        # What the last opened tick published is delivered at the boundary that ends the
        # run, as the next tick would have: a bridge still subscribed journals it, so a
        # clean stop loses no message (it used to lose the final frame of every run).
        if self.bus.has_staged():
            self.bus.deliver(self._processed)

    # -- statistics ----------------------------------------------------------------
    @property
    def processed_ticks(self) -> int:
        return self._processed

    def stats(self) -> dict[str, Any]:
        return {
            "processed_ticks": self._processed,
            "deadline_misses": self.deadline_misses,
            "tasks": [{"name": t.name, "period_ticks": t.period_ticks,
                       "deadline_ticks": t.deadline_ticks, "priority": t.priority,
                       "releases": t.releases, "misses": t.misses,
                       "max_runtime_us": t.max_runtime_ns / 1e3} for t in self.tasks],
        }

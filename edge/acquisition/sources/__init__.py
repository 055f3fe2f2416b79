"""Device sources and the poller that drives them as an asyncio service.

A `Source` knows how to talk to one device (Modbus TCP/RTU, a serial line); a
`DevicePoller` owns its lifecycle: connect, poll on a period, count every failure by
kind, close and reconnect with exponential backoff. Pollers only ever await I/O, so a
dead device delays nothing but itself; the sampler's LetTask reads what they gathered.
A `DeviceKind` is what a board's `kind:` names: its fields, how they parse into a link,
how a channel names its value on the device, and how its Source is made (the table is
edge/acquisition/devices.py; each entry sits beside its source).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from edge.acquisition.channel import ChannelConfig, PollReadings, Reading
from edge.acquisition.model import Backoff, DeviceConfig
from edge.errors import DeviceCommError

if TYPE_CHECKING:
    from edge.config import Node

log = logging.getLogger(__name__)

ERROR_KINDS = ("connect", "timeout", "disconnect", "corrupt", "exception", "decode", "other")


class Source(ABC):
    """One device: open a session, read all its channels once, close."""

    def __init__(self, name: str, channels: list[ChannelConfig]) -> None:
        self.name = name
        self.channels = channels

    @abstractmethod
    async def open(self) -> None:
        """Open the session; raises DeviceCommError (kind 'connect')."""

    @abstractmethod
    async def close(self) -> None:
        """Close the session; never raises."""

    @abstractmethod
    async def read(self) -> tuple[Mapping[str, float], dict[str, str] | None]:
        """Read every channel once: (raw values by channel, error kind by channel for
        channels the device refused, or None); the values may decode when first looked at.
        Raises DeviceCommError when the exchange failed as a whole (timeout,
        disconnect, corrupt frame): the poller then reconnects."""


@dataclass
class SourceContext:
    """What a source factory may use: the cycle, and what the devices of one section
    share (`shared`, e.g. one connection per RS-485 line, keyed by its factory)."""

    period_ns: int
    tick_fn: Callable[[], int]
    shared: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceKind:
    """One `kind:` of device a board may name, as every reader needs it.

    `fields`/`channel_fields` are the fields a device/channel of this kind takes beyond
    the common ones; `parse_device` reads them into `dev.link` (errors name file, line and
    field); `parse_channel` returns a channel's `source` spec; `make_source` builds the
    Source. `inline`: sampled by the sampler at every tick of its period (no I/O, no
    poller). `serial_port` names the serial port a device holds; `share_line` (None: the
    port is its own) checks a second device of this kind joining the same port."""

    name: str
    title: str                                   # for messages: "Modbus RTU"
    fields: tuple[str, ...]
    channel_fields: tuple[str, ...]
    parse_device: Callable[[Node, DeviceConfig], None]
    parse_channel: Callable[[Node, DeviceConfig], dict]
    make_source: Callable[[DeviceConfig, list[ChannelConfig], SourceContext], Source]
    min_period_ms: float = 0.0
    inline: bool = False
    serial_port: Callable[[DeviceConfig], str | None] | None = None
    share_line: Callable[[Node, DeviceConfig, DeviceConfig], None] | None = None


DEFAULT_TIMEOUT_MS = 500.0     # a request's timeout when the board does not set one


def timeout_s(node: Node) -> float:
    """The per-request `timeout_ms` every I/O kind takes, in s."""
    return node.get("timeout_ms", float, DEFAULT_TIMEOUT_MS, min=1.0) / 1e3


class PollSink(Protocol):
    """Where a poller puts what one poll gave: a raw value per channel (None: failed,
    `error` says how), and the channels the device refused with the kind of refusal.
    `values` may decode lazily: most polls are never read, only the newest per release."""

    def __call__(self, values: Mapping[str, float | None], tick: int, t_ns: int,
                 error: str | None = None, refused: Mapping[str, str] | None = None
                 ) -> None: ...


def collecting_sink(into: dict[str, list[Reading]]) -> PollSink:
    """A sink that keeps every reading, per channel (for rigs and tests)."""
    def sink(values: Mapping[str, float | None], tick: int, t_ns: int,
             error: str | None = None, refused: Mapping[str, str] | None = None) -> None:
        record = (tick, t_ns, values, error, refused)
        for name in [*values, *(refused or ())]:
            into.setdefault(name, []).append(PollReadings([record], name)[0])
    return sink


class DevicePoller:
    """Polls one Source every period_s (0: back to back) and hands readings to `sink`.

    tick_fn gives the cycle tick to stamp readings with; counters hold every error kind.
    """

    def __init__(self, source: Source, period_s: float, sink: PollSink,
                 tick_fn: Callable[[], int], backoff: Backoff | None = None) -> None:
        self.source = source
        self.period_s = period_s
        self.sink = sink
        self.tick_fn = tick_fn
        self.backoff = backoff or Backoff()
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self._none_values = dict.fromkeys(c.name for c in source.channels)   # all failed
        self.polls = 0              # successful exchanges
        self.attempts = 0           # every poll or connect attempt
        self.connects = 0
        self.overruns = 0           # polls that started later than their period
        self.connected = False
        self.last_error: str | None = None
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._stopping = False

    # -- the loop ------------------------------------------------------------------
    def _emit_error(self, kind: str) -> None:
        """A failed exchange: every channel of the device gets a failed reading."""
        self.errors[kind] += 1
        self.sink(self._none_values, self.tick_fn(), time.time_ns(), kind)

    def _notify(self) -> None:
        """Wake wait_attempts() callers whose count is reached."""
        still = []
        for target, fut in self._waiters:
            if self.attempts >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((target, fut))
        self._waiters = still

    async def _connect(self) -> bool:
        try:
            await self.source.open()
        except DeviceCommError as exc:
            self.last_error = str(exc)
            self._emit_error(exc.kind)
            return False
        except Exception as exc:          # a driver bug must not end the poller silently
            log.exception("device '%s': unexpected error while connecting", self.source.name)
            self.last_error = f"other: {exc!r}"
            self._emit_error("other")
            return False
        self.connected = True
        self.connects += 1
        return True

    async def run(self) -> None:
        """Poll until stopped: connect, poll while the link holds, back off after a
        failure (connect or exchange), reconnect."""
        failures = 0
        try:
            while not self._stopping:
                if self.connected or await self._connect():
                    if await self._poll_while_connected():
                        failures = 0
                    if self._stopping:
                        break
                else:
                    self._count_attempt()
                await asyncio.sleep(self.backoff.delay(failures))
                failures += 1
        finally:
            self.connected = False
            await self.source.close()

    async def _poll_while_connected(self) -> bool:
        """The hot loop: one read and one sink call per poll, until an exchange fails (the
        link is then closed) or the poller stops; whether any poll succeeded."""
        read, sink, tick_fn, clock = self.source.read, self.sink, self.tick_fn, time.time_ns
        errors, period = self.errors, self.period_s
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        polled = False
        while not self._stopping:
            try:
                values, refused = await read()
            except Exception as exc:
                self._read_failed(exc)
                await self.source.close()
                self.connected = False
                self._count_attempt()
                return polled
            if refused:                                # the device refused these
                for kind in refused.values():
                    errors[kind] += 1
                sink(values, tick_fn(), clock(), None, refused)
            else:
                sink(values, tick_fn(), clock())
            polled = True
            self.polls += 1
            self._count_attempt()
            if period <= 0:            # back to back: the read itself awaited I/O
                if not self.polls & 63:
                    await asyncio.sleep(0)
                continue
            next_t += period
            now = loop.time()
            if next_t < now:
                self.overruns += 1
                next_t = now
            await asyncio.sleep(next_t - now)
        return polled

    def _count_attempt(self) -> None:
        self.attempts += 1
        if self._waiters:              # cheap when nobody waits: the hot path
            self._notify()

    def _read_failed(self, exc: Exception) -> None:
        if isinstance(exc, DeviceCommError):
            kind = exc.kind
            log.info("device '%s': %s; reconnecting", self.source.name, exc)
        else:                  # a driver bug must not end the poller
            kind = "other"
            log.exception("device '%s': unexpected error while reading", self.source.name)
        self.last_error = f"{kind}: {exc}"
        self._emit_error(kind)

    async def wait_attempts(self, n: int, timeout_s: float = 5.0) -> None:
        """Wait until `n` more poll/connect attempts have finished (for tests and rigs)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((self.attempts + n, fut))
        await asyncio.wait_for(fut, timeout_s)

    @contextlib.asynccontextmanager
    async def service(self) -> AsyncIterator[DevicePoller]:
        """Run the poller for the duration of the block (a Runtime service)."""
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"poll:{self.source.name}")
        try:
            yield self
        finally:
            # Python 3.11's wait_for can swallow a cancellation that races with a reply
            # (bpo-42130); the flag ends the loop at its next turn whatever happens.
            self._stopping = True
            while not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({self._task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def stats(self) -> dict:
        return {"device": self.source.name, "connected": self.connected, "polls": self.polls,
                "connects": self.connects, "overruns": self.overruns,
                "errors": dict(self.errors), "last_error": self.last_error}

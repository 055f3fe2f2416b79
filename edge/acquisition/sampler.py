"""The LET bridge between device pollers (asyncio services) and the bus.

Pollers gather readings stamped with the cycle tick at which they completed. At each
release r, the sampler's LetTask takes, per channel due at r, the readings stamped at or
before r (later ones wait for the next release: the task sees its inputs as of r), turns
them into a Sample and publishes it on `acq/<channel>`; threshold transitions go to
`events/acq/<rule>`, device status changes to `status/acq/<device>`. Simulated devices
are sampled inline at every tick of their period, so virtual time needs no services.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from edge.acquisition.channel import Channel, PollRecord, Quality, Sample
from edge.acquisition.devices import DEVICE_KINDS
from edge.acquisition.model import AcquisitionConfig
from edge.acquisition.sources import DevicePoller, PollSink, Source, SourceContext
from edge.acquisition.thresholds import ThresholdMonitor
from edge.acquisition.usage import UsageStore, UsageTracker
from edge.errors import ConfigError
from edge.rt.executor import LetTask, TaskContext

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "acq/"
STATUS_PREFIX = "status/acq/"
PENDING_MAX = 4096          # polls held per device between releases


def _ticks(ms: float, period_ns: int) -> int:
    return max(1, int(round(ms * 1e6 / period_ns)))


class PollQueue:
    """The polls of one device that some of its channels have not taken yet: one record
    per poll, shared by the channels (a poll costs one append, whatever the channels).
    Each channel remembers how many polls it took; bounded: when a release falls behind,
    the oldest polls go first and count as dropped for the channels that had not seen them."""

    __slots__ = ("records", "appended", "taken", "dropped", "_last_taken")

    def __init__(self, channels: list[str], bound: int = PENDING_MAX) -> None:
        self.records: deque[PollRecord] = deque(maxlen=bound)
        self.appended = 0                          # polls ever queued
        self.taken = dict.fromkeys(channels, 0)    # per channel: polls taken (a count)
        self.dropped = dict.fromkeys(channels, 0)  # per channel: polls lost to the bound
        # the last span taken (first count, end count, records): the channels of a device
        # usually take the same span at a release, and share one list of it
        self._last_taken: tuple[int, int, list[PollRecord]] = (0, 0, [])

    def take(self, channel: str, tick: int) -> list[PollRecord]:
        """The channel's polls stamped at or before `tick`, oldest first (ticks rise)."""
        records = self.records
        first = self.appended - len(records)       # the count of records[0]
        start = self.taken[channel]
        if start < first:
            self.dropped[channel] += first - start
            start = first
        if records and records[-1][0] <= tick:     # the usual case: all of it is due
            end = len(records)
        else:
            end = start - first
            while end < len(records) and records[end][0] <= tick:
                end += 1
        self.taken[channel] = first + end
        last_start, last_end, last = self._last_taken
        if (last_start, last_end) == (start, first + end):
            return last
        if start == first and end == len(records):
            span = list(records)
        else:
            span = list(itertools.islice(records, start - first, end))
        self._last_taken = (start, first + end, span)
        return span

    def trim(self) -> None:
        """Forget the polls every channel has taken."""
        first = self.appended - len(self.records)
        done = min(self.taken.values()) - first
        self._last_taken = (0, 0, [])
        if done >= len(self.records):
            self.records.clear()
        else:
            for _ in range(done):
                self.records.popleft()

    def lost(self, channel: str) -> int:
        """Polls the channel never saw (dropped, or about to be when it next takes)."""
        first = self.appended - len(self.records)
        return self.dropped[channel] + max(0, first - self.taken[channel])


class Sampler:
    """Owns the sources, pollers, channels, rules, usage and sealing of one section."""

    def __init__(self, cfg: AcquisitionConfig, period_ns: int, tick_fn: Callable[[], int],
                 clock_ns: Callable[[], int] = time.time_ns, virtual_time: bool = False) -> None:
        self.cfg = cfg
        self.period_ns = period_ns
        self.tick_fn = tick_fn
        self.clock_ns = clock_ns
        self.virtual_time = virtual_time
        self.devices = {d.name: d for d in cfg.devices}
        by_device: dict[str, list] = {d.name: [] for d in cfg.devices}
        for ch in cfg.channels:
            by_device[ch.device].append(ch)
        self.sources: dict[str, Source] = {}
        context = SourceContext(period_ns, tick_fn)    # sources of one line share it
        # devices sampled inline (DeviceKind.inline: simulated): (source with
        # sample(tick) -> raw values or None, period in ticks, sink)
        self.inline: dict[str, tuple[Any, int, PollSink]] = {}
        self.pollers: dict[str, DevicePoller] = {}
        # polls gathered per device between releases (nothing is decoded or copied per poll)
        self.queues = {d.name: PollQueue([c.name for c in by_device[d.name]])
                       for d in cfg.devices}
        for dev in cfg.devices:
            kind = DEVICE_KINDS.get(dev.kind)
            if kind is None:
                raise ConfigError(f"device '{dev.name}': unknown kind {dev.kind!r}")
            src = self.sources[dev.name] = kind.make_source(dev, by_device[dev.name], context)
            if kind.inline:
                self.inline[dev.name] = (src, _ticks(dev.period_ms, period_ns),
                                            self.sink_for(dev.name))
            else:
                self.pollers[dev.name] = DevicePoller(src, dev.period_ms / 1e3,
                                                      self.sink_for(dev.name), tick_fn,
                                                      dev.backoff)
        self.channels: dict[str, Channel] = {}
        self.channel_ticks: dict[str, int] = {}
        for ch in cfg.channels:
            dev = self.devices[ch.device]
            rate = 1e3 / dev.period_ms if dev.period_ms > 0 else 1e9 / period_ns
            # stale: three polls (or publications) missed, plus one request timeout
            timeout_ms = getattr(dev.link, "timeout_s", 0.0) * 1e3
            default_stale = 3 * max(dev.period_ms, ch.period_ms) + timeout_ms
            self.channels[ch.name] = Channel(ch, rate, period_ns, default_stale)
            self.channel_ticks[ch.name] = _ticks(ch.period_ms, period_ns)
        self._release_order = [(c.name, self.channels[c.name], self.channel_ticks[c.name],
                                self.queues[c.device]) for c in cfg.channels]
        self.monitors = [ThresholdMonitor(r) for r in cfg.thresholds]
        self.sealer = None
        if cfg.crypto:                     # cryptography is loaded only when a key is used
            from edge.acquisition.crypto import Sealer

            self.sealer = Sealer.from_key_file(cfg.crypto.algorithm, cfg.crypto.key_file,
                                               cfg.crypto.key_id)
        self.usage = UsageTracker(UsageStore(cfg.usage.file)) if cfg.usage else None
        self._usage_running: bool = cfg.usage is not None and cfg.usage.running_channel is None
        self._last_usage_flush = 0
        self._status_seen: dict[str, tuple] = {}
        self.published = 0
        self.events = 0
        self.task = self._make_task()

    # -- construction --------------------------------------------------------------
    def _make_task(self) -> LetTask:
        t = self.cfg.task
        ticks = list(self.channel_ticks.values()) + [p for _, p, _ in self.inline.values()]
        period = _ticks(t.period_ms, self.period_ns) if t.period_ms else \
            (math.gcd(*ticks) if ticks else 1)
        deadline = _ticks(t.deadline_ms, self.period_ns) if t.deadline_ms else period
        return LetTask("acquisition", self.release, period_ticks=period,
                       deadline_ticks=min(deadline, period), priority=t.priority)

    # -- inputs --------------------------------------------------------------------
    def sink_for(self, device: str) -> PollSink:
        """Where the poller of `device` puts what each poll gave (called on the event
        loop, never blocks): one record in the device's queue."""
        queue = self.queues[device]
        append = queue.records.append

        def sink(values: Mapping[str, float | None], tick: int, t_ns: int,
                 error: str | None = None, refused: Mapping[str, str] | None = None) -> None:
            append((tick, t_ns, values, error, refused))
            queue.appended += 1
        return sink

    def _sample_inline(self, tick: int) -> None:
        """Inline (simulated) devices: every tick of their period in (last release, tick]."""
        first = tick - self.task.period_ticks + 1 if self.task.releases > 1 else 0
        for src, every, sink in self.inline.values():
            for k in range(first + (-first) % every, tick + 1, every):
                values = src.sample(k)
                t_ns = (k * self.period_ns if self.virtual_time
                        else self.clock_ns() - (tick - k) * self.period_ns)
                if values is None:
                    sink(dict.fromkeys(c.name for c in src.channels), k, t_ns, "timeout")
                else:
                    sink(values, k, t_ns)

    @property
    def dropped_readings(self) -> int:
        """Polls a channel never saw: its device's queue was full (PENDING_MAX) between
        releases."""
        return sum(self.queues[c.device].lost(c.name) for c in self.cfg.channels)

    # -- the LetTask -----------------------------------------------------------------
    def release(self, ctx: TaskContext) -> None:
        tick = ctx.tick
        if self.inline:
            self._sample_inline(tick)
        samples: dict[str, Sample] = {}
        for name, ch, every, queue in self._release_order:
            if tick % every:
                continue
            sample = ch.ingest_polls(queue.take(name, tick), tick)
            if sample is None:
                continue
            samples[name] = sample
            topic = CHANNEL_PREFIX + name
            data = sample.to_data()
            if ch.cfg.sensitive:
                if self.sealer is None:
                    raise ConfigError(f"channel '{name}' is sensitive but no crypto key is "
                                      "configured")
                data = self.sealer.seal(topic, sample.tick, data)
            ctx.publish(topic, data)
            self.published += 1
        for queue in self.queues.values():
            queue.trim()
        for mon in self.monitors:
            s = samples.get(mon.rule.channel)
            if s is not None and (ev := mon.evaluate(s)) is not None:
                if self.channels[mon.rule.channel].cfg.sensitive:
                    # the event carries the value: it leaves the device sealed as well
                    ev = self.sealer.seal(mon.rule.topic, s.tick, ev)
                ctx.publish(mon.rule.topic, ev)
                self.events += 1
        self._publish_status(ctx)
        self._count_usage(samples, tick)

    @staticmethod
    def status_topic(device: str) -> str:
        """The bus topic of a polled device's status (published when it changes)."""
        return STATUS_PREFIX + device

    def _publish_status(self, ctx: TaskContext) -> None:
        for name, p in self.pollers.items():
            key = (p.connected, sum(p.errors.values()))     # counts only grow
            if self._status_seen.get(name) != key:
                self._status_seen[name] = key
                ctx.publish(self.status_topic(name), p.stats())

    def _count_usage(self, samples: dict[str, Sample], tick: int) -> None:
        if self.usage is None:
            return
        u = self.cfg.usage
        if u.running_channel is not None and u.running_channel in samples:
            s = samples[u.running_channel]
            if s.quality == Quality.GOOD:
                self._usage_running = s.value > u.running_above
        if self._usage_running:
            self.usage.add_running(self.task.period_ticks * self.period_ns * 1e-9)
        every = _ticks(u.save_every_s * 1e3, self.period_ns)
        if self.virtual_time and tick - self._last_usage_flush >= every:
            self.usage.flush()            # virtual time: no I/O services, save inline
            self._last_usage_flush = tick

    # -- services (real time) ----------------------------------------------------------
    @contextlib.asynccontextmanager
    async def service(self) -> AsyncIterator[Sampler]:
        """Run every device poller, and save usage counters off the loop."""
        async with contextlib.AsyncExitStack() as stack:
            for p in self.pollers.values():
                await stack.enter_async_context(p.service())
            saver = asyncio.create_task(self._save_usage()) if self.usage else None
            try:
                yield self
            finally:
                if saver:
                    saver.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await saver
                if self.usage:
                    await asyncio.to_thread(self.usage.flush)

    def stopped(self) -> None:
        """The run ended cleanly: save the usage counters, so the interval since the last
        periodic save is not lost (virtual time saves only every save_every_s otherwise).
        Raises StorageError when they cannot be written."""
        if self.usage:
            self.usage.flush()

    async def _save_usage(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.usage.save_every_s)
            await asyncio.to_thread(self.usage.flush)

    def stats(self) -> dict[str, Any]:
        return {
            "published": self.published, "events": self.events,
            "dropped_readings": self.dropped_readings,
            "devices": {n: p.stats() for n, p in self.pollers.items()},
            "channels": {n: dict(c.counts) for n, c in self.channels.items()},
            "thresholds": {m.rule.name: {"active": m.active, "raised": m.raised}
                           for m in self.monitors},
            "usage": self.usage.counters.to_data() if self.usage else None,
            "sealed": self.sealer.sealed if self.sealer else 0,
        }

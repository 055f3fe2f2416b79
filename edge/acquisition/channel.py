"""Channels: calibration, unit, valid range, streaming filter, decimation, deadband, quality.

A device poller produces raw `Reading`s; at each release of the sampler a `Channel`
turns the readings gathered since the last release into at most one `Sample` to publish.
Filters (edge/acquisition/filters.py) carry their state from one chunk to the next, so
filtering a stream chunk by chunk gives exactly what filtering it in one piece gives.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

from edge.acquisition.filters import FilterSpec, make_filter


class Quality(IntEnum):
    """How far a published value can be trusted."""

    GOOD = 0
    OUT_OF_RANGE = 1      # the sensor answered, with a value outside its valid range
    STALE = 2             # no fresh reading within stale_ms
    COMM_ERROR = 3        # the device did not answer, or answered garbage
    INVALID = 4           # the device answered with NaN or an infinity: never a value


GOOD, OUT_OF_RANGE, STALE, COMM_ERROR, INVALID = Quality
# an enum member's .name is a Python-level property: releases look names up here
QUALITY_NAMES = {q: q.name for q in Quality}
# the largest finite float: valid ranges are clamped to it, so one comparison chain
# refuses NaN (every comparison is False) and both infinities on every path
MAXF = sys.float_info.max


def not_finite_reason(v: float) -> str:
    """Why a non-finite engineering value is INVALID: "NaN", "+inf" or "-inf"."""
    return "NaN" if v != v else ("+inf" if v > 0 else "-inf")

@dataclass
class ChannelConfig:
    """One measured quantity. Units: `unit` is what scale/offset produce (e.g. A, degC)."""

    name: str
    device: str
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    valid_min: float = -math.inf
    valid_max: float = math.inf
    deadband: float = 0.0
    period_ms: float = 100.0          # publication period
    stale_ms: float | None = None     # default: see Channel
    filter: FilterSpec | None = None
    decimate: int = 1
    sensitive: bool = False
    source: dict[str, Any] = field(default_factory=dict)   # where the device finds it
    line: int | None = None


class Reading(NamedTuple):
    """One raw acquisition: `raw` is a number (int or float, as the device encodes it), or
    None when the device failed (`error` says how).
    A tuple, not a dataclass: pollers make one per value, thousands a second."""

    raw: float | None
    tick: int
    t_ns: int
    error: str | None = None


# One poll as queued for the channels of its device: (tick, t_ns, values, error, refused).
PollRecord = tuple[int, int, Mapping[str, "float | None"], "str | None",
                   "Mapping[str, str] | None"]


class PollReadings(Sequence[Reading]):
    """One channel's readings out of its device's poll records, built when looked at:
    a channel without a filter or decimation looks only at the newest few."""

    __slots__ = ("records", "channel")

    def __init__(self, records: Sequence[PollRecord], channel: str) -> None:
        self.records, self.channel = records, channel

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self.records)))]
        return self._reading(self.records[i])

    def __iter__(self) -> Iterator[Reading]:
        return map(self._reading, self.records)

    def __reversed__(self) -> Iterator[Reading]:       # a release walks back from the newest
        return map(self._reading, reversed(self.records))

    def _reading(self, record: PollRecord) -> Reading:
        tick, t_ns, values, error, refused = record
        raw = values.get(self.channel)
        if raw is not None:
            return Reading(raw, tick, t_ns, None)
        if refused and self.channel in refused:
            return Reading(None, tick, t_ns, refused[self.channel])
        return Reading(None, tick, t_ns, error or "other")


class Sample(NamedTuple):
    """A published value: engineering units, quality, and when it was acquired.
    `reason` says why an INVALID sample has no value ("NaN", "+inf", "-inf")."""

    channel: str
    value: float | None
    quality: Quality
    tick: int
    t_ns: int
    unit: str
    reason: str | None = None

    def to_data(self) -> dict[str, Any]:
        data = {"value": self.value, "quality": QUALITY_NAMES[self.quality], "unit": self.unit,
                "tick": self.tick, "t_ns": self.t_ns}
        if self.reason is not None:
            data["reason"] = self.reason
        return data


class Channel:
    """Turns readings into samples: calibrate, range-check, filter, decimate, deadband."""

    def __init__(self, cfg: ChannelConfig, sample_rate_hz: float, period_ns: int,
                 default_stale_ms: float | None = None) -> None:
        """default_stale_ms applies when cfg.stale_ms is None (else: 3 sample periods)."""
        self.cfg = cfg
        self.filter = make_filter(cfg.filter, sample_rate_hz)
        stale_ms = cfg.stale_ms if cfg.stale_ms is not None else (
            default_stale_ms if default_stale_ms is not None else 3000.0 / sample_rate_hz)
        self.stale_ticks = max(1, int(math.ceil(stale_ms * 1e6 / period_ns)))
        self._every_reading = self.filter is not None or cfg.decimate > 1
        # the valid range clamped to finite floats: `lo <= v <= hi` is False for NaN and
        # for both infinities whatever `valid` says (a board without one included)
        self._lo, self._hi = max(cfg.valid_min, -MAXF), min(cfg.valid_max, MAXF)
        self._decim_phase = 0            # filtered samples since the last kept one
        self._last_published: Sample | None = None
        self._last_good_tick: int | None = None
        self._last_value: float | None = None
        self._last_t_ns = 0
        self._first_tick: int | None = None
        self.counts = {q.name: 0 for q in Quality}

    def ingest(self, readings: Sequence[Reading], tick: int) -> Sample | None:
        """The sample to publish at release `tick` from the readings since the last
        release, or None when there is nothing new (or the deadband holds it back)."""
        candidate = self._candidate(readings, tick)
        return None if candidate is None else self._publishable(candidate)

    def ingest_polls(self, records: Sequence[PollRecord], tick: int) -> Sample | None:
        """ingest() of this channel's readings in its device's poll records (the sampler's
        path). Without filter or decimation, when the newest poll holds a value in range,
        that value is the sample whatever came before (the walk back would stop there):
        taken straight, the common case of every release."""
        if records and not self._every_reading and self._first_tick is not None:
            cfg = self.cfg
            r_tick, t_ns, values, _, _ = records[-1]
            raw = values.get(cfg.name)
            if raw is not None:
                v = float(raw * cfg.scale + cfg.offset)
                if self._lo <= v <= self._hi:            # False for NaN and infinities
                    self._last_good_tick, self._last_t_ns, self._last_value = r_tick, t_ns, v
                    return self._publishable(Sample(cfg.name, v, GOOD, r_tick, t_ns, cfg.unit))
        return self.ingest(PollReadings(records, self.cfg.name), tick)

    def _publishable(self, candidate: Sample) -> Sample | None:
        """The candidate, unless it repeats bad news or the deadband holds it back."""
        last = self._last_published
        quality = candidate.quality
        if last is not None and quality == last.quality:
            if quality == STALE or quality == COMM_ERROR or quality == INVALID:
                return None              # bad news once per transition, not every release
            deadband = self.cfg.deadband
            if deadband > 0 and abs(candidate.value - last.value) <= deadband:
                return None
        self._last_published = candidate
        self.counts[QUALITY_NAMES[quality]] += 1
        return candidate

    def _candidate(self, readings: list[Reading], tick: int) -> Sample | None:
        cfg = self.cfg
        if self._first_tick is None:
            self._first_tick = tick        # start-up grace: stale only after stale_ms
        if self._every_reading:
            latest_event, any_good = self._latest_event_filtered(readings)
        else:
            latest_event, any_good = self._latest_event_unfiltered(readings)
        if latest_event is not None:
            return latest_event
        if any_good:                       # fresh, but held back by decimation
            return None
        if readings:                       # only failures since the last release
            return self._sample(self._last_value, COMM_ERROR, readings[-1])
        last = self._last_published
        if last is not None and last.quality == COMM_ERROR:
            return None                    # a failing device: COMM_ERROR says more than STALE
        since = self._last_good_tick if self._last_good_tick is not None else self._first_tick
        if tick - since > self.stale_ticks:
            # the last value, stamped with when it was acquired (never: this release, 0 ns)
            return Sample(cfg.name, self._last_value, STALE,
                          self._last_good_tick if self._last_good_tick is not None else tick,
                          self._last_t_ns, cfg.unit)
        return None

    def _sample(self, value: float | None, quality: Quality, r: Reading) -> Sample:
        return Sample(self.cfg.name, value, quality, r.tick, r.t_ns, self.cfg.unit)

    def _refused(self, v: float, r: Reading) -> Sample:
        """The event of a reading outside the finite valid range: OUT_OF_RANGE with its
        value, or INVALID without one (NaN and infinities are never a value)."""
        if math.isfinite(v):
            return Sample(self.cfg.name, v, OUT_OF_RANGE, r.tick, r.t_ns, self.cfg.unit)
        return Sample(self.cfg.name, None, INVALID, r.tick, r.t_ns, self.cfg.unit,
                      not_finite_reason(v))

    def _latest_event_unfiltered(self, readings: list[Reading]) -> tuple[Sample | None, bool]:
        """No filter, no decimation: every in-range reading is kept, so only the last good
        reading (and, if it is out of range, the last in-range one before it) matters.
        Walks back from the end: usually one reading per release, however many came."""
        cfg = self.cfg
        scale, offset, lo, hi = cfg.scale, cfg.offset, self._lo, self._hi
        event = None
        for r in reversed(readings):
            if r.raw is None:
                continue
            v = float(r.raw * scale + offset)
            if lo <= v <= hi:              # NaN and infinities are out of range
                self._last_good_tick, self._last_t_ns, self._last_value = r.tick, r.t_ns, v
                return event or self._sample(v, GOOD, r), True
            if event is None:
                event = self._refused(v, r)
        return event, event is not None

    def _latest_event_filtered(self, readings: list[Reading]) -> tuple[Sample | None, bool]:
        """Every in-range reading through the filter (state carried), then decimation;
        the later of the last kept value and the last out-of-range reading is the event.
        Plain Python over the few readings of one release; numpy only for the filter."""
        cfg = self.cfg
        scale, offset, lo, hi = cfg.scale, cfg.offset, self._lo, self._hi
        good = [r for r in readings if r.raw is not None]
        if not good:
            return None, False
        event: Sample | None = None
        kept_at = -1                       # position in `good` of the kept reading
        eng = [float(r.raw * scale + offset) for r in good]
        # NaN and infinities are out of range: they never reach the filter's state
        idx = [i for i, v in enumerate(eng) if lo <= v <= hi]
        if idx:
            x = [eng[i] for i in idx]
            y = self.filter.process(np.array(x)) if self.filter else x
            # keep every `decimate`-th filtered sample, phase carried across chunks:
            # sample i is kept when (phase + i + 1) % decimate == 0
            n, d = len(y), cfg.decimate
            first_kept = (-(self._decim_phase + 1)) % d
            self._decim_phase = (self._decim_phase + n) % d
            self._last_good_tick = good[idx[-1]].tick
            self._last_t_ns = good[idx[-1]].t_ns
            if first_kept < n:
                last_kept = n - 1 - (n - 1 - first_kept) % d
                kept_at = idx[last_kept]
                self._last_value = float(y[last_kept])
                event = self._sample(self._last_value, GOOD, good[kept_at])
        if len(idx) < len(eng):            # some out of range: the later event wins
            last_bad = max(i for i, v in enumerate(eng) if not lo <= v <= hi)
            if last_bad > kept_at:
                event = self._refused(eng[last_bad], good[last_bad])
        return event, True

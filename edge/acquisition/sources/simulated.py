"""Simulated sources: deterministic signals of the tick, for simulated boards and tests.

A simulated value is a function of (channel, tick) alone, noise included (seeded per
tick), so a run replays bit for bit in virtual or real time. The sampler reads simulated
devices inline at each release; `read()` exists so a DevicePoller can drive one too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.random  # noqa: F401  (loaded now, not in the first release)

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import DeviceKind, Source, SourceContext
from edge.errors import ConfigError, DeviceCommError

if TYPE_CHECKING:
    from edge.acquisition.model import DeviceConfig
    from edge.config import Node


def _square(spec: dict[str, Any], t_s: float) -> float:
    amp, period = spec.get("amplitude", 0.0), spec.get("period_s", 1.0)
    return amp if (t_s % period) < period / 2 else -amp


# signal shape -> its value at t_s (s) beside the mean; `noise` is added to any shape
SHAPES: dict[str, Callable[[dict[str, Any], float], float]] = {
    "constant": lambda spec, t_s: 0.0,
    "sine": lambda spec, t_s: spec.get("amplitude", 0.0) * math.sin(
        2 * math.pi * t_s / spec.get("period_s", 1.0)),
    "ramp": lambda spec, t_s: spec.get("slope", 1.0) * t_s,
    "square": _square,
    "noise": lambda spec, t_s: 0.0,
}
SIGNALS = tuple(SHAPES)


def signal_value(spec: dict[str, Any], t_s: float, tick: int) -> float:
    """The raw value of a simulated signal at time t_s (tick seeds the noise).

    spec: signal (one of SIGNALS), offset, amplitude, period_s, slope (per s),
    noise (standard deviation), seed."""
    kind = spec.get("signal", "constant")
    shape = SHAPES.get(kind)
    if shape is None:
        raise ConfigError(f"unknown simulated signal {kind!r} "
                          f"(expected one of: {', '.join(SIGNALS)})")
    v = spec.get("offset", 0.0) + shape(spec, t_s)
    sigma = spec.get("noise", 0.0)
    if sigma:
        v += sigma * float(np.random.default_rng([spec.get("seed", 0), tick]).standard_normal())
    return v


class SimulatedSource(Source):
    """A device that is a set of signals; it may be told to fail over a time window."""

    def __init__(self, name: str, channels: list[ChannelConfig], period_ns: int,
                 tick_fn: Callable[[], int] | None = None,
                 dropout_s: tuple[float, float] | None = None) -> None:
        super().__init__(name, channels)
        self.period_ns = period_ns
        self.tick_fn = tick_fn
        self.dropout_s = dropout_s

    def failing_at(self, tick: int) -> bool:
        if self.dropout_s is None:
            return False
        t = tick * self.period_ns * 1e-9
        return self.dropout_s[0] <= t < self.dropout_s[1]

    def sample(self, tick: int) -> dict[str, float] | None:
        """Raw values at `tick`; None while the device is simulating a dropout."""
        if self.failing_at(tick):
            return None
        t_s = tick * self.period_ns * 1e-9
        return {c.name: signal_value(c.source, t_s, tick) for c in self.channels}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def read(self) -> tuple[dict[str, float], dict[str, str]]:
        tick = self.tick_fn() if self.tick_fn else 0
        values = self.sample(tick)
        if values is None:
            raise DeviceCommError(self.name, "timeout", "simulated dropout")
        return values, {}


# -- the `simulated` kind -------------------------------------------------------------------
def _parse_device(node: Node, dev: DeviceConfig) -> None:
    window = node.floats("dropout_s", 2, None)
    if window is not None and not window[0] < window[1]:
        raise node.error("dropout_s is [start, end] with start < end", "dropout_s")
    dev.dropout_s = tuple(window) if window else None


def _parse_channel(node: Node, dev: DeviceConfig) -> dict:
    sig = node.child("signal", None)
    if sig is None:
        return {"signal": "constant", "offset": 0.0}
    sig.only("shape", "mean", "amplitude", "period_s", "slope", "noise", "seed")
    return {"signal": sig.get("shape", str, "constant", choices=SIGNALS),
            "offset": sig.get("mean", float, 0.0), "amplitude": sig.get("amplitude", float, 0.0),
            "period_s": sig.get("period_s", float, 1.0, min=1e-6),
            "slope": sig.get("slope", float, 0.0), "noise": sig.get("noise", float, 0.0, min=0.0),
            "seed": sig.get("seed", int, 0, min=0)}


def _make_source(dev: DeviceConfig, channels: list[ChannelConfig],
                 ctx: SourceContext) -> SimulatedSource:
    return SimulatedSource(dev.name, channels, ctx.period_ns, ctx.tick_fn, dev.dropout_s)


SIMULATED = DeviceKind(
    "simulated", "simulated", fields=("dropout_s",), channel_fields=("signal",),
    parse_device=_parse_device, parse_channel=_parse_channel, make_source=_make_source,
    min_period_ms=1e-3, inline=True)

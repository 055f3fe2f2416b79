"""Simulated sources: deterministic signals of the tick, for simulated boards and tests.

A simulated value is a function of (channel, tick) alone, noise included (seeded per
tick), so a run replays bit for bit in virtual or real time. The sampler reads simulated
devices inline at each release; `read()` exists so a DevicePoller can drive one too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.random  # noqa: F401  (loaded now, not in the first release)

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import Source
from edge.errors import ConfigError, DeviceCommError

SIGNALS = ("constant", "sine", "ramp", "square", "noise")


def signal_value(spec: dict[str, Any], t_s: float, tick: int) -> float:
    """The raw value of a simulated signal at time t_s (tick seeds the noise).

    spec: signal (one of SIGNALS), offset, amplitude, period_s, slope (per s),
    noise (standard deviation), seed."""
    kind = spec.get("signal", "constant")
    offset, amp = spec.get("offset", 0.0), spec.get("amplitude", 0.0)
    period = spec.get("period_s", 1.0)
    if kind == "constant":
        v = offset
    elif kind == "sine":
        v = offset + amp * math.sin(2 * math.pi * t_s / period)
    elif kind == "ramp":
        v = offset + spec.get("slope", 1.0) * t_s
    elif kind == "square":
        v = offset + (amp if (t_s % period) < period / 2 else -amp)
    elif kind == "noise":
        v = offset
    else:
        raise ConfigError(f"unknown simulated signal {kind!r} "
                          f"(expected one of: {', '.join(SIGNALS)})")
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

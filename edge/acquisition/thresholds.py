"""Threshold rules with hysteresis on channel values; transitions become bus events.

A rule is raised when a GOOD value goes above `above` (or below `below`) and cleared only
once the value is back inside by at least `hysteresis`, so a value dithering around a
limit raises one event, not a storm. Samples without a trustworthy value (stale,
communication error, out of range) leave the rule as it is: their own quality says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edge.acquisition.channel import Quality, Sample
from edge.errors import ConfigError

EVENT_PREFIX = "events/acq/"
SEVERITIES = ("info", "warning", "alarm")


@dataclass
class ThresholdRule:
    name: str
    channel: str
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.above is None and self.below is None:
            raise ConfigError(f"threshold '{self.name}' needs 'above', 'below' or both")
        if self.hysteresis < 0 or not math.isfinite(self.hysteresis):
            raise ConfigError(f"threshold '{self.name}': hysteresis must be >= 0")
        if self.above is not None and self.below is not None and \
                self.below + self.hysteresis >= self.above - self.hysteresis:
            raise ConfigError(f"threshold '{self.name}': the clear band "
                              f"[below + hysteresis, above - hysteresis] is empty")

    @property
    def topic(self) -> str:
        return EVENT_PREFIX + self.name


class ThresholdMonitor:
    """The state of one rule; `evaluate` returns the event to publish, or None."""

    def __init__(self, rule: ThresholdRule) -> None:
        self.rule = rule
        self.active = False
        self.raised = 0
        self.cleared = 0

    def _beyond(self, v: float) -> float | None:
        r = self.rule
        if r.above is not None and v > r.above:
            return r.above
        if r.below is not None and v < r.below:
            return r.below
        return None

    def _back_inside(self, v: float) -> bool:
        r = self.rule
        return ((r.above is None or v <= r.above - r.hysteresis)
                and (r.below is None or v >= r.below + r.hysteresis))

    def evaluate(self, sample: Sample) -> dict[str, Any] | None:
        if sample.quality != Quality.GOOD or sample.value is None:
            return None
        v = sample.value
        if not self.active:
            limit = self._beyond(v)
            if limit is None:
                return None
            self.active, state = True, "raised"
            self.raised += 1
        else:
            if not self._back_inside(v):
                return None
            self.active, state, limit = False, "cleared", None
            self.cleared += 1
        r = self.rule
        return {"rule": r.name, "channel": r.channel, "state": state, "severity": r.severity,
                "value": v, "limit": limit, "above": r.above, "below": r.below,
                "hysteresis": r.hysteresis, "tick": sample.tick, "t_ns": sample.t_ns}

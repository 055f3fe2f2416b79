"""Sensor faults in virtual time: a channel of the board's acquisition section reads
wrong — stuck, offset, noisy, silent, out of range, drifting. The fault bends the raw
value where the channel takes it (the poll records a simulated device hands the
sampler), so the product's own quality logic, filters and threshold rules judge it;
docs/acquisition.md says what each should give. On a REAL input signal of the logic
program (stuck, offset, noise, drift), it bends the value the program's scan reads.

Every fault acts on the ticks a value is acquired at, from its start tick to its end
tick: the sampler reads a simulated device at each tick of its period, at its release.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edge.config import Board, Node
from hil.plant_faults import PlantFault

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime


class SensorFault(PlantFault, abc.ABC):
    """A fault of one acquisition channel (`channel`) or one REAL input signal of the
    board's logic program (`signal`). `bend(eng, k)` gives the value read at tick k
    instead of `eng` (None: no reading at all that tick)."""

    fields: ClassVar[tuple[str, ...]] = ("channel", "signal")
    on_logic: ClassVar[bool] = True       # False: an acquisition channel only

    def parse(self, node: Node, board: Board) -> None:
        m = node.mapping()
        if ("channel" in m) == ("signal" in m):
            raise node.error(f"a {self.kind} fault names a `channel` (acquisition) or a "
                             "`signal` (a logic input), one of them", "kind")
        self.channel = self.logic_signal = None
        if "signal" in m:
            self._parse_logic(node, board)
        else:
            self._parse_channel(node, board)
        self.parse_more(node)
        self.start_tick: int | None = None
        self.end_tick: int | None = None

    def _parse_channel(self, node: Node, board: Board) -> None:
        acq = board.sections.get("acquisition")
        name = node.get("channel", str)
        channels = {c.name: c for c in acq.channels} if acq is not None else {}
        if name not in channels:
            raise node.error(f"no acquisition channel '{name}' on the board (channels: "
                             f"{', '.join(channels) or 'none'})", "channel")
        self.channel = channels[name]
        device = next(d for d in acq.devices if d.name == self.channel.device)
        if device.kind != "simulated":
            raise node.error(f"a {self.kind} fault in virtual time acts on a channel of a "
                             f"simulated device; '{name}' is on a {device.kind} device "
                             "(faults on the wire are the rigs')", "channel")

    def _parse_logic(self, node: Node, board: Board) -> None:
        logic = board.sections.get("logic")
        name = node.get("signal", str)
        reals = [s.name for s in logic.signals if s.type == "REAL"] if logic else []
        if name not in reals:
            raise node.error(f"no REAL input signal '{name}' in the board's logic section "
                             f"(REAL signals: {', '.join(reals) or 'none'})", "signal")
        if not self.on_logic:
            raise node.error(f"a {self.kind} fault acts on an acquisition channel (its "
                             "quality turns STALE): a logic signal has no device", "signal")
        self.logic_signal = name

    def parse_more(self, node: Node) -> None:
        """The kind's own parameters."""

    def bind(self, runtime: Runtime) -> None:
        if self.logic_signal is not None:
            logic = runtime.lookup("logic")
            logic.program.scan = self._wrap_scan(logic.program.scan)
            return
        sampler = runtime.lookup("acquisition")
        device = self.channel.device
        src, every, sink = sampler.inline[device]
        sampler.inline[device] = (src, every, self._wrap(sink))

    def start(self, runtime: Runtime, tick: int) -> None:
        self.start_tick, self.end_tick = tick, None

    def end(self, runtime: Runtime, tick: int) -> None:
        self.end_tick = tick

    def on(self, k: int) -> bool:
        return self.start_tick is not None and self.start_tick <= k and \
            (self.end_tick is None or k < self.end_tick)

    def _wrap(self, sink: Callable) -> Callable:
        name, scale, offset = self.channel.name, self.channel.scale, self.channel.offset

        def faulty(values: Mapping[str, Any], tick: int, t_ns: int, error: str | None = None,
                   refused: Mapping[str, str] | None = None) -> None:
            raw = values.get(name)
            if raw is not None:
                if not self.on(tick):
                    self.seen(raw * scale + offset)
                else:
                    eng = self.bend(raw * scale + offset, tick)
                    if eng is None:
                        return            # no poll at all: the device said nothing
                    values = {**values, name: (eng - offset) / scale}
            sink(values, tick, t_ns, error, refused)
        return faulty

    def _wrap_scan(self, scan: Callable) -> Callable:
        """The program's scan, reading the bent value of the signal (the logic section
        sets every input afresh before each scan)."""
        name = self.logic_signal

        def faulty(inputs: dict[str, Any], tick: int):
            if not self.on(tick):
                self.seen(float(inputs[name]))
            else:
                inputs[name] = float(self.bend(float(inputs[name]), tick))
            return scan(inputs, tick)
        return faulty

    def seen(self, eng: float) -> None:
        """A value read while the fault is off."""

    @abc.abstractmethod
    def bend(self, eng: float, k: int) -> float | None:
        """The value the channel reads at tick k instead of eng (None: no reading)."""

    def describe(self) -> str:
        where = f"channel {self.channel.name}" if self.channel is not None else \
            f"logic signal {self.logic_signal}"
        return f"{self.kind} on {where}"


class Stuck(SensorFault):
    """The value freezes: `value`, or the last one read before the fault started."""

    kind = "stuck"
    fields = ("channel", "signal", "value")

    def parse_more(self, node: Node) -> None:
        self.value = node.get("value", float, None)
        self.last: float | None = None

    def seen(self, eng: float) -> None:
        self.last = eng

    def bend(self, eng: float, k: int) -> float | None:
        if self.value is not None:
            return self.value
        if self.last is None:            # nothing read before: it sticks at the first value
            self.last = eng
        return self.last


class Offset(SensorFault):
    """A calibration error: `by` (the channel's unit) added to every value."""

    kind = "offset"
    fields = ("channel", "signal", "by")

    def parse_more(self, node: Node) -> None:
        self.by = node.get("by", float)

    def bend(self, eng: float, k: int) -> float | None:
        return eng + self.by


class Noise(SensorFault):
    """Gaussian noise of standard deviation `sigma` (the channel's unit) on every value,
    drawn from numpy.random.default_rng([seed, tick]): the same every run."""

    kind = "noise"
    fields = ("channel", "signal", "sigma", "seed")

    def parse_more(self, node: Node) -> None:
        self.sigma = node.get("sigma", float, min=0.0)
        self.seed = node.get("seed", int, 0, min=0)

    def bend(self, eng: float, k: int) -> float | None:
        return eng + self.sigma * float(np.random.default_rng([self.seed, k]).standard_normal())


class Dropout(SensorFault):
    """The channel's device says nothing (no reading, no error): a sensor gone quiet. Its
    channels keep their last value, and turn STALE once stale_ms passes without one."""

    kind = "dropout"
    on_logic = False

    def bend(self, eng: float, k: int) -> float | None:
        return None


class OutOfRange(SensorFault):
    """The sensor answers `value`, a value outside the channel's valid range."""

    kind = "out_of_range"
    fields = ("channel", "signal", "value")
    on_logic = False

    def parse_more(self, node: Node) -> None:
        self.value = node.get("value", float)
        lo, hi = self.channel.valid_min, self.channel.valid_max
        if lo <= self.value <= hi:
            raise node.error(f"{self.value:g} is inside the valid range [{lo:g}, {hi:g}] "
                             f"of channel '{self.channel.name}'", "value")

    def bend(self, eng: float, k: int) -> float | None:
        return self.value


class Drift(SensorFault):
    """The value drifts off at `rate_per_s` (the channel's unit per second) from the
    fault's start: eng + rate_per_s * (k - start) * period."""

    kind = "drift"
    fields = ("channel", "signal", "rate_per_s")

    def parse_more(self, node: Node) -> None:
        self.rate_per_s = node.get("rate_per_s", float)

    def bind(self, runtime: Runtime) -> None:
        super().bind(runtime)
        self.period_s = runtime.period_ns * 1e-9

    def bend(self, eng: float, k: int) -> float | None:
        return eng + self.rate_per_s * (k - self.start_tick) * self.period_s


SENSOR_FAULTS: tuple[type[SensorFault], ...] = (Stuck, Offset, Noise, Dropout, OutOfRange,
                                                Drift)


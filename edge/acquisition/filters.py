"""Channel filters: one table of filter kinds, each with its fields, parser and builder.

Every filter is causal and streams: its state is carried from one chunk to the next, so
filtering a stream chunk by chunk gives exactly what filtering it in one piece gives, and
the first sample primes the state at steady state (no start-up transient). The board
parser and `make_filter` read only `FILTERS`, so a new filter is one entry.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.config import Node

# scipy.signal takes about a second to import: it is loaded when a linear filter is
# configured, not by every board that acquires something.


@dataclass(frozen=True)
class FilterSpec:
    kind: str
    cutoff_hz: float = 0.0      # lowpass
    order: int = 2              # lowpass (Butterworth)
    window: int = 1             # median, moving_average (samples)


class StreamFilter(abc.ABC):
    """A causal filter over chunks; the first sample primes the state at steady state."""

    @abc.abstractmethod
    def process(self, x: np.ndarray) -> np.ndarray:
        """The filtered chunk, same length as x, state carried to the next call."""


class LinearFilter(StreamFilter):
    """lfilter(b, a) with its delay-line state `zi` carried across chunks."""

    def __init__(self, b: np.ndarray, a: np.ndarray) -> None:
        from scipy import signal  # imported now, not at the first release

        self.b, self.a = np.asarray(b, float), np.asarray(a, float)
        self.zi: np.ndarray | None = None
        if max(len(self.a), len(self.b)) > 1:         # first calls load code: do them now
            signal.lfilter(self.b, self.a, np.zeros(2), zi=signal.lfilter_zi(self.b, self.a))

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if not len(x):
            return x
        if max(len(self.a), len(self.b)) == 1:          # a pure gain has no state
            return x * (self.b[0] / self.a[0])
        from scipy import signal

        if self.zi is None:        # start as if the input had always been x[0]
            self.zi = signal.lfilter_zi(self.b, self.a) * x[0]
        y, self.zi = signal.lfilter(self.b, self.a, x, zi=self.zi)
        return y


class MedianFilter(StreamFilter):
    """Causal running median of the last `window` samples; keeps window-1 samples of state.

    scipy.signal.medfilt is centred and zero-padded, so it cannot stream; this is the
    causal equivalent, over the same sliding windows."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.history: np.ndarray | None = None
        np.median(np.zeros((1, window)), axis=1)     # first call loads code: not in a release

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if not len(x):
            return x
        if self.history is None:
            self.history = np.full(self.window - 1, x[0])
        joined = np.concatenate([self.history, x])
        y = np.median(sliding_window_view(joined, self.window), axis=1)
        self.history = joined[len(joined) - (self.window - 1):]
        return y


@dataclass(frozen=True)
class FilterKind:
    """One `filter: {kind: ...}`: the fields it takes beside `kind`, how they parse into a
    FilterSpec (errors name file, line and field; the device's sample rate in Hz is given
    for checks that need it), and how a fresh filter is built (ConfigError if impossible)."""

    name: str
    fields: tuple[str, ...]
    parse: Callable[[Node, float], FilterSpec]
    build: Callable[[FilterSpec, float], StreamFilter]


def _butterworth(spec: FilterSpec, sample_rate_hz: float) -> LinearFilter:
    from scipy import signal

    nyquist = sample_rate_hz / 2
    if not 0 < spec.cutoff_hz < nyquist:
        raise ConfigError(f"low-pass cutoff {spec.cutoff_hz} Hz must be between 0 and "
                          f"the Nyquist frequency {nyquist:g} Hz of the sample rate")
    b, a = signal.butter(spec.order, spec.cutoff_hz, fs=sample_rate_hz)
    return LinearFilter(b, a)


def _parse_lowpass(node: Node, sample_rate_hz: float) -> FilterSpec:
    spec = FilterSpec("lowpass", cutoff_hz=node.get("cutoff_hz", float, min=1e-9),
                      order=node.get("order", int, 2, min=1, max=8))
    try:
        _butterworth(spec, sample_rate_hz)
    except ConfigError as exc:
        raise node.error(exc.message, "cutoff_hz") from None
    return spec


def _windowed(kind: str) -> Callable[[Node, float], FilterSpec]:
    def parse(node: Node, sample_rate_hz: float) -> FilterSpec:
        return FilterSpec(kind, window=node.get("window", int, min=1, max=1000))
    return parse


FILTERS: dict[str, FilterKind] = {k.name: k for k in (
    FilterKind("lowpass", ("cutoff_hz", "order"), _parse_lowpass, _butterworth),
    FilterKind("median", ("window",), _windowed("median"),
               lambda spec, rate: MedianFilter(spec.window)),
    FilterKind("moving_average", ("window",), _windowed("moving_average"),
               lambda spec, rate: LinearFilter(np.full(spec.window, 1.0 / spec.window),
                                               np.array([1.0]))),
)}


def make_filter(spec: FilterSpec | None, sample_rate_hz: float) -> StreamFilter | None:
    """A fresh filter for `spec` at `sample_rate_hz`; raises ConfigError when impossible."""
    if spec is None:
        return None
    kind = FILTERS.get(spec.kind)
    if kind is None:
        raise ConfigError(f"unknown filter {spec.kind!r} "
                          f"(expected one of: {', '.join(FILTERS)})")
    return kind.build(spec, sample_rate_hz)


def parse_filter(node: Node | None, sample_rate_hz: float) -> FilterSpec | None:
    """A channel's `filter:` mapping (None when it has none)."""
    if node is None:
        return None
    kind = FILTERS[node.get("kind", str, choices=tuple(FILTERS))]
    node.only("kind", *kind.fields)
    return kind.parse(node, sample_rate_hz)

"""IEC 61131-3 function blocks with state across scans: timers, edges, latches, counters.

Time is logical: `step(now_ns)` receives tick * period, so a timer in virtual time and in
real time gives the same outputs for the same ticks. Inputs keep their last value when a
call does not pass them, as in Structured Text.
"""

from __future__ import annotations

import abc

from edge.logic.lexer import INT_MAX, INT_MIN
from edge.logic.nodes import BOOL, INT, REAL, TIME


class FunctionBlock(abc.ABC):
    INPUTS: dict[str, str] = {}
    OUTPUTS: dict[str, str] = {}
    __slots__ = ()

    @abc.abstractmethod
    def step(self, now_ns: int) -> None:
        """Advance one scan at logical time now_ns (outputs from inputs and state)."""


class TON(FunctionBlock):
    """On-delay: Q rises when IN has been TRUE for PT; ET counts up to PT."""

    INPUTS = {"IN": BOOL, "PT": TIME}
    OUTPUTS = {"Q": BOOL, "ET": TIME}
    __slots__ = ("IN", "PT", "Q", "ET", "_start")

    def __init__(self) -> None:
        self.IN, self.PT, self.Q, self.ET, self._start = False, 0, False, 0, None

    def step(self, now_ns: int) -> None:
        if not self.IN:
            self.Q, self.ET, self._start = False, 0, None
            return
        if self._start is None:
            self._start = now_ns
        et = now_ns - self._start
        pt = max(self.PT, 0)
        self.ET = et if et < pt else pt
        self.Q = et >= pt


class TOF(FunctionBlock):
    """Off-delay: Q follows IN up and falls PT after IN fell."""

    INPUTS = {"IN": BOOL, "PT": TIME}
    OUTPUTS = {"Q": BOOL, "ET": TIME}
    __slots__ = ("IN", "PT", "Q", "ET", "_start")

    def __init__(self) -> None:
        self.IN, self.PT, self.Q, self.ET, self._start = False, 0, False, 0, None

    def step(self, now_ns: int) -> None:
        if self.IN:
            self.Q, self.ET, self._start = True, 0, None
            return
        if not self.Q:
            return
        if self._start is None:
            self._start = now_ns
        et = now_ns - self._start
        pt = max(self.PT, 0)
        if et >= pt:
            self.Q, self.ET, self._start = False, pt, None
        else:
            self.ET = et


class TP(FunctionBlock):
    """Pulse: a rising IN starts a pulse of exactly PT that IN cannot cut short or extend."""

    INPUTS = {"IN": BOOL, "PT": TIME}
    OUTPUTS = {"Q": BOOL, "ET": TIME}
    __slots__ = ("IN", "PT", "Q", "ET", "_start", "_prev")

    def __init__(self) -> None:
        self.IN, self.PT, self.Q, self.ET, self._start, self._prev = False, 0, False, 0, None, False

    def step(self, now_ns: int) -> None:
        rising = self.IN and not self._prev
        self._prev = self.IN
        if self._start is None and rising:
            self._start = now_ns
        if self._start is not None:
            et = now_ns - self._start
            pt = max(self.PT, 0)
            if et >= pt:
                self.Q, self.ET, self._start = False, pt, None
            else:
                self.Q, self.ET = True, et
        elif not self.IN:
            self.ET = 0


class _EdgeTrigger(FunctionBlock):
    """R_TRIG and F_TRIG: CLK in, Q out, the previous CLK remembered."""

    INPUTS = {"CLK": BOOL}
    OUTPUTS = {"Q": BOOL}
    __slots__ = ("CLK", "Q", "_m")

    def __init__(self) -> None:
        self.CLK, self.Q, self._m = False, False, False


class R_TRIG(_EdgeTrigger):   # noqa: N801 (IEC name)
    """Q is TRUE for one scan when CLK goes from FALSE to TRUE."""

    __slots__ = ()

    def step(self, now_ns: int) -> None:
        self.Q = self.CLK and not self._m
        self._m = self.CLK


class F_TRIG(_EdgeTrigger):   # noqa: N801 (IEC name)
    """Q is TRUE for one scan when CLK goes from TRUE to FALSE (not at the first scan)."""

    __slots__ = ()

    def step(self, now_ns: int) -> None:
        self.Q = self._m and not self.CLK
        self._m = self.CLK


class SR(FunctionBlock):
    """Set-dominant latch: Q1 := S1 OR (NOT R AND Q1)."""

    INPUTS = {"S1": BOOL, "R": BOOL}
    OUTPUTS = {"Q1": BOOL}
    __slots__ = ("S1", "R", "Q1")

    def __init__(self) -> None:
        self.S1, self.R, self.Q1 = False, False, False

    def step(self, now_ns: int) -> None:
        self.Q1 = bool(self.S1 or (not self.R and self.Q1))


class RS(FunctionBlock):
    """Reset-dominant latch: Q1 := NOT R1 AND (S OR Q1)."""

    INPUTS = {"S": BOOL, "R1": BOOL}
    OUTPUTS = {"Q1": BOOL}
    __slots__ = ("S", "R1", "Q1")

    def __init__(self) -> None:
        self.S, self.R1, self.Q1 = False, False, False

    def step(self, now_ns: int) -> None:
        self.Q1 = bool(not self.R1 and (self.S or self.Q1))


class CTU(FunctionBlock):
    """Up counter: CV counts rising edges of CU (saturating), R resets, Q := CV >= PV."""

    INPUTS = {"CU": BOOL, "R": BOOL, "PV": INT}
    OUTPUTS = {"Q": BOOL, "CV": INT}
    __slots__ = ("CU", "R", "PV", "Q", "CV", "_m")

    def __init__(self) -> None:
        self.CU, self.R, self.PV, self.Q, self.CV, self._m = False, False, 0, False, 0, False

    def step(self, now_ns: int) -> None:
        if self.R:
            self.CV = 0
        elif self.CU and not self._m and self.CV < INT_MAX:
            self.CV += 1
        self._m = self.CU
        self.Q = self.CV >= self.PV


class CTD(FunctionBlock):
    """Down counter: LD loads PV, rising edges of CD count down (saturating), Q := CV <= 0."""

    INPUTS = {"CD": BOOL, "LD": BOOL, "PV": INT}
    OUTPUTS = {"Q": BOOL, "CV": INT}
    __slots__ = ("CD", "LD", "PV", "Q", "CV", "_m")

    def __init__(self) -> None:
        self.CD, self.LD, self.PV, self.Q, self.CV, self._m = False, False, 0, False, 0, False

    def step(self, now_ns: int) -> None:
        if self.LD:
            self.CV = self.PV
        elif self.CD and not self._m and self.CV > INT_MIN:
            self.CV -= 1
        self._m = self.CD
        self.Q = self.CV <= 0


class HYST(FunctionBlock):
    """Hysteresis switch: Q rises when IN > HIGH and falls when IN < LOW."""

    INPUTS = {"IN": REAL, "HIGH": REAL, "LOW": REAL}
    OUTPUTS = {"Q": BOOL}
    __slots__ = ("IN", "HIGH", "LOW", "Q")

    def __init__(self) -> None:
        self.IN, self.HIGH, self.LOW, self.Q = 0.0, 0.0, 0.0, False

    def step(self, now_ns: int) -> None:
        if self.IN > self.HIGH:
            self.Q = True
        elif self.IN < self.LOW:
            self.Q = False


BLOCK_TYPES: dict[str, type[FunctionBlock]] = {
    cls.__name__: cls for cls in (TON, TOF, TP, R_TRIG, F_TRIG, SR, RS, CTU, CTD, HYST)}

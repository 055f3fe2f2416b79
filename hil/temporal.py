"""Assertions of a HIL scenario: an expression of the logic language over the recorded
signals (edge.logic.compile_expression), judged over the whole trace by one of the
temporal forms of FORMS:

    always: E                      E holds at every tick
    never: E                       E holds at no tick
    eventually: E, within: D       E holds at some tick of the first D ticks (0 .. D)
    after: V, within: D, expect: E each time V becomes true (tick v), E holds at some
                                   tick of v .. v + D
    at_end: E                      E holds at the last tick

A failure names the tick, the values there of every signal the expression reads, and the
expression. A window still open when the run ends is a failure: the run was too short to
show what was asserted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.logic import compile_expression
from edge.logic.parser import children, parse_expression

_DTYPES = {"BOOL": np.bool_, "INT": np.int64, "REAL": np.float64}


@dataclass
class Trace:
    """The signals of one run, one row per tick: `ticks` and a column per signal, in the
    order they were declared. `types` gives each column's logic type."""

    ticks: np.ndarray
    columns: dict[str, np.ndarray]
    types: dict[str, str]
    period_ns: int = 1_000_000

    @classmethod
    def of(cls, values: Mapping[str, Sequence[Any]], types: Mapping[str, str], *,
           first_tick: int = 0, period_ns: int = 1_000_000) -> Trace:
        """A trace from plain lists (tests, hand-built traces)."""
        columns = {n: np.asarray(v, dtype=_DTYPES[types[n]]) for n, v in values.items()}
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        return cls(np.arange(first_tick, first_tick + n, dtype=np.int64), columns,
                   dict(types), period_ns)

    def __len__(self) -> int:
        return len(self.ticks)

    def rows(self) -> list[dict[str, Any]]:
        """One mapping name -> Python value per tick (what a compiled expression reads)."""
        names = list(self.columns)
        lists = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*lists, strict=True)] \
            if names else [{} for _ in range(len(self))]

    def sha256(self) -> str:
        """SHA-256 of the trace: each column's name, dtype and bytes, ticks first."""
        h = hashlib.sha256()
        for name, col in (("tick", self.ticks), *self.columns.items()):
            arr = np.ascontiguousarray(col)
            h.update(f"{name}:{arr.dtype.str}:{len(arr)}\n".encode())
            h.update(arr.tobytes())
        return h.hexdigest()


@dataclass
class Verdict:
    passed: bool
    assertion: str            # the assertion as written ("within 10 ticks after hit: E")
    where: str                # file:line
    tick: int | None = None   # where it failed
    detail: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        if self.passed:
            return f"{self.where}: {self.assertion}: passed"
        shown = ", ".join(f"{k} = {_show(v)}" for k, v in self.values.items())
        return (f"{self.where}: {self.assertion}: failed at tick {self.tick}"
                f"{' (' + self.detail + ')' if self.detail else ''}"
                f"{': ' + shown if shown else ''}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def names_in(text: str) -> list[str]:
    """The names an expression reads, in order of first appearance (as written)."""
    from edge.logic.nodes import Name

    found: list[str] = []
    stack = [parse_expression(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, Name) and node.name.upper() not in (f.upper() for f in found):
            found.append(node.name)
        stack.extend(reversed([c for c in children(node) if c is not None]))
    return found


class Condition:
    """A compiled expression over the signals, of one of the types `want` (an assertion's:
    BOOL); `holds(rows)` gives one bool per row. Raises LogicError (line and column
    inside `text`) for a bad expression or one of another type."""

    def __init__(self, text: str, types: Mapping[str, str], *,
                 want: tuple[str, ...] = ("BOOL",)) -> None:
        self.text = " ".join(text.split())
        self.fn = compile_expression(text, types)
        if self.fn.result_type not in want:
            from edge.errors import LogicError

            raise LogicError(f"expected a {' or '.join(want)} expression here; this one is "
                             f"{self.fn.result_type}", 1, 1)
        lookup = {n.upper(): n for n in types}
        self.names = [lookup[n.upper()] for n in names_in(text) if n.upper() in lookup]

    def holds(self, rows: list[dict[str, Any]]) -> np.ndarray:
        fn = self.fn
        return np.fromiter((bool(fn(r)) for r in rows), dtype=bool, count=len(rows))

    def values(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {n: row[n] for n in self.names}


@dataclass
class Assertion:
    """One assertion of a scenario: `form` a key of FORMS; `expect` what must hold,
    `event` (form `after`) what starts each window, `within_ticks` the window's length."""

    form: str
    expect: Condition
    where: str
    within_ticks: int | None = None
    event: Condition | None = None

    def text(self) -> str:
        return FORMS[self.form][1](self)

    def judge(self, trace: Trace, rows: list[dict[str, Any]] | None = None) -> Verdict:
        """The verdict on `trace` (rows: trace.rows(), when already made)."""
        rows = trace.rows() if rows is None else rows
        if not rows:
            return Verdict(False, self.text(), self.where, None, "the trace is empty")
        failed = FORMS[self.form][0](self, self.expect.holds(rows), rows, trace.ticks)
        if failed is None:
            return Verdict(True, self.text(), self.where)
        index, detail = failed
        return Verdict(False, self.text(), self.where, int(trace.ticks[index]), detail,
                       self.expect.values(rows[index]))


@dataclass
class Measured:
    """A measure's value on one run (None when it could not be taken, `why` says why)."""

    name: str
    value: float | None
    from_tick: int | None = None
    to_tick: int | None = None
    why: str = ""

    def line(self) -> str:
        if self.value is None:
            return f"measure {self.name}: not taken ({self.why})"
        return f"measure {self.name} = {self.value:.6g} (tick {self.from_tick} -> {self.to_tick})"


@dataclass
class Measure:
    """How much `change` (a REAL or INT expression) changed from the tick `start` first
    became TRUE to the first tick at or after it where `until` holds (None: the last
    tick): a stop distance, a settling time in ticks of a counter. Reported, not judged."""

    name: str
    change: Condition
    start: Condition
    until: Condition | None = None

    def take(self, trace: Trace, rows: list[dict[str, Any]]) -> Measured:
        if not rows:
            return Measured(self.name, None, why="the trace is empty")
        start = self.start.holds(rows)
        onsets = np.flatnonzero(start & ~np.concatenate(([False], start[:-1])))
        if not len(onsets):
            return Measured(self.name, None, why=f"`{self.start.text}` never became TRUE")
        i = int(onsets[0])
        j = len(rows) - 1
        if self.until is not None:
            after = np.flatnonzero(self.until.holds(rows[i:]))
            if not len(after):
                return Measured(self.name, None, int(trace.ticks[i]), why=(
                    f"`{self.until.text}` did not hold after tick {int(trace.ticks[i])}"))
            j = i + int(after[0])
        value = float(self.change.fn(rows[j]) - self.change.fn(rows[i]))
        return Measured(self.name, value, int(trace.ticks[i]), int(trace.ticks[j]))


# Each form: judge(assertion, holds, rows, ticks) -> None when it passed, else (row index
# of the failure, detail); and how the assertion reads.
Judge = Callable[[Assertion, np.ndarray, list, np.ndarray], tuple[int, str] | None]


def _always(a: Assertion, holds: np.ndarray, rows: list, ticks: np.ndarray
            ) -> tuple[int, str] | None:
    bad = np.flatnonzero(~holds)
    return (int(bad[0]), "") if len(bad) else None


def _never(a: Assertion, holds: np.ndarray, rows: list, ticks: np.ndarray
           ) -> tuple[int, str] | None:
    bad = np.flatnonzero(holds)
    return (int(bad[0]), "") if len(bad) else None


def _window(holds: np.ndarray, first: int, d: int, why: str) -> tuple[int, str] | None:
    """E must hold at some row of first .. first + d."""
    last = first + d
    if holds[first:last + 1].any():
        return None
    if last >= len(holds):
        return len(holds) - 1, f"{why}; the run ended before the window closed"
    return last, why


def _eventually(a: Assertion, holds: np.ndarray, rows: list, ticks: np.ndarray
                ) -> tuple[int, str] | None:
    return _window(holds, 0, a.within_ticks, f"not once in the first {a.within_ticks} ticks")


def _after(a: Assertion, holds: np.ndarray, rows: list, ticks: np.ndarray
           ) -> tuple[int, str] | None:
    event = a.event.holds(rows)
    onsets = np.flatnonzero(event & ~np.concatenate(([False], event[:-1])))
    for v in onsets:
        failed = _window(holds, int(v), a.within_ticks,
                         f"not within {a.within_ticks} ticks of `{a.event.text}` at tick "
                         f"{int(ticks[v])}")
        if failed is not None:
            return failed
    return None


def _at_end(a: Assertion, holds: np.ndarray, rows: list, ticks: np.ndarray
            ) -> tuple[int, str] | None:
    return None if holds[-1] else (len(holds) - 1, "at the end of the run")


FORMS: dict[str, tuple[Judge, Callable[[Assertion], str]]] = {
    "always": (_always, lambda a: f"always {a.expect.text}"),
    "never": (_never, lambda a: f"never {a.expect.text}"),
    "eventually": (_eventually,
                   lambda a: f"eventually within {a.within_ticks} ticks: {a.expect.text}"),
    "after": (_after, lambda a: f"within {a.within_ticks} ticks after {a.event.text}: "
                                f"{a.expect.text}"),
    "at_end": (_at_end, lambda a: f"at end: {a.expect.text}"),
}

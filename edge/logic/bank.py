"""Rule banks: consecutive rules scanned together.

The program forms a bank only of rules where no condition reads what the actions of an
earlier rule of the bank may change, so all the conditions can be evaluated first (one
C-level `map` over closures, plus the numpy path of `vector.py` for large banks), the
edges found by comparing with the previous scan (C-level), and Python work done only
where a rule fires. Firing is in rule order, so a bank gives the same results as scanning
its rules one by one (property-tested).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import compress, repeat
from typing import Any

import numpy as np

from edge.logic.compiler import Fn
from edge.logic.vector import VectorConditions

_call, _ne = operator.call, operator.ne


class RuleBank:
    """conds[i] is rule i's condition closure (None where `vector` evaluates it);
    emits[i] = (events, stop categories) it adds to the scan result when it fires, or
    actions[i] the closure running its actions (assignments, calls) when it has any;
    durations[i] = FOR delay in ns for timed rules."""

    def __init__(self, conds: list[Fn | None], emits: list[tuple[tuple, tuple]],
                 durations: dict[int, int], now: list[int], result: Callable[[], Any],
                 vector: VectorConditions | None = None, covered: list[int] = (),
                 actions: list[Callable[[Any], None] | None] | None = None,
                 partial: dict[int, tuple[str, Fn]] | None = None) -> None:
        self.n = n = len(conds)
        self.emits = emits
        self.actions = actions or [None] * n
        self.durations = durations
        self.now = now
        self.result = result
        self.pending: dict[int, int] = {}       # timed rule -> ns its condition rose
        self.rest = [i for i in range(n) if i not in set(covered)]
        self.conds = tuple(conds[i] for i in self.rest)
        self.vector = vector
        self.prev: list[bool] | np.ndarray = [False] * n
        if vector is not None:
            self.prev = np.zeros(n, dtype=bool)
            self.cov_idx = np.array(covered, dtype=np.intp)
            self.rest_idx = np.array(self.rest, dtype=np.intp)
            self.timed = np.zeros(n, dtype=bool)
            self.timed[list(durations)] = True
            self.untimed = ~self.timed
            # rules whose vector part is only one operand of their AND (OR): the closure
            # of the other operands runs where the vector part is TRUE (FALSE)
            partial = partial or {}
            self.p_and = [(i, fn) for i, (op, fn) in sorted(partial.items()) if op == "AND"]
            self.p_or = [(i, fn) for i, (op, fn) in sorted(partial.items()) if op == "OR"]
            self.p_and_idx = np.array([i for i, _ in self.p_and], dtype=np.intp)
            self.p_or_idx = np.array([i for i, _ in self.p_or], dtype=np.intp)
            self.step = self._vector_step
        else:
            self.step = self._closure_step

    def _closure_step(self, m: Any) -> None:
        vals = list(map(_call, self.conds, repeat(m, self.n)))
        prev = self.prev
        fired: list[int] = []
        if vals != prev:
            for i in compress(range(self.n), map(_ne, vals, prev)):
                self._changed(i, vals[i], fired)
            self.prev = vals
        self._finish(fired, m)

    def _vector_step(self, m: Any) -> None:
        vals = np.empty(self.n, dtype=bool)
        vals[self.cov_idx] = self.vector(m)
        if self.p_and:
            p_and = self.p_and
            for j in np.flatnonzero(vals[self.p_and_idx]).tolist():
                i, fn = p_and[j]
                vals[i] = fn(m)
        if self.p_or:
            p_or = self.p_or
            for j in np.flatnonzero(~vals[self.p_or_idx]).tolist():
                i, fn = p_or[j]
                vals[i] = fn(m)
        if len(self.conds):
            vals[self.rest_idx] = list(map(_call, self.conds, repeat(m, len(self.conds))))
        prev = self.prev
        changed = vals != prev
        fired: list[int] = []
        if changed.any():
            # untimed rules fire on a rising edge: found without a Python loop
            fired = np.flatnonzero(vals & ~prev & self.untimed).tolist()
            if self.durations:
                for i in np.flatnonzero(changed & self.timed).tolist():
                    self._changed(i, bool(vals[i]), fired)
            self.prev = vals
        self._finish(fired, m)

    def _changed(self, i: int, value: bool, fired: list[int]) -> None:
        durations = self.durations
        if i in durations:
            if value:
                if durations[i] <= 0:
                    fired.append(i)
                else:
                    self.pending[i] = self.now[0]
            else:
                self.pending.pop(i, None)
        elif value:
            fired.append(i)

    def _finish(self, fired: list[int], m: Any) -> None:
        pending = self.pending
        if pending:
            t = self.now[0]
            for i in [i for i, since in pending.items() if t - since >= self.durations[i]]:
                del pending[i]
                fired.append(i)
        if not fired:
            return
        fired.sort()                      # edges and elapsed delays fire in rule order
        result = self.result()
        actions = self.actions
        for i in fired:
            if actions[i] is not None:        # assignments, calls: run in written order
                actions[i](m)
                continue
            events, stops = self.emits[i]
            if events:
                result.events.extend(events)
            if stops:
                result.stops.extend(stops)

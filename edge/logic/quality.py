"""Signal quality in the logic language: what GOOD(x), AGE(x) and STALE(x, d) read, and
what a non-GOOD value becomes (the `on_bad` policy of each signal).

A scan's inputs carry, beside each signal's value `m["x"]`, its quality `m["x.good"]`
(BOOL) and its age `m["x.age"]` (TIME, ns since the value was acquired). Neither key can
be a signal name (names are identifiers), so they never collide. A rule that requests a
STOP is *forced* while a signal it depends on under the `safe` policy is not GOOD: its
condition is rewritten at compile time to `NOT GOOD(x) OR ... OR <condition>`, so the
rule behaves exactly as if its condition were TRUE (edges, FOR delays, re-arming), and
never reads the held value of a dead sensor as a normal one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.errors import LogicError
from edge.logic.nodes import BOOL, TIME, Assign, Call, Expr, FbCall, Logic, Name, Rule, Stop, Unary

HOLD, SUBSTITUTE, SAFE = "hold", "substitute", "safe"
POLICIES = (HOLD, SUBSTITUTE, SAFE)
# the functions that read a signal's quality: name -> (arguments, result type); their
# type rule and code are entries of functions.FUNCTIONS
QUALITY_FUNCTIONS: dict[str, tuple[int, str]] = {"GOOD": (1, BOOL), "AGE": (1, TIME),
                                                 "STALE": (2, BOOL)}


def good_key(name: str) -> str:
    """The scan-input key of a signal's quality (TRUE when GOOD)."""
    return name + ".good"


def age_key(name: str) -> str:
    """The scan-input key of a signal's age in ns."""
    return name + ".age"


@dataclass(frozen=True)
class OnBad:
    """What a signal's value becomes while it is not GOOD: `hold` keeps the last GOOD
    value, `substitute` uses `value`, `safe` holds it and forces every STOP rule that
    depends on the signal."""

    policy: str
    value: Any = None


def names_read(exprs: Iterable[Expr]) -> set[str]:
    """Upper-case names the expressions read ("T1.Q" reads instance "T1")."""
    from edge.logic.parser import children

    out: set[str] = set()
    stack = list(exprs)
    while stack:
        e = stack.pop()
        if isinstance(e, Name):
            out.add(e.name.upper().split(".")[0])
        stack.extend(children(e))
    return out


def _reads(expr: Expr | None) -> set[str]:
    return names_read([expr] if expr is not None else [])


def quality_reads(body: list) -> set[str]:
    """Upper-case names of the signals whose quality GOOD / AGE / STALE read anywhere."""
    from edge.logic.parser import _item_exprs, children

    out: set[str] = set()
    stack = [e for item in body for e in _item_exprs(item)]
    while stack:
        e = stack.pop()
        if isinstance(e, Call) and e.func in QUALITY_FUNCTIONS and e.args and \
                isinstance(e.args[0], Name):
            out.add(e.args[0].name.upper())
        stack.extend(children(e))
    return out


def _writers(body: Iterable) -> dict[str, set[str]]:
    """Upper-case variable or instance name -> the names its assignments or calls read
    (anywhere in the program: in statements and in rule actions)."""
    feeds: dict[str, set[str]] = {}

    def visit(item) -> None:
        if isinstance(item, Assign):
            feeds.setdefault(item.target.upper(), set()).update(_reads(item.value))
        elif isinstance(item, FbCall):
            reads = feeds.setdefault(item.instance.upper(), set())
            for p in item.params:
                reads.update(_reads(p[1]))
        elif isinstance(item, Rule):
            for a in item.actions:
                visit(a)
    for item in body:
        visit(item)
    return feeds


def stop_rule_dependencies(body: list) -> dict[int, set[str]]:
    """Rule index -> upper-case names its condition depends on, through variables and
    function blocks (transitively), for every rule with a STOP action."""
    feeds = _writers(body)
    out: dict[int, set[str]] = {}
    for item in body:
        if not isinstance(item, Rule) or not any(isinstance(a, Stop) for a in item.actions):
            continue
        seen: set[str] = set()
        todo = list(_reads(item.condition))
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(feeds.get(name, ()))
        out[item.index] = seen
    return out


def effective_policies(body: list, signals: Mapping[str, str],
                       on_bad: Mapping[str, OnBad | None]) -> tuple[dict[str, OnBad],
                                                                     dict[int, list[str]]]:
    """(policy of every signal, rule index -> the `safe` signals that force it).
    A signal without a declared policy is `safe` when a STOP rule depends on it, else
    `hold`. Raises LogicError for a policy on an unknown signal."""
    by_upper = {n.upper(): n for n in signals}
    for name in on_bad:
        if name.upper() not in by_upper:
            raise LogicError(f"on_bad given for '{name}', which is not a signal")
    deps = stop_rule_dependencies(body)
    used_by_stop = set().union(*deps.values()) if deps else set()
    policies: dict[str, OnBad] = {}
    for upper, name in by_upper.items():
        declared = on_bad.get(name)
        policies[name] = declared if declared is not None else \
            OnBad(SAFE if upper in used_by_stop else HOLD)
    forced = {index: sorted(by_upper[n] for n in names
                            if n in by_upper and policies[by_upper[n]].policy == SAFE)
              for index, names in deps.items()}
    return policies, {i: s for i, s in forced.items() if s}


def force_safe(rule: Rule, signals: list[str]) -> None:
    """Rewrite the rule's condition to `NOT GOOD(s1) OR ... OR (condition)`."""
    cond = rule.condition
    guards: list[Expr] = []
    for s in signals:
        call = Call(cond.line, cond.column, "GOOD", [Name(cond.line, cond.column, s)])
        guards.append(Unary(cond.line, cond.column, "NOT", call))
    forced = Logic(cond.line, cond.column, "OR", guards + [cond])
    forced.depth = cond.depth + 3
    forced.type = BOOL
    rule.condition = forced

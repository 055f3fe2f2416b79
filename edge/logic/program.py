"""Programs: declarations, statements, function block calls and rules, scanned in order.

A scan runs every item in the order written: `x := ...;` assigns, `t(IN := ...);` steps a
function block, and `WHEN c [FOR d] THEN ... END_WHEN` fires its actions once when `c`
becomes TRUE (or once it has been TRUE for `d`), re-arming when `c` is FALSE. Actions
publish events, assign variables or outputs, call function blocks, or request a stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.errors import LogicError
from edge.logic.arith import widen
from edge.logic.bank import RuleBank
from edge.logic.blocks import BLOCK_TYPES, FunctionBlock
from edge.logic.checker import Checker, Symbol, signal_scope
from edge.logic.compiler import ExprCompiler, Faults, Fn
from edge.logic.nodes import (
    BOOL,
    INT,
    REAL,
    TIME,
    VALUE_TYPES,
    Assign,
    Event,
    Expr,
    FbCall,
    Rule,
    Stop,
)
from edge.logic.parser import parse_program
from edge.logic.quality import (
    OnBad,
    age_key,
    effective_policies,
    force_safe,
    good_key,
    quality_reads,
)
from edge.logic.quality import names_read as _reads
from edge.logic.vector import split_bank

_DEFAULTS = {BOOL: False, INT: 0, REAL: 0.0, TIME: 0}
FAULT_NAME = "MATH_FAULT"


@dataclass
class ScanResult:
    """What one scan asked for: events (rule index, name), stop categories, fault word."""

    tick: int
    events: list[tuple[int, str]] = field(default_factory=list)
    stops: list[int] = field(default_factory=list)
    faults: int = 0

    @property
    def stop_category(self) -> int | None:
        """The harshest stop requested (0 is harshest), or None."""
        return min(self.stops) if self.stops else None


class Program:
    """A compiled program; `scan(inputs, tick)` runs it once at logical time tick."""

    def __init__(self, text: str, signals: Mapping[str, str], *, period_ns: int = 1_000_000,
                 source: str | None = None, vectorize: bool = True,
                 banks: bool = True, on_bad: Mapping[str, OnBad | None] | None = None) -> None:
        """on_bad: signal name -> OnBad (None or absent: the default, `safe` for a signal
        a STOP rule depends on, else `hold`). None (the default) applies no policy: no
        rule is forced (the board's logic section always passes one)."""
        if not isinstance(period_ns, int) or period_ns <= 0:
            raise LogicError(f"period_ns must be a positive integer, got {period_ns!r}",
                             source=source)
        self.period_ns = period_ns
        self.vectorize = vectorize
        self.banks = banks
        self.source = source
        self.signals = dict(signals)
        self.faults = Faults()
        self.vars: dict[str, Any] = {}
        self.blocks: dict[str, FunctionBlock] = {}
        self.output_names: list[str] = []
        self.rule_count = 0
        self._now = [0]
        self._result = ScanResult(0)
        ast = parse_program(text, source)
        self.on_bad: dict[str, OnBad] = {}
        self.forced: dict[int, list[str]] = {}     # STOP rule index -> its safe signals
        if on_bad is not None:
            try:
                self.on_bad, self.forced = effective_policies(ast.body, self.signals, on_bad)
            except LogicError as exc:
                raise LogicError(exc.message, source=source) from None
            for item in ast.body:
                if isinstance(item, Rule) and item.index in self.forced:
                    force_safe(item, self.forced[item.index])
        # the quality inputs the program reads, which a mapping may leave out (then:
        # GOOD, age 0); a program reading none pays nothing per scan
        by_upper = {n.upper(): n for n in self.signals}
        read = quality_reads(ast.body)
        self._quality_defaults = {k: v for n in sorted(read) if n in by_upper
                                  for k, v in ((good_key(by_upper[n]), True),
                                               (age_key(by_upper[n]), 0))}
        self._quality_keys = frozenset(self._quality_defaults)
        self.scope = signal_scope(self.signals, source)
        if FAULT_NAME in {k.upper() for k in self.signals}:
            raise LogicError(f"'{FAULT_NAME}' is reserved", source=source)
        self.scope.add(Symbol(FAULT_NAME, "fault", BOOL))
        self.checker = Checker(self.scope)
        self.compiler = ExprCompiler(self.scope, self.faults, self._reader)
        for decl in ast.decls:
            self._declare(decl)
        self._steps: list[Callable[[Any], None]] = []
        bank: list[Rule] = []
        written: set[str] = set()        # what the actions of the bank's rules may change
        for item in ast.body:
            if isinstance(item, Rule) and self._bankable(item):
                reads = _reads([item.condition])
                if bank and (reads & written or (FAULT_NAME in reads and any(
                        not _emit_only(r) for r in bank))):
                    self._steps.append(self._bank(bank))     # a later condition would see
                    bank, written = [], set()                # an earlier rule's action
                bank.append(item)
                written |= _writes(item.actions)
                continue
            if bank:
                self._steps.append(self._bank(bank))
                bank, written = [], set()
            self._steps.append(self._item(item))
        if bank:
            self._steps.append(self._bank(bank))
        self.rule_lines = [item.line for item in ast.body if isinstance(item, Rule)]

    # -- declarations ----------------------------------------------------------------
    def _declare(self, decl) -> None:
        t = decl.type_name
        where = (decl.line, decl.column)
        if t in BLOCK_TYPES:
            if decl.output or decl.init is not None:
                raise LogicError(f"function block '{decl.name}' cannot be an output or have an "
                                 "initial value", *where, source=self.source)
            self.scope.add(Symbol(decl.name, "block", t), *where)
            block = BLOCK_TYPES[t]()
            self.blocks[decl.name] = block
            for out, out_type in block.OUTPUTS.items():
                self.scope.symbols[f"{decl.name.upper()}.{out}"] = Symbol(
                    f"{decl.name}.{out}", "fbout", out_type)
            return
        if t not in VALUE_TYPES:
            raise LogicError(f"unknown type '{decl.type_name}' (expected one of "
                             f"{', '.join(VALUE_TYPES + tuple(BLOCK_TYPES))})", *where,
                             source=self.source)
        value = _DEFAULTS[t]
        if decl.init is not None:
            it = self.checker.check(decl.init)
            self._assignable(it, t, decl.init, decl.name)
            form = widen(self.compiler, self.compiler.compile(decl.init), it, t)
            if form[0] != "c":
                raise LogicError(f"the initial value of '{decl.name}' must be a constant",
                                 decl.init.line, decl.init.column, source=self.source)
            value = form[1]
        self.scope.add(Symbol(decl.name, "output" if decl.output else "var", t, True), *where)
        self.vars[decl.name] = value
        if decl.output:
            self.output_names.append(decl.name)

    def _assignable(self, got: str, want: str, node: Expr, target: str) -> None:
        if got != want and not (got == INT and want == REAL):
            raise LogicError(f"cannot assign {got} to '{target}' of type {want}", node.line,
                             node.column, source=self.source)

    def _reader(self, sym: Symbol) -> Fn:
        if sym.kind in ("var", "output"):
            v, k = self.vars, sym.name
            return lambda m: v[k]
        if sym.kind == "fbout":
            inst_name, out = sym.name.split(".")
            block, attr = self.blocks[inst_name], out
            if attr == "Q":
                return lambda m: block.Q
            if attr == "Q1":
                return lambda m: block.Q1
            if attr == "ET":
                return lambda m: block.ET
            return lambda m: block.CV
        if sym.kind == "fault":
            f = self.faults
            return lambda m: f.flags != 0
        raise LogicError(f"'{sym.name}' is a function block; read one of its outputs "
                         f"(e.g. {sym.name}.Q)", source=self.source)

    def _expr(self, node: Expr, *types: str, what: str = "") -> tuple[Fn, str]:
        t = self.checker.expect(node, *types, what=what) if types else self.checker.check(node)
        return self.compiler.fn(self.compiler.compile(node)), t

    # -- items -----------------------------------------------------------------------
    def _item(self, item) -> Callable[[Any], None]:
        if isinstance(item, Assign):
            return self._assign(item)
        if isinstance(item, FbCall):
            return self._fb_call(item)
        return self._rule(item)

    def _assign(self, item: Assign) -> Callable[[Any], None]:
        sym = self.scope.symbols.get(item.target.upper())
        if sym is None:
            raise LogicError(f"unknown variable '{item.target}' (declare it in VAR or "
                             "VAR_OUTPUT)", item.line, item.column, source=self.source)
        if not sym.writable:
            what = "an input signal" if sym.kind == "input" else "not a variable"
            raise LogicError(f"'{item.target}' is {what} and cannot be assigned",
                             item.line, item.column, source=self.source)
        t = self.checker.check(item.value)
        self._assignable(t, sym.type, item.value, sym.name)
        fn = self.compiler.fn(widen(self.compiler, self.compiler.compile(item.value), t,
                                    sym.type))
        v, k = self.vars, sym.name

        def assign(m):
            v[k] = fn(m)
        return assign

    def _fb_call(self, item: FbCall) -> Callable[[Any], None]:
        sym = self.scope.symbols.get(item.instance.upper())
        if sym is None or sym.kind != "block":
            raise LogicError(f"'{item.instance}' is not a function block instance (declare it "
                             "in VAR, e.g. t1 : TON;)", item.line, item.column,
                             source=self.source)
        block = self.blocks[sym.name]
        setters = []
        seen = set()
        for name, value, line, col in item.params:
            if name not in block.INPUTS:
                raise LogicError(f"{sym.type} has no input '{name}' (inputs: "
                                 f"{', '.join(block.INPUTS)})", line, col, source=self.source)
            if name in seen:
                raise LogicError(f"input '{name}' is given twice", line, col,
                                 source=self.source)
            seen.add(name)
            want = block.INPUTS[name]
            t = self.checker.check(value)
            self._assignable(t, want, value, f"{sym.name}.{name}")
            setters.append((name, self.compiler.fn(widen(self.compiler,
                                                         self.compiler.compile(value), t, want))))
        now = self._now
        step = block.step
        if len(setters) == 1:
            (n0, f0), = setters

            def call1(m):
                setattr(block, n0, f0(m))
                step(now[0])
            return call1
        ts = tuple(setters)

        def call(m):
            for name, f in ts:
                setattr(block, name, f(m))
            step(now[0])
        return call

    def _rule(self, rule: Rule) -> Callable[[Any], None]:
        self.rule_count += 1
        cond, _ = self._expr(rule.condition, BOOL, what=" as the WHEN condition")
        actions = [self._action(a, rule.index) for a in rule.actions]
        fire = _sequence(actions)
        if rule.duration is None:
            latched = False

            def edge_rule(m):
                nonlocal latched
                if cond(m):
                    if not latched:
                        latched = True
                        fire(m)
                else:
                    latched = False
            return edge_rule
        dur, _ = self._expr(rule.duration, TIME, what=" as the FOR duration")
        now = self._now
        since = None
        done = False

        def timed_rule(m):
            nonlocal since, done
            if cond(m):
                if since is None:
                    since = now[0]
                if not done and now[0] - since >= dur(m):
                    done = True
                    fire(m)
            else:
                since, done = None, False
        return timed_rule

    def _bankable(self, rule: Rule) -> bool:
        """A rule can join a bank when its FOR duration is a constant and its actions do
        not read the fault word (in a bank, actions run after all the bank's conditions,
        which may set it). Whether it may join the bank being built is decided by the
        caller: no condition may read what an earlier rule of the bank may write."""
        if not self.banks:
            return False
        action_exprs = [e for a in rule.actions for e in _action_exprs(a)]
        if FAULT_NAME in _reads(action_exprs):
            return False
        return rule.duration is None or self.compiler._constant(rule.duration)

    def _bank(self, rules: list[Rule]) -> Callable[[Any], None]:
        """One step for consecutive emit-only rules: all conditions in one C-level map, a
        C-level comparison with the previous scan, Python work only where an edge is."""
        conds: list[Fn] = []
        emits: list[tuple[tuple, tuple]] = []
        actions: list[Callable[[Any], None] | None] = []
        durations: dict[int, int] = {}
        for i, rule in enumerate(rules):
            self.rule_count += 1
            conds.append(self._expr(rule.condition, BOOL, what=" as the WHEN condition")[0])
            emits.append((tuple((rule.index, a.name) for a in rule.actions
                                if isinstance(a, Event)),
                          tuple(a.category for a in rule.actions if isinstance(a, Stop))))
            actions.append(None if _emit_only(rule) else
                           _sequence([self._action(a, rule.index) for a in rule.actions]))
            if rule.duration is not None:
                self.checker.expect(rule.duration, TIME, what=" as the FOR duration")
                durations[i] = self.compiler.compile(rule.duration)[1]
        vec, covered, partial = None, [], {}
        if self.vectorize:
            # a condition reading the fault word must see other conditions' faults in rule
            # order: then no rule is split between numpy and closures
            reads_fault = FAULT_NAME in _reads([r.condition for r in rules])
            vec, covered, partial = split_bank(self.compiler, [r.condition for r in rules],
                                               allow_partial=not reads_fault)
        closure_conds: list[Fn | None] = list(conds)
        for i in covered:
            closure_conds[i] = None
        return RuleBank(closure_conds, emits, durations, self._now, lambda: self._result,
                        vec, covered, actions, partial).step

    def _action(self, action, rule_index: int) -> Callable[[Any], None]:
        if isinstance(action, Event):
            entry = (rule_index, action.name)
            res = self

            def event(m):
                res._result.events.append(entry)
            return event
        if isinstance(action, Stop):
            cat = action.category
            res = self

            def stop(m):
                res._result.stops.append(cat)
            return stop
        return self._item(action)

    # -- running ---------------------------------------------------------------------
    def scan(self, inputs: Mapping[str, Any], tick: int) -> ScanResult:
        """Run every item once at logical time `tick` (tick * period_ns nanoseconds).

        `inputs` maps every declared signal to a value of its type, and may give its
        quality `"<name>.good"` (BOOL, default TRUE) and age `"<name>.age"` (ns, default
        0), read by GOOD / AGE / STALE and by forced STOP rules. Returns the events
        and stop requests of this scan; outputs are in `outputs()`. A missing signal or a
        value of the wrong kind raises LogicError (the items before it have run).
        """
        self._now[0] = tick * self.period_ns
        if self._quality_keys and not self._quality_keys <= inputs.keys():
            inputs = {**self._quality_defaults, **inputs}
        result = self._result = ScanResult(tick)
        try:
            for step in self._steps:
                step(inputs)
        except KeyError as exc:
            raise LogicError(f"input signal {exc} is missing from the scan inputs (the scan "
                             "stopped half-way)", source=self.source) from None
        except (TypeError, ValueError) as exc:
            raise LogicError(f"an input value has the wrong type ({exc}; the scan stopped "
                             "half-way)", source=self.source) from None
        result.faults = self.faults.flags
        return result

    def outputs(self) -> dict[str, Any]:
        """Current values of the VAR_OUTPUT variables."""
        v = self.vars
        return {k: v[k] for k in self.output_names}

    def clear_faults(self) -> None:
        self.faults.flags = 0


def _emit_only(rule: Rule) -> bool:
    return all(isinstance(a, Event | Stop) for a in rule.actions)


def _action_exprs(action) -> list[Expr]:
    if isinstance(action, Assign):
        return [action.value]
    if isinstance(action, FbCall):
        return [p[1] for p in action.params]
    return []


def _writes(actions: list) -> set[str]:
    """Upper-case names the actions may change (variables, function block instances)."""
    return {(a.target if isinstance(a, Assign) else a.instance).upper()
            for a in actions if isinstance(a, Assign | FbCall)}


def _sequence(actions: list[Callable[[Any], None]]) -> Callable[[Any], None]:
    if len(actions) == 1:
        return actions[0]
    ta = tuple(actions)

    def run(m):
        for a in ta:
            a(m)
    return run

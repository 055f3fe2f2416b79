"""Vectorised conditions: many rules of the form `AND`/`OR` of input tests in a few numpy ops.

Most interlock rules compare an input with a constant, or combine such tests with AND or
OR. For a bank of such rules, all inputs they read are gathered once into a float64
array, each group of tests with the same operator is one numpy comparison, and each
rule's AND (OR) is one `reduceat` — a cost nearly independent of the rule count. INT and
BOOL values are exact in float64 (INT is 32-bit); TIME inputs are left to closures. NaN
compares FALSE, as in the closures.
"""

from __future__ import annotations

import operator
from functools import partial
from typing import Any

import numpy as np

from edge.logic.compiler import ExprCompiler
from edge.logic.nodes import Binary, Expr, Logic, Name, Unary

MIN_RULES = 32        # below this a numpy call costs more than the closures it replaces

_OPS = (operator.lt, operator.gt, operator.le, operator.ge, operator.eq, operator.ne)


def leaves_of(compiler: ExprCompiler, node: Expr, allow_rest: bool = False
              ) -> tuple[str, list[tuple], list[Expr]] | None:
    """("AND" | "OR", [(input key, kind, const)], rest) when `node` is (partly, with
    allow_rest) an AND/OR of input tests, else None. kind is an operator function f with
    f(const, x) the test, or "true"/"false"; rest are the operands left to closures."""
    if isinstance(node, Logic):
        items = node.flat_items()
        op = node.op
    else:
        items, op = [node], "AND"
    leaves: list[tuple] = []
    rest: list[Expr] = []
    for item in items:
        leaf = _leaf(compiler, item)
        if leaf is not None:
            leaves.append(leaf)
        elif allow_rest and isinstance(node, Logic):
            rest.append(item)
        else:
            return None
    return (op, leaves, rest) if leaves else None


def _leaf(compiler: ExprCompiler, item: Expr) -> tuple | None:
    """(input key, kind, const) for a test of one input against a constant, else None."""
    if not isinstance(item, Name | Unary | Binary):
        return None
    form = compiler.compile(item)
    if form[0] != "p":
        return None
    key, pred = form[1], form[2]
    sym = compiler.scope.symbols.get(key.upper())
    if sym is None or sym.kind != "input" or sym.type == "TIME":
        return None
    if pred is bool:
        return (key, "true", 0.0)
    if pred is operator.not_:
        return (key, "false", 0.0)
    if (isinstance(pred, partial) and pred.func in _OPS and len(pred.args) == 1
            and isinstance(pred.args[0], int | float) and not isinstance(pred.args[0], bool)
            and -2.0**53 <= pred.args[0] <= 2.0**53):
        return (key, pred.func, float(pred.args[0]))
    return None


class VectorConditions:
    """Evaluates the conditions of many rules at once; `__call__(m)` -> bool array."""

    def __init__(self, rules: list[tuple[str, list[tuple], list[Expr]]]) -> None:
        keys: dict[str, int] = {}
        flat: list[tuple[int, Any, float]] = []
        and_starts, or_starts, and_rules, or_rules = [], [], [], []
        order = sorted(range(len(rules)), key=lambda i: rules[i][0] != "AND")
        for i in order:
            op, leaves, _ = rules[i]
            (and_starts if op == "AND" else or_starts).append(len(flat))
            (and_rules if op == "AND" else or_rules).append(i)
            for key, kind, const in leaves:
                flat.append((keys.setdefault(key, len(keys)), kind, const))
        self.n = len(rules)
        names = list(keys)
        self._get = operator.itemgetter(*names) if len(names) > 1 else (
            lambda m, k=names[0]: (m[k],))
        self._count = len(names)
        # leaves are evaluated grouped by operator (one gather, one ufunc per group into
        # a contiguous slice), then permuted back to rule order for the reductions
        by_kind: dict[Any, list[int]] = {}
        for j, (_, kind, _) in enumerate(flat):
            by_kind.setdefault(kind, []).append(j)
        order_leaves = [j for idx in by_kind.values() for j in idx]
        self._val_idx = np.array([flat[j][0] for j in order_leaves], dtype=np.intp)
        self._consts = np.array([flat[j][2] for j in order_leaves], dtype=np.float64)
        self._groups = []
        pos = 0
        for kind, idx in by_kind.items():
            ufunc = {"true": np.not_equal, "false": np.equal, operator.lt: np.less,
                     operator.gt: np.greater, operator.le: np.less_equal,
                     operator.ge: np.greater_equal, operator.eq: np.equal,
                     operator.ne: np.not_equal}[kind]
            self._groups.append((ufunc, slice(pos, pos + len(idx))))
            pos += len(idx)
        # the x-side of "true"/"false" tests compares with 0.0: const stays 0.0, and the
        # ufunc is applied as ufunc(x, 0) for those, ufunc(const, x) for the others
        self._x_first = {id(g[1]) for g, kind in zip(self._groups, by_kind, strict=True)
                         if kind in ("true", "false")}
        self._perm = np.argsort(np.array(order_leaves, dtype=np.intp), kind="stable")
        self._gbits = np.zeros(len(flat), dtype=bool)
        self._and = (np.array(and_starts, dtype=np.intp), np.array(and_rules, dtype=np.intp)) \
            if and_starts else None
        self._or = (np.array(or_starts, dtype=np.intp), np.array(or_rules, dtype=np.intp)) \
            if or_starts else None
        self._n_and_leaves = or_starts[0] if or_starts else len(flat)
        self._all_and = self._or is None and np.array_equal(self._and[1], np.arange(self.n))

    def __call__(self, m: Any) -> np.ndarray:
        vals = np.fromiter(self._get(m), dtype=np.float64, count=self._count)
        x = vals[self._val_idx]
        consts, gbits, x_first = self._consts, self._gbits, self._x_first
        for ufunc, sl in self._groups:
            if id(sl) in x_first:
                ufunc(x[sl], consts[sl], out=gbits[sl])
            else:
                ufunc(consts[sl], x[sl], out=gbits[sl])
        bits = gbits[self._perm]
        if self._all_and:
            return np.logical_and.reduceat(bits, self._and[0])
        out = np.empty(self.n, dtype=bool)
        if self._and is not None:
            starts, rules = self._and
            out[rules] = np.logical_and.reduceat(bits[:self._n_and_leaves], starts)
        if self._or is not None:
            starts, rules = self._or
            out[rules] = np.logical_or.reduceat(bits[self._n_and_leaves:],
                                                starts - self._n_and_leaves)
        return out


def split_bank(compiler: ExprCompiler, conds: list[Expr], allow_partial: bool = True
               ) -> tuple[VectorConditions | None, list[int], dict[int, tuple[str, Any]]]:
    """(vector evaluator, indices it covers, partial) for a bank. partial maps a covered
    rule whose AND/OR also has operands the vector cannot take to (op, closure of those
    operands), evaluated only where the vector part does not decide the rule."""
    found = [(i, leaves_of(compiler, c, allow_partial)) for i, c in enumerate(conds)]
    vec = [(i, lv) for i, lv in found if lv is not None]
    if len(vec) < MIN_RULES:
        return None, [], {}
    partial_rules = {}
    for i, (op, _, rest) in vec:
        if rest:
            node = rest[0] if len(rest) == 1 else Logic(rest[0].line, rest[0].column, op, rest)
            node.type = "BOOL"
            partial_rules[i] = (op, compiler.fn(compiler.compile(node)))
    return VectorConditions([lv for _, lv in vec]), [i for i, _ in vec], partial_rules



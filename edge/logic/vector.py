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
from typing import Any

import numpy as np

from edge.logic.compiler import ExprCompiler
from edge.logic.nodes import Binary, Expr, Logic, Name, Unary

MIN_RULES = 32        # below this a numpy call costs more than the closures it replaces

_OPS = (operator.lt, operator.gt, operator.le, operator.ge, operator.eq, operator.ne)


def leaves_of(compiler: ExprCompiler, node: Expr) -> tuple[str, list[tuple]] | None:
    """("AND" | "OR", [(input key, kind, const)]) when `node` is a vectorisable test, else
    None. kind is an operator function f with f(const, x) the test, or "true"/"false"."""
    if isinstance(node, Logic):
        items: list[Expr] = []
        stack = list(reversed(node.items))
        while stack:
            e = stack.pop()
            if isinstance(e, Logic) and e.op == node.op:
                stack.extend(reversed(e.items))
            elif isinstance(e, Logic):
                return None
            else:
                items.append(e)
        op = node.op
    else:
        items, op = [node], "AND"
    leaves = []
    for item in items:
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
            leaves.append((key, "true", 0.0))
        elif pred is operator.not_:
            leaves.append((key, "false", 0.0))
        elif (getattr(pred, "func", None) in _OPS and len(pred.args) == 1
              and isinstance(pred.args[0], int | float) and not isinstance(pred.args[0], bool)
              and -2.0**53 <= pred.args[0] <= 2.0**53):
            leaves.append((key, pred.func, float(pred.args[0])))
        else:
            return None
    return op, leaves


class VectorConditions:
    """Evaluates the conditions of many rules at once; `__call__(m)` -> bool array."""

    def __init__(self, rules: list[tuple[str, list[tuple]]]) -> None:
        keys: dict[str, int] = {}
        flat: list[tuple[int, Any, float]] = []
        and_starts, or_starts, and_rules, or_rules = [], [], [], []
        order = sorted(range(len(rules)), key=lambda i: rules[i][0] != "AND")
        for i in order:
            op, leaves = rules[i]
            (and_starts if op == "AND" else or_starts).append(len(flat))
            (and_rules if op == "AND" else or_rules).append(i)
            for key, kind, const in leaves:
                flat.append((keys.setdefault(key, len(keys)), kind, const))
        self.n = len(rules)
        names = list(keys)
        self._get = operator.itemgetter(*names) if len(names) > 1 else (
            lambda m, k=names[0]: (m[k],))
        self._count = len(names)
        groups: dict[Any, list[int]] = {}
        for j, (_, kind, _) in enumerate(flat):
            groups.setdefault(kind, []).append(j)
        self._groups = []
        for kind, idx in groups.items():
            leaf_idx = np.array(idx, dtype=np.intp)
            val_idx = np.array([flat[j][0] for j in idx], dtype=np.intp)
            consts = np.array([flat[j][2] for j in idx], dtype=np.float64)
            self._groups.append((kind, leaf_idx, val_idx, consts))
        self._bits = np.zeros(len(flat), dtype=bool)
        self._and = (np.array(and_starts, dtype=np.intp), np.array(and_rules, dtype=np.intp)) \
            if and_starts else None
        self._or = (np.array([s for s in or_starts], dtype=np.intp),
                    np.array(or_rules, dtype=np.intp)) if or_starts else None
        self._n_and_leaves = or_starts[0] if or_starts else len(flat)

    def __call__(self, m: Any) -> np.ndarray:
        vals = np.fromiter(self._get(m), dtype=np.float64, count=self._count)
        bits = self._bits
        for kind, leaf_idx, val_idx, consts in self._groups:
            x = vals[val_idx]
            if kind == "true":
                bits[leaf_idx] = x != 0.0
            elif kind == "false":
                bits[leaf_idx] = x == 0.0
            else:
                bits[leaf_idx] = kind(consts, x)
        out = np.empty(self.n, dtype=bool)
        if self._and is not None:
            starts, rules = self._and
            out[rules] = np.logical_and.reduceat(bits[:self._n_and_leaves], starts)
        if self._or is not None:
            starts, rules = self._or
            seg = bits[self._n_and_leaves:]
            out[rules] = np.logical_or.reduceat(seg, starts - self._n_and_leaves)
        return out


def split_bank(compiler: ExprCompiler, conds: list[Expr]) -> tuple[
        VectorConditions | None, list[int], list[int]]:
    """(vector evaluator, indices it covers, indices left to closures) for a bank."""
    found = [(i, leaves_of(compiler, c)) for i, c in enumerate(conds)]
    vec = [(i, lv) for i, lv in found if lv is not None]
    if len(vec) < MIN_RULES:
        return None, [], list(range(len(conds)))
    covered = [i for i, _ in vec]
    rest = [i for i, lv in found if lv is None]
    return VectorConditions([lv for _, lv in vec]), covered, rest



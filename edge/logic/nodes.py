"""The syntax tree of the logic language; the checker fills in `type` on expressions.

Every node keeps the line and column where it starts, so any later error can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BOOL, INT, REAL, TIME = "BOOL", "INT", "REAL", "TIME"
VALUE_TYPES = (BOOL, INT, REAL, TIME)


@dataclass(eq=False, slots=True)
class Expr:
    line: int
    column: int
    depth: int = field(default=1, init=False)
    type: str | None = field(default=None, init=False)


@dataclass(eq=False, slots=True)
class Lit(Expr):
    value: object = None
    lit_type: str = INT


@dataclass(eq=False, slots=True)
class Name(Expr):
    name: str = ""            # "speed" or "t1.Q" (an instance output)


@dataclass(eq=False, slots=True)
class Unary(Expr):
    op: str = "-"             # "-", "+", "NOT"
    operand: Expr | None = None


@dataclass(eq=False, slots=True)
class Binary(Expr):
    op: str = "+"             # + - * / MOD ** < > <= >= = <> XOR
    left: Expr | None = None
    right: Expr | None = None


@dataclass(eq=False, slots=True)
class Logic(Expr):
    op: str = "AND"           # "AND" or "OR", n-ary, short-circuit
    items: list[Expr] = field(default_factory=list)
    parenthesized: bool = False

    def flat_items(self) -> list[Expr]:
        """The operands with nested ANDs (ORs) of the same operator, made by
        parentheses, flattened in order."""
        items: list[Expr] = []
        stack = list(reversed(self.items))
        while stack:
            e = stack.pop()
            if isinstance(e, Logic) and e.op == self.op:
                stack.extend(reversed(e.items))
            else:
                items.append(e)
        return items


@dataclass(eq=False, slots=True)
class Call(Expr):
    func: str = ""            # upper-case function name
    args: list[Expr] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Cond(Expr):
    branches: list[tuple[Expr, Expr]] = field(default_factory=list)   # (condition, value)
    otherwise: Expr | None = None


# -- program items ---------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class VarDecl:
    line: int
    column: int
    name: str
    type_name: str            # a value type or a function block type, upper case
    init: Expr | None
    output: bool


@dataclass(eq=False, slots=True)
class Assign:
    line: int
    column: int
    target: str
    value: Expr


@dataclass(eq=False, slots=True)
class FbCall:
    line: int
    column: int
    instance: str
    params: list[tuple[str, Expr, int, int]]     # (input name upper, value, line, column)


@dataclass(eq=False, slots=True)
class Event:
    line: int
    column: int
    name: str


@dataclass(eq=False, slots=True)
class Stop:
    line: int
    column: int
    category: int


@dataclass(eq=False, slots=True)
class Rule:
    line: int
    column: int
    condition: Expr
    duration: Expr | None
    actions: list[Assign | FbCall | Event | Stop]
    index: int = 0


@dataclass(eq=False, slots=True)
class ProgramAst:
    decls: list[VarDecl]
    body: list[Assign | FbCall | Rule]

"""Recursive-descent parser: tokens in, a syntax tree out; errors say what was expected.

Operator precedence follows IEC 61131-3 Structured Text, highest first:
`( )` and calls, `**`, unary `-` `+` `NOT`, `* / MOD`, `+ -`, `< > <= >=`, `= <>`,
`AND &`, `XOR`, `OR`. Trees are bounded: nesting deeper than MAX_DEPTH levels is refused,
so neither the checker nor a compiled expression can exhaust the Python stack.
"""

from __future__ import annotations

from edge.errors import LogicError
from edge.logic.lexer import INT_MAX, Token, tokenize
from edge.logic.nodes import (
    BOOL,
    INT,
    REAL,
    TIME,
    Assign,
    Binary,
    Call,
    Cond,
    Event,
    Expr,
    FbCall,
    Lit,
    Logic,
    Name,
    ProgramAst,
    Rule,
    Stop,
    Unary,
    VarDecl,
)

MAX_DEPTH = 32
MAX_ITEMS = 20_000          # declarations + statements + rules in one program
MAX_ACTIONS = 64            # actions in one rule
MAX_ARGS = 32

# binary operators, loosest first (IEC 61131-3 ST); unary and ** bind tighter
_PRECEDENCE = {"OR": 1, "XOR": 2, "AND": 3, "&": 3, "=": 4, "<>": 4, "<": 5, ">": 5,
               "<=": 5, ">=": 5, "+": 6, "-": 6, "*": 7, "/": 7, "MOD": 7}


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the text"
    if tok.kind == "str":
        return f"string {tok.text}"
    return f"'{tok.text}'"


class Parser:
    def __init__(self, text: str, source: str | None = None) -> None:
        self.source = source
        self.toks = tokenize(text, source)
        self.i = 0
        self.nesting = 0

    # -- token helpers ---------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def error(self, message: str, tok: Token | None = None) -> LogicError:
        tok = tok or self.tok
        return LogicError(message, tok.line, tok.column, source=self.source)

    def expected(self, what: str) -> LogicError:
        return self.error(f"expected {what}, got {_describe(self.tok)}")

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def at_kw(self, *kws: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in kws

    def take_op(self, op: str, what: str | None = None) -> Token:
        if not self.at_op(op):
            raise self.expected(what or f"'{op}'")
        return self.next()

    def take_kw(self, kw: str, what: str | None = None) -> Token:
        if not self.at_kw(kw):
            raise self.expected(what or f"'{kw}'")
        return self.next()

    def take_ident(self, what: str) -> Token:
        if self.tok.kind != "ident":
            if self.tok.kind == "kw":
                raise self.error(f"expected {what}, got keyword '{self.tok.text}' "
                                 "(keywords cannot be used as names)")
            raise self.expected(what)
        return self.next()

    def _nest(self, node: Expr, *children: Expr) -> Expr:
        node.depth = 1 + max((c.depth for c in children), default=0)
        if node.depth > MAX_DEPTH:
            raise LogicError(f"expression nested more than {MAX_DEPTH} levels deep; split it "
                             "with intermediate variables", node.line, node.column,
                             source=self.source)
        return node

    # -- expressions -----------------------------------------------------------------
    def expression(self) -> Expr:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep")
        try:
            return self._climb(1)
        finally:
            self.nesting -= 1

    def _binary_op(self) -> tuple[str, int] | None:
        tok = self.tok
        if tok.kind == "op" and tok.value in _PRECEDENCE:
            return ("AND" if tok.value == "&" else str(tok.value)), _PRECEDENCE[str(tok.value)]
        if tok.kind == "kw" and tok.value in _PRECEDENCE:
            return str(tok.value), _PRECEDENCE[str(tok.value)]
        return None

    def _climb(self, min_prec: int) -> Expr:
        """Precedence climbing: loops within a level, recursion only across levels, so a
        long chain of operators costs no stack."""
        left = self._unary()
        while True:
            found = self._binary_op()
            if found is None or found[1] < min_prec:
                return left
            op, prec = found
            tok = self.next()
            right = self._climb(prec + 1)
            if op in ("AND", "OR"):
                if isinstance(left, Logic) and left.op == op and not left.parenthesized:
                    left.items.append(right)
                    left.depth = max(left.depth, right.depth + 1)
                else:
                    left = self._nest(Logic(left.line, left.column, op, [left, right]),
                                      left, right)
            else:
                left = self._nest(Binary(tok.line, tok.column, op, left, right), left, right)

    def _unary(self) -> Expr:
        if self.at_op("-", "+") or self.at_kw("NOT"):
            tok = self.next()
            self.nesting += 1
            if self.nesting > MAX_DEPTH:
                raise self.error(f"expression nested more than {MAX_DEPTH} levels deep", tok)
            try:
                operand = self._unary()
            finally:
                self.nesting -= 1
            op = str(tok.value)
            if op == "-" and isinstance(operand, Lit) and operand.lit_type in (INT, REAL, TIME):
                # fold a negative literal now, so -2147483648 is a valid INT
                return Lit(tok.line, tok.column, -operand.value, operand.lit_type)
            return self._nest(Unary(tok.line, tok.column, op, operand), operand)
        return self._power()

    def _power(self) -> Expr:
        left = self._primary()
        while self.at_op("**"):
            tok = self.next()
            right = self._unary() if self.at_op("-", "+") else self._primary()
            left = self._nest(Binary(tok.line, tok.column, "**", left, right), left, right)
        return left

    def _check_int(self, node: Expr) -> Expr:
        if isinstance(node, Lit) and node.lit_type == INT and node.value > INT_MAX:
            raise LogicError(f"integer literal {node.value} is out of range (INT is "
                             f"{-INT_MAX - 1} .. {INT_MAX})", node.line, node.column,
                             source=self.source)
        return node

    def _primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "int":
            self.next()
            return Lit(tok.line, tok.column, tok.value, INT)
        if tok.kind == "real":
            self.next()
            return Lit(tok.line, tok.column, tok.value, REAL)
        if tok.kind == "time":
            self.next()
            return Lit(tok.line, tok.column, tok.value, TIME)
        if self.at_kw("TRUE", "FALSE"):
            self.next()
            return Lit(tok.line, tok.column, tok.value == "TRUE", BOOL)
        if self.at_op("("):
            self.next()
            inner = self.expression()
            self.take_op(")", "')' to close the '(' at line "
                              f"{tok.line}, column {tok.column}")
            if isinstance(inner, Logic):
                inner.parenthesized = True
            return inner
        if self.at_kw("IF"):
            return self._conditional()
        if tok.kind == "ident":
            self.next()
            if self.at_op("("):
                return self._call(tok)
            name = tok.value
            if self.at_op("."):
                self.next()
                member = self.take_ident("an output name after '.'")
                name = f"{name}.{str(member.value).upper()}"
            return Name(tok.line, tok.column, str(name))
        if tok.kind == "str":
            raise self.error("strings are only allowed after EVENT")
        raise self.expected("a value (a number, TRUE/FALSE, a duration, a name, a function "
                            "call, IF or '(')")

    def _call(self, name_tok: Token) -> Expr:
        self.take_op("(")
        args: list[Expr] = []
        if not self.at_op(")"):
            while True:
                args.append(self._check_int(self.expression()))
                if len(args) > MAX_ARGS:
                    raise self.error(f"more than {MAX_ARGS} arguments")
                if self.at_op(","):
                    self.next()
                    continue
                break
        self.take_op(")", "',' or ')' in the argument list")
        call = Call(name_tok.line, name_tok.column, str(name_tok.value).upper(), args)
        return self._nest(call, *args)

    def _conditional(self) -> Expr:
        start = self.take_kw("IF")
        branches: list[tuple[Expr, Expr]] = []
        while True:
            cond = self._check_int(self.expression())
            self.take_kw("THEN", "THEN after the IF condition")
            value = self._check_int(self.expression())
            branches.append((cond, value))
            if self.at_kw("ELSIF"):
                self.next()
                continue
            break
        self.take_kw("ELSE", "ELSIF or ELSE (an IF expression needs an ELSE value)")
        otherwise = self._check_int(self.expression())
        self.take_kw("END_IF", "END_IF to close the IF expression")
        node = Cond(start.line, start.column, branches, otherwise)
        return self._nest(node, *[e for b in branches for e in b], otherwise)

    def full_expression(self) -> Expr:
        """One expression and nothing after it (compile_expression)."""
        expr = self._check_int(self.expression())
        if self.tok.kind != "eof":
            raise self.expected("an operator or the end of the expression")
        _check_tree_ints(expr, self.source)
        return expr

    # -- programs --------------------------------------------------------------------
    def program(self) -> ProgramAst:
        decls: list[VarDecl] = []
        body: list = []
        rules = 0
        while self.tok.kind != "eof":
            if len(decls) + len(body) > MAX_ITEMS:
                raise self.error(f"program has more than {MAX_ITEMS} items")
            if self.at_kw("VAR", "VAR_OUTPUT"):
                self._var_section(decls)
            elif self.at_kw("WHEN"):
                rule = self._rule()
                rule.index = rules
                rules += 1
                body.append(rule)
            elif self.tok.kind == "ident":
                body.append(self._statement())
            else:
                raise self.expected("VAR, VAR_OUTPUT, WHEN, an assignment 'name := value;' "
                                    "or a function block call 'name(IN := ...);'")
        for item in body:
            for expr in _item_exprs(item):
                _check_tree_ints(expr, self.source)
        for d in decls:
            if d.init is not None:
                _check_tree_ints(d.init, self.source)
        return ProgramAst(decls, body)

    def _var_section(self, decls: list[VarDecl]) -> None:
        output = self.next().value == "VAR_OUTPUT"
        while not self.at_kw("END_VAR"):
            if len(decls) > MAX_ITEMS:
                raise self.error(f"more than {MAX_ITEMS} declarations")
            names = [self.take_ident("a variable name or END_VAR")]
            while self.at_op(","):
                self.next()
                names.append(self.take_ident("a variable name after ','"))
            self.take_op(":", "':' and a type after the variable name")
            type_tok = self.take_ident("a type (BOOL, INT, REAL, TIME or a function block "
                                       "such as TON)")
            init = None
            if self.at_op(":="):
                self.next()
                init = self.expression()
            self.take_op(";", "';' after the declaration")
            for name in names:
                decls.append(VarDecl(name.line, name.column, str(name.value),
                                     str(type_tok.value).upper(), init, output))
        self.next()
        if self.at_op(";"):
            self.next()

    def _statement(self) -> Assign | FbCall:
        name = self.take_ident("a name")
        if self.at_op("("):
            self.next()
            params = []
            if not self.at_op(")"):
                while True:
                    p = self.take_ident("an input name such as IN (inputs are passed "
                                        "by name: IN := value)")
                    self.take_op(":=", f"':=' after the input name '{p.value}'")
                    params.append((str(p.value).upper(), self.expression(), p.line, p.column))
                    if len(params) > MAX_ARGS:
                        raise self.error(f"more than {MAX_ARGS} inputs")
                    if not self.at_op(","):
                        break
                    self.next()
            self.take_op(")", "',' or ')' in the input list")
            self.take_op(";", "';' after the function block call")
            return FbCall(name.line, name.column, str(name.value), params)
        if self.at_op("."):
            raise self.error("outputs of a function block are read-only", self.tok)
        self.take_op(":=", "':=' (assignment) or '(' (function block call) after a name")
        value = self.expression()
        self.take_op(";", "';' after the assignment")
        return Assign(name.line, name.column, str(name.value), value)

    def _rule(self) -> Rule:
        start = self.take_kw("WHEN")
        cond = self.expression()
        duration = None
        if self.at_kw("FOR"):
            self.next()
            duration = self.expression()
        self.take_kw("THEN", "FOR <duration> or THEN after the WHEN condition")
        actions: list = []
        while not self.at_kw("END_WHEN"):
            if len(actions) >= MAX_ACTIONS:
                raise self.error(f"a rule has at most {MAX_ACTIONS} actions")
            if self.at_kw("EVENT"):
                tok = self.next()
                if self.tok.kind != "str":
                    raise self.expected("a quoted event name after EVENT")
                ev = self.next()
                actions.append(Event(tok.line, tok.column, str(ev.value)))
                self.take_op(";", "';' after the EVENT action")
            elif self.at_kw("STOP"):
                tok = self.next()
                cat = self.tok
                if cat.kind != "int" or cat.value not in (0, 1, 2):
                    raise self.expected("a stop category 0, 1 or 2 after STOP")
                self.next()
                actions.append(Stop(tok.line, tok.column, int(cat.value)))
                self.take_op(";", "';' after the STOP action")
            elif self.tok.kind == "ident":
                actions.append(self._statement())
            else:
                raise self.expected("an action (EVENT \"name\"; STOP n; name := value; a "
                                    "function block call) or END_WHEN")
        self.next()
        if self.at_op(";"):
            self.next()
        if not actions:
            raise LogicError("a rule needs at least one action", start.line, start.column,
                             source=self.source)
        return Rule(start.line, start.column, cond, duration, actions)


def _item_exprs(item) -> list[Expr]:
    if isinstance(item, Assign):
        return [item.value]
    if isinstance(item, FbCall):
        return [p[1] for p in item.params]
    if isinstance(item, Rule):
        out = [item.condition] + ([item.duration] if item.duration is not None else [])
        for a in item.actions:
            out.extend(_item_exprs(a))
        return out
    return []


def _children(e: Expr) -> list[Expr]:
    if isinstance(e, Unary):
        return [e.operand]
    if isinstance(e, Binary):
        return [e.left, e.right]
    if isinstance(e, Logic | Call):
        return list(e.items if isinstance(e, Logic) else e.args)
    if isinstance(e, Cond):
        return [x for b in e.branches for x in b] + [e.otherwise]
    return []


def _check_tree_ints(root: Expr, source: str | None) -> None:
    """2147483648 is only valid right after a unary minus (folded by the parser)."""
    stack = [root]
    while stack:
        e = stack.pop()
        if isinstance(e, Lit) and e.lit_type == INT and e.value > INT_MAX:
            raise LogicError(f"integer literal {e.value} is out of range (INT is "
                             f"{-INT_MAX - 1} .. {INT_MAX})", e.line, e.column, source=source)
        stack.extend(_children(e))


def parse_expression(text: str, source: str | None = None) -> Expr:
    return Parser(text, source).full_expression()


def parse_program(text: str, source: str | None = None) -> ProgramAst:
    return Parser(text, source).program()


children = _children

"""Lexer of the logic language: ASCII text in, tokens with line and column out.

Only printable ASCII is accepted outside comments, and bidirectional or invisible
formatting characters are refused everywhere (a rule must read as it runs). Literals are
range-checked here, so a huge number never reaches the compiler.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from edge.errors import LogicError

MAX_SOURCE_CHARS = 1_000_000
MAX_LITERAL_CHARS = 64
MAX_TOKENS = 250_000
INT_MIN, INT_MAX = -(2**31), 2**31 - 1           # INT is a 32-bit signed integer (DINT range)
TIME_MAX_NS = 2**63 - 1

KEYWORDS = frozenset({
    "AND", "OR", "XOR", "NOT", "MOD", "TRUE", "FALSE", "IF", "THEN", "ELSIF", "ELSE", "END_IF",
    "WHEN", "FOR", "END_WHEN", "VAR", "VAR_OUTPUT", "END_VAR", "EVENT", "STOP", "RESET",
})

# multiples of a nanosecond, longest suffix first so "ms" is not read as "m" + "s"
TIME_UNITS = (("ms", 1_000_000), ("us", 1_000), ("ns", 1), ("d", 86_400 * 10**9),
              ("h", 3_600 * 10**9), ("m", 60 * 10**9), ("s", 10**9))

OPERATORS = (":=", "<=", ">=", "<>", "**", "=>", "+", "-", "*", "/", "<", ">", "=", "(", ")",
             ",", ";", ":", ".", "&")

# characters that change how text is displayed without being visible (Trojan Source)
_INVISIBLE = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD} | set(range(0x202A, 0x202F)) \
    | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}


_SPACE = re.compile(r"[ \t\r\n]+")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_INVISIBLE_RE = re.compile("[" + "".join(chr(c) for c in sorted(_INVISIBLE)) + "]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e\t\r\n]")
_OPS2 = {op for op in OPERATORS if len(op) == 2}
_OPS1 = {op for op in OPERATORS if len(op) == 1}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str        # "int" "real" "time" "ident" "kw" "op" "str" "eof"
    value: object    # int, float, int ns, upper-case keyword, name, operator text
    line: int
    column: int
    text: str


def _describe(ch: str) -> str:
    return repr(ch) if ch.isprintable() and ord(ch) < 128 else f"U+{ord(ch):04X}"


class Lexer:
    def __init__(self, text: str, source: str | None = None) -> None:
        if not isinstance(text, str):
            raise LogicError(f"logic text must be a string, got {type(text).__name__}",
                             source=source)
        if len(text) > MAX_SOURCE_CHARS:
            raise LogicError(f"logic text too long: {len(text)} characters "
                             f"(at most {MAX_SOURCE_CHARS})", 1, 1, source=source)
        self.text = text
        self.source = source
        self.pos = 0
        self.line = 1
        self.col = 1

    def error(self, message: str, line: int | None = None, col: int | None = None) -> LogicError:
        return LogicError(message, line or self.line, col or self.col, source=self.source)

    def _advance(self, n: int) -> None:
        chunk = self.text[self.pos:self.pos + n]
        newlines = chunk.count("\n")
        if newlines:
            self.line += newlines
            self.col = n - chunk.rfind("\n")
        else:
            self.col += n
        self.pos += n

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        text = self.text
        while True:
            self._skip_space_and_comments()
            if self.pos >= len(text):
                out.append(Token("eof", None, self.line, self.col, ""))
                return out
            ch = text[self.pos]
            line, col, start = self.line, self.col, self.pos
            if ch.isascii() and (ch.isalpha() or ch == "_"):
                tok = self._word(line, col)
            elif ch.isascii() and ch.isdigit():
                tok = self._number(line, col)
            elif ch == '"' or ch == "'":
                tok = self._string(line, col)
            else:
                two = text[self.pos:self.pos + 2]
                op = two if two in _OPS2 else ch if ch in _OPS1 else None
                if op is None:
                    raise self.error(f"unexpected character {_describe(ch)}")
                self._advance(len(op))
                tok = Token("op", op, line, col, op)
            if self.pos - start > MAX_LITERAL_CHARS and tok.kind != "str":
                raise self.error(f"token longer than {MAX_LITERAL_CHARS} characters", line, col)
            out.append(tok)
            if len(out) > MAX_TOKENS:
                raise self.error(f"more than {MAX_TOKENS} tokens", line, col)

    def _check_char(self, ch: str, in_comment: bool) -> None:
        code = ord(ch)
        if code in _INVISIBLE:
            raise self.error(f"invisible or bidirectional formatting character U+{code:04X} "
                             "is not allowed")
        if not in_comment and (code > 126 or (code < 32 and ch not in "\t\r\n")):
            raise self.error(f"unexpected character {_describe(ch)} (only ASCII is allowed "
                             "outside comments)")

    def _check_span(self, start: int, end: int, in_comment: bool) -> None:
        """Refuse invisible characters (and, outside comments, any non-ASCII) in a span."""
        bad = (_INVISIBLE_RE if in_comment else _NOT_PRINTABLE_ASCII).search(
            self.text, start, end)
        if bad is not None:
            self._advance(bad.start() - self.pos)
            self._check_char(bad.group(), in_comment)
            raise self.error(f"unexpected character {_describe(bad.group())}")

    def _skip_space_and_comments(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r\n":
                self._advance(_SPACE.match(text, self.pos).end() - self.pos)
            elif text.startswith("(*", self.pos):
                line, col = self.line, self.col
                end = text.find("*)", self.pos + 2)
                if end < 0:
                    raise self.error("comment opened with '(*' is never closed with '*)'",
                                     line, col)
                self._check_span(self.pos, end, True)
                self._advance(end + 2 - self.pos)
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                self._check_span(self.pos, end, True)
                self._advance(end - self.pos)
            else:
                self._check_char(ch, False)
                return

    def _scan_while(self, pred) -> str:
        start = self.pos
        text = self.text
        end = start
        while end < len(text) and end - start <= MAX_LITERAL_CHARS and pred(text[end]):
            end += 1
        self._advance(end - start)
        return text[start:end]

    def _word(self, line: int, col: int) -> Token:
        end = _WORD.match(self.text, self.pos).end()
        if end - self.pos > MAX_LITERAL_CHARS:
            raise self.error(f"token longer than {MAX_LITERAL_CHARS} characters", line, col)
        word = self.text[self.pos:end]
        self._advance(end - self.pos)
        upper = word.upper()
        if upper in ("T", "TIME") and self.text.startswith("#", self.pos):
            self._advance(1)
            return self._duration(line, col, word + "#")
        if "__" in word:
            raise self.error(f"name '{word}' may not contain '__'", line, col)
        if upper in KEYWORDS:
            return Token("kw", upper, line, col, word)
        return Token("ident", word, line, col, word)

    def _digits(self, base: int = 10) -> str:
        allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"[:base]
        line, col = self.line, self.col
        raw = self._scan_while(lambda c: c in allowed or c == "_")
        if raw.startswith("_") or raw.endswith("_") or "__" in raw:
            raise self.error("misplaced '_' in a number", line, col)
        return raw.replace("_", "")

    def _number(self, line: int, col: int) -> Token:
        start = self.pos
        digits = self._digits()
        text = self.text
        if text.startswith("#", self.pos) and digits in ("2", "8", "16"):
            base = int(digits)
            self._advance(1)
            body = self._digits(base)
            try:
                value = int(body, base)
            except ValueError:
                raise self.error(f"expected base-{base} digits after '{digits}#'") from None
            return self._int_token(value, line, col, start)
        is_real = False
        if (text.startswith(".", self.pos) and self.pos + 1 < len(text)
                and text[self.pos + 1].isdigit()):
            self._advance(1)
            digits += "." + self._digits()
            is_real = True
        if self.pos < len(text) and text[self.pos] in "eE":
            save = (self.pos, self.line, self.col)
            self._advance(1)
            sign = ""
            if self.pos < len(text) and text[self.pos] in "+-":
                sign = text[self.pos]
                self._advance(1)
            exp = self._scan_while(lambda c: c.isascii() and c.isdigit())
            if exp:
                digits += "e" + sign + exp
                is_real = True
            else:
                self.pos, self.line, self.col = save
        if self.pos < len(text) and text[self.pos].isascii() and (
                text[self.pos].isalpha() or text[self.pos] == "_"):
            # a duration written without T#: 200ms, 2s, 1.5s
            self.pos, self.line, self.col = start, line, col
            return self._duration(line, col, "")
        if is_real:
            value = float(digits)
            if not math.isfinite(value):
                raise self.error(f"real literal {self.text[start:self.pos]} is out of range",
                                 line, col)
            return Token("real", value, line, col, self.text[start:self.pos])
        return self._int_token(int(digits), line, col, start)

    def _int_token(self, value: int, line: int, col: int, start: int) -> Token:
        if value > INT_MAX + 1:      # INT_MAX + 1 is allowed only after a unary minus
            raise self.error(f"integer literal {self.text[start:self.pos]} is out of range "
                             f"(INT is {INT_MIN} .. {INT_MAX})", line, col)
        return Token("int", value, line, col, self.text[start:self.pos])

    def _duration(self, line: int, col: int, prefix: str) -> Token:
        """200ms, 1.5s, T#1m30s: number-unit pairs, each unit one of TIME_UNITS."""
        start = self.pos
        total = 0.0
        exact = 0
        parts = 0
        text = self.text
        units = dict(TIME_UNITS)
        while self.pos < len(text) and (text[self.pos].isdigit() or
                                        (parts and text[self.pos] == "_")):
            if text[self.pos] == "_":
                self._advance(1)
            num = self._scan_while(lambda c: c.isascii() and (c.isdigit() or c == "."))
            if not num or num.count(".") > 1 or num.endswith(".") or num.startswith("."):
                raise self.error("expected a number in the duration", line, col)
            unit_line, unit_col = self.line, self.col
            unit = self._scan_while(lambda c: c.isascii() and c.isalpha()).lower()
            if unit not in units:
                raise self.error("expected a time unit (d, h, m, s, ms, us, ns) after "
                                 f"'{num}', got '{unit}'" if unit else
                                 f"expected a time unit (d, h, m, s, ms, us, ns) after '{num}'",
                                 unit_line, unit_col)
            scale = units[unit]
            if "." in num:
                total += float(num) * scale
            else:
                exact += int(num) * scale
            parts += 1
            if exact > TIME_MAX_NS or total > TIME_MAX_NS:
                raise self.error("duration is out of range", line, col)
        if parts == 0:
            raise self.error(f"expected a duration after '{prefix}'", line, col)
        if self.pos < len(text) and text[self.pos].isascii() and (
                text[self.pos].isalnum() or text[self.pos] == "_"):
            raise self.error("unexpected character in a duration", self.line, self.col)
        ns = exact + int(round(total))
        if ns > TIME_MAX_NS:
            raise self.error("duration is out of range", line, col)
        return Token("time", ns, line, col, prefix + text[start:self.pos])

    def _string(self, line: int, col: int) -> Token:
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        newline = self.text.find("\n", self.pos + 1)
        if end < 0 or (0 <= newline < end):
            raise self.error("string is never closed on its line", line, col)
        body = self.text[self.pos + 1:end]
        self._check_span(self.pos + 1, end, False)
        if len(body) > 200:
            raise self.error("string longer than 200 characters", line, col)
        self._advance(end + 1 - self.pos)
        return Token("str", body, line, col, quote + body + quote)


def tokenize(text: str, source: str | None = None) -> list[Token]:
    """Tokens of `text`, ending with an "eof" token; raises LogicError at the first bad one."""
    return Lexer(text, source).tokens()

"""The fenced blocks of README.md and docs/*.md, with their doc-test markers.

A marker is an HTML comment on the line(s) just before a fence, invisible when rendered:

    <!-- doc-test: duration 1; expect-output -->

Vocabulary (directives separated by `;`):
- `skip REASON`   not run; the reason (required) runs to the end of the line, so `skip`
                  comes last.
- `fragment`      a YAML snippet that is part of a board: merged over edge/boards/sim_arm.yaml
                  (its top-level keys replace the board's) and loaded with the board loader.
- `file NAME`     the block's text is written to NAME in the page's scratch directory before
                  the page's commands run; not loaded by itself (the commands do that).
- `duration S`    in a command block, `edge run` gets `--duration S` (replacing the one shown,
                  or added when none is shown: a run without one lasts until Ctrl-C).
- `needs-broker`  a command block run against a real mosquitto; `mqtt://127.0.0.1:1883`
                  becomes that broker's URL.
- `expect-output` an output block: the output of the last `edge` command or Python example
                  run before it must have this shape (`shape_mismatch`); when the block just
                  before ends in `./dev run ARGS`, `edge run ARGS` is run for it.
- `usage`         a synopsis: every `edge ...` line lists exactly the options the command's
                  parser has.
- `setup`         the lines after it, up to `-->`, are Python run before the block (names a
                  snippet uses but does not define, e.g. a built `runtime`).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVES = ("skip", "fragment", "file", "duration", "needs-broker", "expect-output",
              "usage", "setup")

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)\s*$")
_MARKER_START = "<!-- doc-test:"


@dataclass
class Block:
    page: str                  # path relative to the repository
    line: int                  # 1-based line of the opening fence
    lang: str                  # info string ("" for a plain block)
    text: str
    directives: dict[str, str] = field(default_factory=dict)
    setup: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def has(self, name: str) -> bool:
        return name in self.directives


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _parse_marker(lines: list[str], where: str) -> tuple[dict[str, str], str]:
    """Directives and setup code from the comment lines (first line starts the marker)."""
    body = "\n".join(lines)
    body = body[body.index(_MARKER_START) + len(_MARKER_START):]
    if not body.rstrip().endswith("-->"):
        raise ValueError(f"{where}: a doc-test marker must end with '-->'")
    body = body.rstrip()[:-3]
    head, _, rest = body.partition("\n")
    directives: dict[str, str] = {}
    head, skip, reason = head.partition("skip ")     # a reason runs to the end of the line
    if skip:
        directives["skip"] = reason.strip()
    for item in filter(None, (part.strip() for part in head.split(";"))):
        name, _, arg = item.partition(" ")
        if name not in DIRECTIVES:
            raise ValueError(f"{where}: unknown doc-test directive {name!r} "
                             f"(known: {', '.join(DIRECTIVES)})")
        directives[name] = arg.strip()
    if "skip" in directives and not directives["skip"]:
        raise ValueError(f"{where}: 'skip' needs a reason")
    setup = rest if "setup" in directives else ""
    if rest.strip() and "setup" not in directives:
        raise ValueError(f"{where}: lines after the directives belong only to 'setup'")
    return directives, setup


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one page, in order, each with the marker right before it."""
    rel = str(page.relative_to(ROOT))
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, fence, indent = i, m["fence"], len(m["indent"])
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1                                        # the closing fence
        block = Block(rel, start + 1, m["lang"], "\n".join(body) + "\n")
        j = start - 1                                  # the marker: the comment just above
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and lines[j].rstrip().endswith("-->"):
            k = j
            while k >= 0 and _MARKER_START not in lines[k] and "<!--" not in lines[k]:
                k -= 1
            if k >= 0 and _MARKER_START in lines[k]:
                block.directives, block.setup = _parse_marker(lines[k:j + 1], block.where)
        out.append(block)
    return out


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


# -- output shape ---------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d[\d,_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?%?")
_HEX = re.compile(r"[0-9a-f]{16,}")
_SECTION_LINE = re.compile(r"^(?P<name>[a-z_]+): (?P<items>.+)$")


def _split_items(text: str) -> list[str]:
    """'k v, k [a, b], k v' -> ['k v', 'k [a, b]', 'k v'] (commas inside brackets kept)."""
    items, depth, cur = [], 0, ""
    i = 0
    while i < len(text):
        c = text[i]
        depth += c in "[({"
        depth -= c in "])}"
        if depth == 0 and text.startswith(", ", i):
            items.append(cur)
            cur = ""
            i += 2
            continue
        cur += c
        i += 1
    return [*items, cur]


def line_pattern(expected: str) -> re.Pattern:
    """A regex for one expected output line: numbers and long hex strings match any value
    (timings and counts vary from run to run); in a summary line `name: key value, ...`
    only the keys and their order count (a state word changes with the run's length), and
    a key shown as `None` may be absent: once set, its value can be a mapping, which the
    one-line summary leaves out (`edge run` prints those in full in --stats-json only)."""
    m = _SECTION_LINE.match(expected)
    if m and len(_split_items(m["items"])) > 1:
        regex, sep = re.escape(m["name"]) + ": ", ""
        for item in _split_items(m["items"]):
            key, _, value = item.partition(" ")
            piece = f"{sep}{re.escape(key)} .+?"
            if value == "None":
                regex += f"(?:{piece})?"
                sep = "(?:, )?" if not sep else sep
            else:
                regex += piece
                sep = ", "
        return re.compile(regex + "$")
    out = []
    for token in expected.split():
        bare = token.strip("()[],;:=")
        if bare and (_NUMBER.fullmatch(bare) or _HEX.fullmatch(bare)):
            lead = token[:token.index(bare)]
            trail = token[token.index(bare) + len(bare):]
            out.append(re.escape(lead) + r"\S+?" + re.escape(trail))
        else:
            out.append(re.escape(token))
    return re.compile(r"\s+".join(out) + "$")


def shape_mismatch(expected: str, actual: str) -> str | None:
    """None when every expected line (blank lines and '...' aside) matches an actual line,
    in order; else which expected line has no counterpart."""
    actual_lines = [line.strip() for line in actual.splitlines() if line.strip()]
    pos = 0
    for line in (x.strip() for x in expected.splitlines()):
        if not line or line == "...":
            continue
        pattern = line_pattern(line)
        while pos < len(actual_lines) and not pattern.match(actual_lines[pos]):
            pos += 1
        if pos == len(actual_lines):
            return f"no line of the output has the shape of {line!r}"
        pos += 1
    return None


# -- command synopses ------------------------------------------------------------------

def option_mismatch(synopsis: str) -> str | None:
    """None when `edge SUB ... [--opt ...]` lists exactly the options of that command's
    parser; a NAME placeholder for a subcommand (`edge bench NAME`) stands for each one,
    and then the options shown must be common to all of them."""
    from edge.cli import build_parser

    parsers: list[argparse.ArgumentParser] = [build_parser()]
    path = []
    for word in synopsis.split()[1:]:
        subs = [a for a in parsers[0]._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word.startswith(("-", "[")):
            break
        if word in subs[0].choices:
            parsers = [subs[0].choices[word]]
        elif word.isupper():
            parsers = list(subs[0].choices.values())
        else:
            break
        path.append(word)
    documented = set(re.findall(r"--[a-z][\w-]*", synopsis))
    options = [{o for a in p._actions for o in a.option_strings
                if o.startswith("--") and o != "--help"} for p in parsers]
    if len(options) == 1 and documented != options[0]:
        return (f"`edge {' '.join(path)}` options differ from the docs: missing in the docs "
                f"{sorted(options[0] - documented)}, unknown to edge "
                f"{sorted(documented - options[0])}")
    unknown = documented - set.intersection(*options)
    if unknown:
        return f"`edge {' '.join(path)}`: not an option of every one: {sorted(unknown)}"
    return None

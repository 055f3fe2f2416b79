"""Every command and code example in README.md and docs/*.md, run as a new user would.

Per page, in order, in a scratch directory that holds `boards/`, `examples/` and `.venv/`
(links into this checkout): shell blocks run their `edge ...` commands against the
installed package (`./dev ...` commands, which install things, are checked, not run: the
subcommand exists and `edge` accepts the options); Python blocks run in a subprocess;
YAML board snippets are loaded with the board loader; output blocks marked
`expect-output` are compared, by shape, with a real run of the command above them.
Markers are described in doc_blocks.py. A doc that drifts from the code fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docs.doc_blocks import (
    ROOT,
    Block,
    all_blocks,
    blocks,
    option_mismatch,
    pages,
    shape_mismatch,
)

# Fewer than this many executed examples means examples were deleted or lost their
# language tag: the harness would then pass on docs that show nothing runnable.
MIN_EXECUTED = 32           # 36 when this was written
TIMEOUT_S = 60
SHELL_LANGS = ("sh", "console", "bash", "shell")
VENV = Path(sys.prefix)
EDGE_EXE = Path(sys.executable).with_name("edge")


def _dev_subcommands() -> set[str]:
    """The subcommands the `dev` script's case statement knows."""
    text = (ROOT / "dev").read_text()
    case = text[text.index('case "$cmd" in'):]
    return set(re.findall(r"^\s+([a-z]+)\)", case, re.M))


def _executed(block: Block) -> bool:
    if block.has("skip"):
        return False
    return (block.lang in (*SHELL_LANGS, "python", "yaml") or block.has("expect-output")
            or block.has("usage") or block.has("file"))


# -- running one page ---------------------------------------------------------------------

class Page:
    """The scratch directory and environment one page's examples share."""

    def __init__(self, tmp: Path, broker_url: str | None) -> None:
        self.dir = tmp
        for name in ("boards", "examples"):
            (tmp / name).symlink_to(ROOT / name)
        (tmp / ".venv").symlink_to(VENV)
        self.env = {**os.environ, "EDGE_STATE_DIR": str(tmp / "state"),
                    "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(tmp)}
        self.broker_url = broker_url
        self.last_output: tuple[str, int] | None = None   # (stdout + stderr, rc)
        self.pending: tuple[list[str], dict] | None = None   # edge run awaiting expect-output

    def run(self, argv: list[str], where: str, *, shell: bool = False,
            env: dict[str, str] | None = None) -> tuple[str, int]:
        try:
            proc = subprocess.run(argv if not shell else argv[0], shell=shell, cwd=self.dir,
                                  env={**self.env, **(env or {})}, capture_output=True, text=True,
                                  timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where}: {' '.join(argv)} ran longer than {TIMEOUT_S} s")
        return proc.stdout + proc.stderr, proc.returncode


_MISSES = re.compile(r"^board .*: \d+ ticks, .*?(\d+) deadline misses", re.M)


def _succeeded(output: str, rc: int) -> bool:
    """Exit 0; or a real-time run that got to its summary with deadline misses: on a
    machine loaded by other work a LET task can miss its deadline and fault the arm, a
    property of the machine, not drift in the docs (the shape check still applies)."""
    if rc == 0:
        return True
    m = _MISSES.search(output)
    return bool(m and int(m[1]) > 0 and "(realtime," in output)


def _logical_lines(text: str, lang: str) -> list[str]:
    """Command lines: prompts removed, backslash continuations joined, blanks dropped."""
    out: list[str] = []
    cur = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if lang == "console":
            if not line.startswith("$ ") and not cur:
                continue                 # output shown in a console block
            line = line[2:] if line.startswith("$ ") else line
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        line, cur = cur + line, ""
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def _rewrite_edge_args(args: list[str], block: Block, page: Page, *, runs: bool) -> list[str]:
    args = list(args)
    if block.has("duration") and args[:1] == ["run"]:
        if "--duration" in args:
            args[args.index("--duration") + 1] = block.directives["duration"]
        else:
            args += ["--duration", block.directives["duration"]]
    if block.has("needs-broker"):
        assert page.broker_url, f"{block.where}: needs-broker without a broker"
        args = [page.broker_url if a == "mqtt://127.0.0.1:1883" else a for a in args]
    if runs and args[:1] == ["run"] and "--duration" not in args:
        pytest.fail(f"{block.where}: `edge {' '.join(args)}` runs until Ctrl-C; give the "
                    "block a `duration` marker")
    return args


def _check_parses(args: list[str], where: str) -> None:
    from edge.cli import build_parser

    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"{where}: edge does not accept `{' '.join(args)}` (exit {exc.code})")


def run_shell(block: Block, page: Page, followed_by_output: bool) -> None:
    lines = _logical_lines(block.text, block.lang)
    assert lines, f"{block.where}: a shell block without a command"
    page.pending = None
    for n, line in enumerate(lines):
        last = n == len(lines) - 1
        for part in re.split(r"\s&&\s", line):
            tokens = shlex.split(part, comments=True)
            if not tokens:
                continue
            env = {}
            while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):
                name, _, value = tokens.pop(0).partition("=")
                env[name] = str(page.dir / value) if value.startswith("./") else value
            exe, args = tokens[0], tokens[1:]
            if exe in ("edge", ".venv/bin/edge"):
                args = _rewrite_edge_args(args, block, page, runs=True)
                if last and followed_by_output:
                    page.pending = (args, env)
                    continue
                output, rc = page.run([str(EDGE_EXE), *args], block.where, env=env)
                assert _succeeded(output, rc), f"{block.where}: `{part}` exited {rc}:\n{output}"
                page.last_output = (output, rc)
            elif exe == "./dev":
                assert args and args[0] in _dev_subcommands(), \
                    f"{block.where}: ./dev has no subcommand {args[:1]}"
                if args[0] in ("run", "bench"):
                    runs = last and followed_by_output and args[0] == "run"
                    edge_args = _rewrite_edge_args(args, block, page, runs=runs)
                    _check_parses(edge_args, block.where)
                    if runs:
                        page.pending = (edge_args, env)   # ./dev run = edge run after set-up
            elif exe in ("cp", "gcc", "mkdir", "sed", "ls", "chmod", "python"):
                output, rc = page.run([part], block.where, shell=True)
                assert rc == 0, f"{block.where}: `{part}` exited {rc}:\n{output}"
                page.last_output = (output, rc)
            elif exe in ("git", "cd"):
                continue                  # getting the sources: what this checkout is
            else:
                pytest.fail(f"{block.where}: the docs test does not know `{exe}`: run it "
                            "here or mark the block `skip REASON`")


def run_python(block: Block, page: Page, index: int) -> None:
    script = page.dir / f"doc_example_{index}.py"
    script.write_text(f"{block.setup}\n# --- {block.where}\n{block.text}")
    output, rc = page.run([sys.executable, str(script)], block.where)
    assert rc == 0, f"{block.where}: the example failed (exit {rc}):\n{output}"
    page.last_output = (output, rc)


def load_yaml_block(block: Block, page: Page, index: int) -> None:
    from edge.config import load_board
    from edge.errors import ConfigError

    text = block.text
    if block.has("fragment"):
        base = yaml.safe_load((ROOT / "edge/boards/sim_arm.yaml").read_text())
        snippet = yaml.safe_load(text)
        assert isinstance(snippet, dict), f"{block.where}: a fragment must be a mapping"
        text = yaml.safe_dump({**base, **snippet}, sort_keys=False)
    path = page.dir / f"doc_board_{index}.yaml"
    path.write_text(text)
    try:
        load_board(str(path))
    except ConfigError as exc:
        pytest.fail(f"{block.where}: the board loader refuses the snippet: {exc.one_line()}")


def check_usage(block: Block) -> None:
    joined = " ".join(block.text.split())       # a synopsis may wrap over lines
    starts = [m.start() for m in re.finditer(r"(?:^| )edge ", joined)]
    assert starts, f"{block.where}: a usage block without an `edge ...` line"
    for start in starts:
        problem = option_mismatch(joined[start:].split(" edge ")[0].strip())
        assert problem is None, f"{block.where}: {problem}"


def check_output(block: Block, page: Page) -> None:
    if page.pending is not None:
        (args, env), page.pending = page.pending, None
        page.last_output = page.run([str(EDGE_EXE), *args], block.where, env=env)
    assert page.last_output is not None, \
        f"{block.where}: expect-output without a command or example before it"
    output, rc = page.last_output
    wants_error = "error:" in block.text
    shown = "an error" if wants_error else "success"
    assert (not _succeeded(output, rc)) == wants_error, \
        f"{block.where}: exit code {rc}, but the docs show {shown}:\n{output}"
    problem = shape_mismatch(block.text, output)
    assert problem is None, f"{block.where}: {problem}; the output was:\n{output}"


def run_page(page_path: Path, tmp_path: Path, broker_url: str | None) -> int:
    page = Page(tmp_path, broker_url)
    page_blocks = blocks(page_path)
    for b in page_blocks:                 # files first: commands anywhere on the page use them
        if b.has("file") and not b.has("skip"):
            target = page.dir / b.directives["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.text)
    executed = 0
    for i, b in enumerate(page_blocks):
        if not _executed(b):
            continue
        executed += 1
        nxt = page_blocks[i + 1] if i + 1 < len(page_blocks) else None
        followed = nxt is not None and nxt.has("expect-output") and not nxt.has("skip")
        if b.has("usage"):
            check_usage(b)
        elif b.has("expect-output"):
            check_output(b, page)
        elif b.has("file"):
            continue                      # written above; the commands that use it check it
        elif b.lang in SHELL_LANGS:
            run_shell(b, page, followed)
        elif b.lang == "python":
            run_python(b, page, i)
        elif b.lang == "yaml":
            load_yaml_block(b, page, i)
    return executed


@pytest.mark.parametrize("page_path", pages(), ids=lambda p: p.name)
def test_page_examples_run(page_path: Path, tmp_path: Path, request) -> None:
    broker_url = None
    if any(b.has("needs-broker") and not b.has("skip") for b in blocks(page_path)):
        broker_url = request.getfixturevalue("mosquitto").url
    executed = run_page(page_path, tmp_path, broker_url)
    assert executed == sum(map(_executed, blocks(page_path)))


def test_enough_examples_are_executed() -> None:
    """Deleting the examples (or every language tag) must fail, not pass vacuously; every
    skipped block says why."""
    found = all_blocks()
    executed = [b for b in found if _executed(b)]
    assert len(executed) >= MIN_EXECUTED, \
        f"only {len(executed)} doc examples are executed (minimum {MIN_EXECUTED})"
    for b in found:
        if b.has("skip"):
            assert len(b.directives["skip"]) >= 10, f"{b.where}: say why it is skipped"

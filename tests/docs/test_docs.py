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

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docs.doc_blocks import ROOT, Block, all_blocks, blocks, pages, shape_mismatch

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


# -- references ---------------------------------------------------------------------------

_LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+)(#[^)]*)?\)")
_PATH = re.compile(r"`((?:edge|native|tests|hil|examples|docs|boards|\.ci)/[\w./-]*\.\w+)`")
_BARE_MD = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")


@pytest.mark.parametrize("page_path", pages(), ids=lambda p: p.name)
def test_references_exist(page_path: Path) -> None:
    """Links, file paths in code spans and *.md names point at files of this checkout."""
    text = page_path.read_text(encoding="utf-8")
    missing = []
    for target, _anchor in _LINK.findall(text):
        if not (page_path.parent / target).exists():
            missing.append(target)
    for path in _PATH.findall(text):
        path = re.sub(r"/\.\w+$", "", path)     # `native/arm_model.h/.c`: both files
        if not (ROOT / path).exists():
            missing.append(path)
    for name in _BARE_MD.findall(text):
        if name != "README.md" and not (ROOT / name).exists() \
                and not (ROOT / "docs" / name).exists():
            missing.append(name)
    assert not missing, f"{page_path.name} refers to what this checkout lacks: {missing}"


# -- board fields -------------------------------------------------------------------------

# Where each board section's fields are documented; the fields are the ones the section's
# parser accepts, as its own "unknown field" error lists them.
FIELD_PAGES = {
    "cycle": ("cycle: {doc_test_unknown: 1}", "board-file.md"),
    "axes": ("axes: [{name: a, max_velocity: 1, max_acceleration: 1, doc_test_unknown: 1}]",
             "board-file.md"),
    "bus": ("bus: {doc_test_unknown: 1}", "bus.md"),
    "mqtt": ("mqtt: {url: 'mqtt://127.0.0.1', doc_test_unknown: 1}", "bus.md"),
    "logic": ("logic: {doc_test_unknown: 1}", "logic.md"),
    "acquisition": ("acquisition: {doc_test_unknown: 1}", "acquisition.md"),
    "safety": ("safety: {doc_test_unknown: 1}", "motion-safety.md"),
}


@pytest.mark.parametrize("section", FIELD_PAGES)
def test_every_board_field_is_documented(section: str) -> None:
    """A field the parser accepts but the reference does not name is undocumented."""
    from edge.config import parse_board
    from edge.errors import ConfigError

    snippet, page = FIELD_PAGES[section]
    base = yaml.safe_load((ROOT / "edge/boards/sim_arm.yaml").read_text())
    base.pop(section, None)
    text = yaml.safe_dump(base, sort_keys=False) + snippet + "\n"
    if section == "axes":
        text = yaml.safe_dump({"name": "doc"}) + snippet + "\n"
    with pytest.raises(ConfigError) as info:
        parse_board(text, "doc.yaml")
    m = re.search(r"expected one of: ([^)]*)\)", str(info.value))
    assert m, f"{section}: no field list in {info.value}"
    fields = [f.strip() for f in m[1].split(",")]
    doc = (ROOT / "docs" / page).read_text(encoding="utf-8")
    missing = [f for f in fields if not re.search(rf"`{re.escape(f)}`|\b{re.escape(f)}:", doc)]
    assert not missing, f"docs/{page} does not document {section} fields {missing}"


def test_readme_command_table_matches_the_parsers() -> None:
    """Each `edge ...` row of the README's command table lists that command's options."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(edge [^`]*)` \|", readme, re.M)
    assert {r.split()[1] for r in rows} >= {"run", "check", "bench"}, rows
    for row in rows:
        problem = option_mismatch(row.replace("\\|", "|"))
        assert problem is None, f"README.md command table: {problem}"


def test_readme_layout_matches_the_tree() -> None:
    """The README's Layout names what exists, and every package and top-level folder."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    block = layout[layout.index("```\n") + 4:]
    block = block[:block.index("```")]
    named = {line.split()[0].rstrip("/") for line in block.splitlines()
             if line.strip() and not line.startswith(" ")}
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, f"README Layout names what does not exist: {missing}"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    folders = {p.split("/")[0] for p in tracked if "/" in p} - {"boards"}
    packages = {"/".join(p.split("/")[:2]) for p in tracked
                if p.startswith("edge/") and p.count("/") >= 2}
    unnamed = sorted(f for f in folders | packages
                     if not any(n == f or n.startswith(f + "/") for n in named))
    assert not unnamed, f"README Layout leaves out {unnamed}"
    docs = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    listed = set(re.findall(r"\((docs/[\w-]+\.md)\)", readme[readme.index("## Documentation"):]))
    assert docs == listed, f"README Documentation list differs: {sorted(docs ^ listed)}"


def test_readme_dependency_table_matches_pyproject() -> None:
    """Every dependency the package declares is in the README's "why this one" table."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    names = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower() for d in declared}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Dependencies"):readme.index("## Layout")].lower()
    missing = sorted(n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])",
                                                       table))
    assert not missing, f"README Dependencies table leaves out {missing}"


# Every field name a section parser accepts anywhere (nested mappings included), found in
# its source: the string arguments of `node.only(...)` and the tuples it is given.
PARSER_PAGES = {
    "edge/config.py": "board-file.md",
    "edge/motion/config.py": "motion-kinematics.md",
    "edge/motion/safety.py": "motion-safety.md",
    "edge/motion/program.py": "motion-controller.md",
    "edge/logic/config.py": "logic.md",
    "edge/acquisition/config.py": "acquisition.md",
    "edge/rt/bus_config.py": "bus.md",
}


def _accepted_fields(source: Path) -> set[str]:
    import ast

    tree = ast.parse(source.read_text())
    constants: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = {
                c.value for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    for node in tree.body:                               # COMMON + ("x",): one level deep
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            for n in ast.walk(node.value):
                if isinstance(n, ast.Name) and n.id in constants:
                    constants[node.targets[0].id] |= constants[n.id]
    fields: set[str] = set()
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "only"):
            continue
        for arg in call.args:
            inner = arg.value if isinstance(arg, ast.Starred) else arg
            for n in ast.walk(inner):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    fields.add(n.value)
                elif isinstance(n, ast.Name) and n.id in constants:
                    fields |= constants[n.id]
    if "STEP_FIELDS" in constants:                       # program steps: a dict of fields
        fields |= constants["STEP_FIELDS"]
    return fields


def _code_text(markdown: str) -> str:
    """What a page shows as code: fenced blocks and `code spans`."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))
    return "\n".join(fenced + spans)


@pytest.mark.parametrize("source", PARSER_PAGES)
def test_every_nested_board_field_is_documented(source: str) -> None:
    fields = _accepted_fields(ROOT / source)
    assert fields, f"{source}: no fields found; the scan no longer fits the parser"
    page = PARSER_PAGES[source]
    code = _code_text((ROOT / "docs" / page).read_text(encoding="utf-8"))
    missing = sorted(f for f in fields if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])",
                                                         code))
    assert not missing, f"docs/{page} does not document fields {missing} ({source})"

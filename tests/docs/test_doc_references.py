"""What the docs name must exist and what the code accepts must be documented: links,
anchors and file paths; every board field a parser accepts; the README's command table,
dependency table, Layout and Documentation list."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.docs.doc_blocks import ROOT, option_mismatch, pages

_LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+)(#[^)]*)?\)")
_PATH = re.compile(r"`((?:edge|native|tests|hil|examples|docs|boards|\.ci)/[\w./-]*\.\w+)`")
_BARE_MD = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")


def _anchors(page: Path) -> set[str]:
    """The heading anchors a renderer makes (GitHub's rule: lower case, punctuation out,
    spaces to hyphens)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(),
                                                flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page_path", pages(), ids=lambda p: p.name)
def test_references_exist(page_path: Path) -> None:
    """Links, file paths in code spans and *.md names point at files of this checkout."""
    text = page_path.read_text(encoding="utf-8")
    missing = []
    for target, anchor in _LINK.findall(text):
        path = page_path.parent / target
        if not path.exists():
            missing.append(target)
        elif anchor and path.suffix == ".md" and anchor[1:] not in _anchors(path):
            missing.append(target + anchor)
    for anchor in re.findall(r"\]\((#[^)]+)\)", text):
        if anchor[1:] not in _anchors(page_path):
            missing.append(anchor)
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
    "record": ("record: {dir: rec, doc_test_unknown: 1}", "flight-recorder.md"),
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
    "edge/motion/arm_sim.py": "motion-kinematics.md",
    "edge/motion/cia402_sim.py": "motion-drives.md",
    "edge/motion/safety.py": "motion-safety.md",
    "edge/motion/program.py": "motion-controller.md",
    "edge/logic/config.py": "logic.md",
    "edge/acquisition/config.py": "acquisition.md",
    "edge/acquisition/sources/simulated.py": "acquisition.md",
    "edge/rt/bus_config.py": "bus.md",
    "edge/rt/recorder.py": "flight-recorder.md",
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
    if "STEPS" in constants:          # program steps: their fields are the motion requests'
        from edge.motion.program import STEPS

        fields |= set(STEPS) | {f for step in STEPS.values() if step for f in step.fields}
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

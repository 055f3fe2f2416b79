"""`edge hil run`'s progress: on a terminal, a bar per scenario file and one for the
campaign (rich); elsewhere (a CI log, a pipe), only the line per finished run."""

from __future__ import annotations

import io
import re

import pytest

from hil.reports import Progress
from hil.runner import RunResult

rich_console = pytest.importorskip("rich.console", reason="rich comes with the test extra")

FILES = {"/s/collision_link3.yaml": 2, "/s/estop_during_move.yaml": 1}


def _results() -> list[tuple[RunResult, str]]:
    ok = [RunResult(f"collision_link3[torque_nm={t}]", "collision_link3",
                    "/s/collision_link3.yaml", i, {"torque_nm": t}, 0, ticks=1200,
                    sha256="ab" * 32) for i, t in enumerate((30, 60))]
    bad = RunResult("estop_during_move", "estop_during_move", "/s/estop_during_move.yaml",
                    0, {}, 0, ticks=1600, error="estop_during_move.yaml:3: no board 'x'")
    return [(r, r.file) for r in (*ok, bad)]


def _console(terminal: bool) -> tuple[io.StringIO, object]:
    out = io.StringIO()
    return out, rich_console.Console(file=out, force_terminal=terminal, width=100,
                                     color_system=None, highlight=False)


def test_on_a_terminal_each_file_and_the_campaign_have_a_bar_that_ends_full():
    out, console = _console(True)
    with Progress(3, FILES, console=console) as progress:
        for result, file in _results():
            progress.show(result, file)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", out.getvalue())   # cursor moves
    last = {}
    for line in text.replace("\r", "\n").splitlines():   # the final frame of each bar
        for name in ("collision_link3.yaml", "estop_during_move.yaml", "all runs"):
            if line.strip().startswith(name):
                last[name] = line.split()[-1]
    assert last == {"collision_link3.yaml": "2/2", "estop_during_move.yaml": "1/1",
                    "all runs": "3/3"}, text
    assert "[3/3] ERROR estop_during_move" in text and "[1/3] PASS" in text


def test_off_a_terminal_only_the_lines_are_written():
    out, console = _console(False)
    with Progress(3, FILES, console=console) as progress:
        for result, file in _results():
            progress.show(result, file)
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["[1/3]", "PASS", "collision_link3[torque_nm=30]:"],
        ["[2/3]", "PASS", "collision_link3[torque_nm=60]:"],
        ["[3/3]", "ERROR", "estop_during_move:"],
        ["estop_during_move.yaml:3:", "no", "board"]]          # the run's error under it

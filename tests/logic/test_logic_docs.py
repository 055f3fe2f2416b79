"""The examples in docs/logic.md compile and behave as the text says."""

import re
from pathlib import Path

from edge.config import parse_board
from edge.logic import compile_expression, compile_program

DOC = (Path(__file__).resolve().parents[2] / "docs" / "logic.md").read_text()


def blocks(lang):
    """Fenced blocks opened with ```lang (in order), read line by line."""
    out, current, inside = [], None, False
    for line in DOC.splitlines(keepends=True):
        if line.startswith("```"):
            if inside:
                if current is not None:
                    out.append("".join(current))
                current, inside = None, False
            else:
                inside = True
                current = [] if line.strip() == f"```{lang}" else None
        elif inside and current is not None:
            current.append(line)
    return out


def test_python_example_expression():
    code = blocks("python")[0]
    text = re.search(r'compile_expression\("(.*?)",\s*\n?\s*(\{.*?\})\)', code, re.S)
    ok = compile_expression(text.group(1), {"speed": "REAL", "estop": "BOOL",
                                            "door_closed": "BOOL"})
    assert ok({"speed": 0.2, "estop": False, "door_closed": True}) is True
    assert ok({"speed": 0.2, "estop": True, "door_closed": True}) is False


def test_program_example_runs():
    text = next(b for b in blocks("") if "WHEN t_hot.Q" in b)
    prog = compile_program(text, {"temp": "REAL", "force": "REAL", "door_closed": "BOOL"},
                           period_ns=100_000_000)                  # 100 ms scans
    fired = []
    for tick in range(40):
        inputs = {"temp": 70.0 if tick >= 5 else 20.0, "force": 50.0 if tick >= 30 else 0.0,
                  "door_closed": False}
        r = prog.scan(inputs, tick)
        fired += [(tick, name, r.stop_category) for _, name in r.events]
    # overheat: TRUE from tick 5, TON 2 s = 20 scans -> tick 25; force: from 30, 200 ms -> 32
    assert fired == [(25, "overheat", 2), (32, "force_with_door_open", 1)]
    assert prog.outputs() == {"lamp": True}
    assert prog.vars["n"] == 1


def test_board_example_parses():
    section = next(b for b in blocks("yaml") if b.startswith("logic:"))
    section = "".join(line for line in section.splitlines(keepends=True)
                      if "program_file" not in line)
    board = ("name: t\naxes:\n  - {name: a, max_velocity: 1.0, max_acceleration: 1.0}\n"
             + section)
    parsed = parse_board(board, "doc.yaml").sections["logic"]
    assert parsed.period_ticks == 10 and parsed.deadline_ticks == 5
    assert [s.name for s in parsed.signals] == ["q0", "cat", "door", "temp", "flow"]
    assert parsed.program.on_bad["flow"].policy == "substitute"
    assert parsed.signals[3].max_age_ms == 500.0


def test_quality_example_runs():
    text = next(b for b in blocks("") if "STALE(pressure" in b)
    prog = compile_program(text, {"pressure": "REAL"}, on_bad={})
    assert prog.scan({"pressure": 300.0, "pressure.good": True, "pressure.age": 0},
                     0).events == [(1, "overpressure")]
    lost = prog.scan({"pressure": 300.0, "pressure.good": True, "pressure.age": 600_000_000},
                     1).events
    assert lost == [(0, "pressure_sensor_lost")]

"""`edge bench fuzz` end to end, tiny: atheris runs one target and the baseline in their
own processes and the report carries the figures the campaign asks for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("atheris", reason="the fuzz bench needs the fuzz extra")


@pytest.mark.slow
def test_bench_reports_inputs_crashes_hangs_rate_and_corpus(tmp_path):
    out = tmp_path / "fuzz.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "bench", "fuzz", "--target", "serial_binary,usage",
         "--jobs", "2", "--runs", "300", "--artifacts", str(tmp_path / "art"),
         "--json", str(out)],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert [row["target"] for row in data["targets"]] == ["serial_binary", "usage"]
    assert data["jobs"] == 2 and data["baseline"]["executed"] >= 300
    for row in data["targets"]:
        assert row["executed"] >= 300
        assert (row["crashes"], row["hangs"]) == (0, 0), row["findings"]
        assert row["exec_per_s"] > 0 and row["corpus"] >= 1
    assert "serial_binary" in proc.stdout and "usage" in proc.stdout
    assert "json exec/s" in proc.stdout


def test_an_unknown_target_is_one_line_naming_the_choices():
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "fuzz", "--target",
                           "board,nosuch"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "unknown nosuch" in proc.stderr and "journal" in proc.stderr
    assert "Traceback" not in proc.stderr

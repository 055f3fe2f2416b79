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
        [sys.executable, "-m", "edge.cli", "bench", "fuzz", "--target", "serial_binary",
         "--runs", "300", "--artifacts", str(tmp_path / "art"), "--json", str(out)],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    (row,) = data["targets"]
    assert row["target"] == "serial_binary"
    assert row["executed"] >= 300 and data["baseline"]["executed"] >= 300
    assert (row["crashes"], row["hangs"]) == (0, 0), row["findings"]
    assert row["exec_per_s"] > 0 and row["corpus"] >= 1
    assert "serial_binary" in proc.stdout and "json exec/s" in proc.stdout

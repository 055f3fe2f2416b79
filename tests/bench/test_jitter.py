"""`edge bench jitter` writes the figures in the promised shape (not a timing test)."""

import json
import subprocess
import sys


def test_jitter_json_has_every_contender(tmp_path):
    out = tmp_path / "j.json"
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "jitter", "--seconds",
                           "0.3", "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    for key in ("native", "uvloop"):
        assert set(data[key]) >= {"p50_us", "p99_us", "p999_us", "max_us", "samples"}
        assert data[key]["samples"] >= 250
        assert data[key]["p50_us"] <= data[key]["p99_us"] <= data[key]["p999_us"]
    assert "cyclictest" in data          # null when rt-tests is not installed
    assert 0 < data["native"]["busy_tail_cpu_fraction"] < 1
    assert "uvloop timer loop" in proc.stdout

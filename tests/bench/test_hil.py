"""`edge bench hil` writes its figures in the promised shape (not a timing test)."""

import json
import math
import subprocess
import sys


def test_hil_bench_json_shape_and_positive_figures(tmp_path):
    out = tmp_path / "h.json"
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "hil", "--seconds", "0.2",
                           "--rounds", "1", "--runs", "2", "--campaign-seconds", "0.1",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["ticks"] == 200                       # sim_arm: a 1 ms tick
    assert set(data["speed_x"]) == {"anchor", "recording", "recording_status"}
    assert all(v > 0 for v in data["speed_x"].values())
    assert set(data["recording_cost_us_per_tick"]) == {"recording", "recording_status"}
    # a difference of two timings: its sign is noise at this size, but it is a number
    assert all(math.isfinite(v) for v in data["recording_cost_us_per_tick"].values())
    campaign = data["campaign"]
    assert campaign["runs"] == 2
    assert set(campaign["runs_per_minute"]) == {"1", "2"}
    assert all(v > 0 for v in campaign["runs_per_minute"].values())
    assert campaign["jobs2_vs_jobs1"] > 0
    assert data["machine"]["cpus"] >= 1
    assert "anchor run_virtual" in proc.stdout and "--jobs 2" in proc.stdout


def test_hil_bench_refuses_silly_arguments():
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "hil", "--runs", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--runs" in proc.stderr

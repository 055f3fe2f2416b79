"""`edge bench acquisition` writes the figures in the promised shape (not a timing test)."""

import json
import subprocess
import sys


def test_acquisition_bench_json_shape(tmp_path):
    out = tmp_path / "a.json"
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "acquisition",
                           "--seconds", "0.3", "--rounds", "1", "--changes", "5",
                           "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["sampler_polls_per_s"] > 0 and data["raw_polls_per_s"] > 0
    raws = data["raw_polls_per_s_runs"]
    assert len(raws) == 2 and data["round_ratios"] == [data["ratio"]]
    assert abs(data["ratio"] - data["sampler_polls_per_s"] / (sum(raws) / 2)) < 1e-9
    untimed = data["untimed_raw_polls_per_s_runs"]
    assert len(untimed) == 1
    assert abs(data["untimed_raw_ratio"] - untimed[0] / (sum(raws) / 2)) < 1e-9
    lat = data["latency_register_to_bus"]
    assert lat["samples"] + lat["lost"] == 5 and lat["samples"] >= 1
    assert 0 < lat["min_us"] <= lat["p50_us"] <= lat["p99_us"] <= lat["max_us"]
    # under LET a change reaches the bus no sooner than the deadline D after the tick in
    # which it was read (which may have begun up to one period before the change)
    assert lat["min_us"] >= lat["task_ms"] * 1e3 - lat["period_us"]
    assert "through the sampler" in proc.stdout and "bare pymodbus loop" in proc.stdout


def test_bench_refuses_impossible_arguments():
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "acquisition",
                           "--seconds", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--seconds" in proc.stderr

"""`edge bench motion` writes its figures in the promised shape (not a timing test)."""

import json
import subprocess
import sys


def test_motion_bench_json_and_figures(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "motion", "--cases", "40",
                           "--grid", "300", "--ticks", "4000", "--collisions", "6", "--walls", "3",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    d = data["durations"]
    assert d["cases"] == 40
    assert d["ratio_max"] <= 1 + 1e-6 and d["ratio_min"] >= 1 - 1e-6
    assert d["slower_than_ruckig"] == 0 and d["limit_violations"] == 0
    assert d["end_state_errors"] == 0
    for key in ("ours_native", "ours_python_api", "ruckig_python"):
        q = data["planning"][key]
        assert 0 < q["p50_us"] <= q["p99_us"] <= q["max_us"]
    s = data["sampling"]
    assert s["ticks"] == 4000 and s["replan_tick"]["p50_us"] > 0
    assert "ruckig (python calculate)" in proc.stdout
    safety = data["safety"]
    assert safety["collision_cases"] == 6 and safety["missed_collisions"] == 0
    assert safety["min_wall_distance_m"] > 0 and safety["wall_faults"] == 0

"""`edge bench logic` writes the figures in the promised shape (not a timing test)."""

import json
import subprocess
import sys


def test_logic_bench_json_has_every_contender(tmp_path):
    out = tmp_path / "l.json"
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "logic", "--quick",
                           "--rules", "200", "--scans", "50", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    cases = {r["case"] for r in data["expressions"]}
    assert cases == {"interlock6", "window", "arith", "conditional"}
    for r in data["expressions"]:
        assert r["ours_ns"] > 0 and r["simpleeval_ns"] > 0 and r["cel_python_ns"] > 0
        assert r["vs_simpleeval"] > 0 and r["vs_cel_python"] > 0
    assert [s["churn"] for s in data["scan"]] == [False, True, False]
    for s in data["scan"]:
        assert s["rules"] == 200 and 0 < s["median_us"] <= s["p99_us"] <= s["max_us"]
    assert "simpleeval" in proc.stdout and "200 rules" in proc.stdout


def test_logic_bench_refuses_silly_arguments():
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "logic", "--rules", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--rules" in proc.stderr

"""The `edge` command as a user meets it: real subprocesses, real signals."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy

import edge

EDGE = [sys.executable, "-m", "edge.cli"]


def edge_cmd(*args, **kw):
    return subprocess.run([*EDGE, *args], capture_output=True, text=True, timeout=60, **kw)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_version():
    proc = edge_cmd("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"edge {edge.__version__}"


def test_virtual_run_writes_stats(tmp_path):
    stats = tmp_path / "stats.json"
    proc = edge_cmd("run", "--virtual-time", "--duration", "2", "--stats-json", str(stats))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(stats.read_text())
    assert data["ticks"] == 2000 and data["mode"] == "virtual"
    assert "2000 ticks" in proc.stdout


def test_sigterm_stops_cleanly_and_flushes_stats(tmp_path):
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([*EDGE, "run", "--stats-json", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)               # start-up (imports, board, blocks), then a few s of ticks
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    data = json.loads(stats.read_text())
    assert data["ticks"] > 500 and data["mode"] == "realtime"
    assert data["latency_us"]["samples"] == data["ticks"]
    assert "wake-up latency" in out


def test_check_accepts_the_shipped_board():
    proc = edge_cmd("check", "sim_arm")
    assert proc.returncode == 0 and "is valid" in proc.stdout


def test_unknown_board():
    assert_one_line_error(edge_cmd("run", "--board", "no_such_board"), "unknown board",
                          "sim_arm")


def test_missing_board_file(tmp_path):
    assert_one_line_error(edge_cmd("check", str(tmp_path / "x.yaml")), "not found")


def test_broken_board_names_file_line_and_field(tmp_path):
    board = tmp_path / "bad.yaml"
    board.write_text("name: bad\naxes:\n  - {name: j1, max_velocity: 1.0, max_acceleration: 2}\n"
                     "  - {name: j2, max_velocity: fast, max_acceleration: 2}\n")
    assert_one_line_error(edge_cmd("check", str(board)), f"{board}:4",
                          "axes[1].max_velocity", "expected float")


def test_impossible_period_in_benchmark():
    assert_one_line_error(edge_cmd("bench", "jitter", "--period-us", "5"), "impossible period")


def test_usage_error_is_one_line():
    assert_one_line_error(edge_cmd("run", "--duration", "-3"), "must be positive")


def test_missing_native_build_is_one_line(tmp_path):
    """A copy of the package without the compiled extension, as a broken install would be."""
    src = Path(edge.__file__).parent
    shutil.copytree(src, tmp_path / "edge", ignore=shutil.ignore_patterns("_native*", "*.so"))
    site_packages = Path(numpy.__file__).parent.parent
    # -S: no site hooks, so the editable install's finder cannot bring the real build back
    proc = subprocess.run([sys.executable, "-S", "-m", "edge.cli", "run", "--virtual-time"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PYTHONPATH": f"{tmp_path}:{site_packages}",
                               "PATH": "/usr/bin:/bin"})
    assert_one_line_error(proc, "native extension", "not built")

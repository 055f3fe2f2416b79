"""The `edge` command as a user meets it: real subprocesses, real signals."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

import edge
from edge.errors import EXIT_CODES

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
    deadline = time.monotonic() + 60
    for line in proc.stderr:        # start-up (imports, board, blocks) can take seconds
        if "running board sim_arm in real time" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)                 # let the run take SIGTERM over and tick a while
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    data = json.loads(stats.read_text())
    assert data["ticks"] > 0 and data["mode"] == "realtime"
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


def edge_from_a_copy(tmp_path, without: tuple[str, ...], *args):
    """`edge args` from a copy of the package without the files matching `without`, as a
    broken install would be."""
    shutil.copytree(Path(edge.__file__).parent, tmp_path / "edge",
                    ignore=shutil.ignore_patterns(*without))
    site_packages = Path(numpy.__file__).parent.parent
    # -S: no site hooks, so the editable install's finder cannot bring the real files back
    return subprocess.run([sys.executable, "-S", "-m", "edge.cli", *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PYTHONPATH": f"{tmp_path}:{site_packages}",
                               "PATH": "/usr/bin:/bin"})


def test_missing_native_build_is_one_line(tmp_path):
    proc = edge_from_a_copy(tmp_path, ("_native*", "*.so"), "run", "--virtual-time")
    assert_one_line_error(proc, "native extension", "not built")


def test_native_include_prints_the_directory_of_block_h():
    proc = edge_cmd("native", "--include")
    assert proc.returncode == 0, proc.stderr
    assert (Path(proc.stdout.strip()) / "block.h").is_file()
    assert_one_line_error(edge_cmd("native"), "edge native --include")


def test_missing_headers_are_one_line(tmp_path):
    # neither edge/include/ nor a native/ beside the package
    proc = edge_from_a_copy(tmp_path, ("include",), "native", "--include")
    assert_one_line_error(proc, "C headers are missing", "reinstall")


# -- setup errors: checked at start, one line, non-zero exit (issue 12, defect 12) -----

def run_for_long(*args, env=None, **kw):
    """`edge run` with a duration far beyond the subprocess timeout: an error reported
    only at the end of the run would fail here with TimeoutExpired."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*EDGE, "run", "--duration", "600", *args], capture_output=True,
                          text=True, timeout=60, env=full_env, **kw)


@pytest.mark.parametrize("duration", ["inf", "1e400", "nan", "-inf", "2e9"])
def test_duration_must_be_finite_and_bounded(duration):
    proc = edge_cmd("run", "--virtual-time", "--duration", duration)
    assert_one_line_error(proc, "--duration")
    assert proc.returncode == 2


@pytest.mark.parametrize("url, words", [("mqtt://[::1", "malformed"),
                                        ("mqtt://127.0.0.1:0", "bad port"),
                                        ("mqtt://256.1.1.1", "not a valid IP address"),
                                        ("http://127.0.0.1", "mqtt://")])
def test_bad_mqtt_url(url, words):
    proc = run_for_long("--mqtt", url)
    assert_one_line_error(proc, words)
    assert proc.returncode == 2


def test_virtual_time_with_mqtt_is_refused():
    proc = edge_cmd("run", "--virtual-time", "--duration", "1", "--mqtt", "mqtt://127.0.0.1")
    assert_one_line_error(proc, "--virtual-time", "--mqtt")
    assert proc.stdout == ""


def _mqtt_errors(proc):
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edge: error:")]
    assert len(errors) == 1 and proc.stdout == "", proc.stderr
    assert not [line for line in proc.stderr.splitlines() if not line.startswith("edge: ")]
    return errors[0]


def test_missing_or_malformed_credentials_are_refused_at_start(tmp_path):
    state = {"EDGE_STATE_DIR": str(tmp_path / "state")}
    line = _mqtt_errors(run_for_long("--mqtt", "mqtt://127.0.0.1:1", env={
        **state, "EDGE_MQTT_CREDENTIALS": str(tmp_path / "nope")}))
    assert "cannot read MQTT credentials" in line and "nope" in line
    bad = tmp_path / "creds"
    bad.write_text("no colon here\n")
    bad.chmod(0o600)
    line = _mqtt_errors(run_for_long("--mqtt", "mqtt://127.0.0.1:1", env={
        **state, "EDGE_MQTT_CREDENTIALS": str(bad)}))
    assert "user:password" in line and str(bad) in line


def test_missing_tls_files_are_refused_at_start(tmp_path):
    state = {"EDGE_STATE_DIR": str(tmp_path / "state")}
    line = _mqtt_errors(run_for_long("--mqtt", "mqtts://127.0.0.1:1", env={
        **state, "EDGE_MQTT_CA": str(tmp_path / "ca.pem")}))
    assert "ca_file" in line and "ca.pem" in line
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate\n")
    line = _mqtt_errors(run_for_long("--mqtt", "mqtts://127.0.0.1:1", env={
        **state, "EDGE_MQTT_CERT": str(cert), "EDGE_MQTT_KEY": str(tmp_path / "key.pem")}))
    assert "key_file" in line and "key.pem" in line
    (tmp_path / "key.pem").write_text("not a key either\n")
    line = _mqtt_errors(run_for_long("--mqtt", "mqtts://127.0.0.1:1", env={
        **state, "EDGE_MQTT_CERT": str(cert), "EDGE_MQTT_KEY": str(tmp_path / "key.pem")}))
    assert "TLS files cannot be loaded" in line


def test_unusable_state_directory_is_refused_at_start(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _mqtt_errors(run_for_long("--mqtt", "mqtt://127.0.0.1:1",
                                     env={"EDGE_STATE_DIR": str(blocker / "state")}))
    assert "state directory" in line and "not a directory" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any directory")
def test_read_only_state_directory_is_refused_at_start(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    line = _mqtt_errors(run_for_long("--mqtt", "mqtt://127.0.0.1:1",
                                     env={"EDGE_STATE_DIR": str(ro)}))
    assert "not writable" in line


def test_stats_json_empty_or_directory_is_refused_at_start(tmp_path):
    assert_one_line_error(edge_cmd("run", "--virtual-time", "--stats-json", ""), "empty")
    proc = edge_cmd("run", "--virtual-time", "--duration", "1", "--stats-json", str(tmp_path))
    assert_one_line_error(proc, str(tmp_path), "is a directory")
    assert proc.stdout == "" and list(tmp_path.parent.glob(tmp_path.name + ".tmp")) == []
    proc = edge_cmd("run", "--virtual-time", "--duration", "1",
                    "--stats-json", str(tmp_path / "no" / "s.json"))
    assert_one_line_error(proc, "no directory")


def test_world_readable_credentials_are_warned_about(tmp_path):
    creds = tmp_path / "creds"
    creds.write_text("unit7:secret\n")
    creds.chmod(0o644)
    proc = subprocess.run([*EDGE, "check", "sim_arm", "--mqtt", "mqtt://127.0.0.1"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EDGE_STATE_DIR": str(tmp_path / "s"),
                               "EDGE_MQTT_CREDENTIALS": str(creds)})
    assert proc.returncode == 0, proc.stderr
    assert f"credentials file {creds} is readable by group or others" in proc.stderr
    creds.chmod(0o600)
    proc = subprocess.run([*EDGE, "check", "sim_arm", "--mqtt", "mqtt://127.0.0.1"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EDGE_STATE_DIR": str(tmp_path / "s"),
                               "EDGE_MQTT_CREDENTIALS": str(creds)})
    assert proc.returncode == 0 and "readable by group" not in proc.stderr


def test_default_device_id_is_printed_at_start(tmp_path):
    proc = subprocess.run([*EDGE, "check", "sim_arm", "--mqtt", "mqtt://127.0.0.1"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EDGE_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    machine = Path("/etc/machine-id").read_text().strip()
    expected = "sim_arm-" + hashlib.sha256(f"{machine}\0sim_arm".encode()).hexdigest()[:8]
    assert f"device id {expected} (topics edge/v1/{expected}/" in proc.stderr


# -- the docs and the command agree (issue 12, item 15) -------------------------------

def test_virtual_time_without_duration_runs_ten_virtual_seconds(tmp_path):
    stats = tmp_path / "s.json"
    proc = edge_cmd("run", "--virtual-time", "--stats-json", str(stats))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(stats.read_text())["ticks"] == 10_000
    assert "10 s of virtual time" in " ".join(edge_cmd("run", "--help").stdout.split())


def test_minimum_documented_period_runs(tmp_path):
    board = tmp_path / "fast.yaml"
    board.write_text("name: fast\ncycle: {period_us: 50, lock_memory: false}\naxes:\n"
                     "  - {name: a, max_velocity: 1, max_acceleration: 2}\n")
    assert edge_cmd("check", str(board)).returncode == 0
    proc = edge_cmd("run", "--board", str(board), "--virtual-time", "--duration", "0.01")
    assert proc.returncode == 0 and "200 ticks" in proc.stdout, proc.stderr


def _interpreter_start_s() -> float:
    """How long this Python takes to start (site and the editable install's finder):
    edge's code cannot see a signal that arrives before it runs."""
    best = []
    for _ in range(2):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=30)
        best.append(time.monotonic() - t0)
    return max(best)


SCRIPT = [str(Path(sys.executable).parent / "edge")]     # the installed `edge` command


@pytest.mark.parametrize("command, sig, delay_s", [
    pytest.param(cmd, sig, delay, id=f"{name}-{sig.name}-{delay}s")
    for name, cmd, sig, delays in (
        ("module", EDGE, signal.SIGINT, (0.0, 0.1, 0.3, 0.5, 0.8, 1.2, 2.0)),
        ("script", SCRIPT, signal.SIGINT, (0.0, 0.3)),
        ("module", EDGE, signal.SIGTERM, (0.8, 1.5)))
    for delay in delays])
def test_signal_during_start_up_is_one_line(command, sig, delay_s, tmp_path):
    stats = tmp_path / "s.json"
    start_s = _interpreter_start_s()
    proc = subprocess.Popen([*command, "run", "--duration", "30", "--stats-json", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(start_s + delay_s)   # the moment of the signal is what is under test
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    if "Traceback" in err and str(Path(edge.__file__).parent) not in err:
        # no frame of edge's own: site, runpy or the script stub had the signal
        pytest.skip("the interrupt came while the Python interpreter itself started")
    if proc.returncode == -sig and delay_s == 0.0:
        pytest.skip("the signal came before the interpreter installed any handler")
    assert "Traceback" not in err, err
    early = {signal.SIGINT: (130, "edge: interrupted"), signal.SIGTERM: (143, "edge: terminated")}
    code, line = early[sig]
    # killed by the signal itself after the line (seen rarely when the signal lands as
    # the event loop starts): a shell reports that as 128 + signal too
    assert proc.returncode in (0, code, -sig), err
    if proc.returncode in (code, -sig):     # before the run took the signal over
        assert [x for x in err.splitlines() if x in ("edge: interrupted", "edge: terminated")] \
            == [line]
        assert ("ticks" in out) == stats.exists()    # a summary once the runtime existed
    else:                           # the run stopped cleanly
        assert "ticks" in out and json.loads(stats.read_text())["mode"] == "realtime"


def test_sigint_after_the_runtime_is_built_prints_the_summary(tmp_path):
    """Interrupt in virtual time, where the run itself does not take SIGINT over."""
    stats = tmp_path / "s.json"
    proc = subprocess.Popen([*EDGE, "run", "--virtual-time", "--duration", "100000",
                             "--stats-json", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    for line in proc.stderr:        # the checksum is logged while the runtime is built
        if "safety configuration checksum" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)                 # let construction finish and stepping begin
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "edge: interrupted" in err and "ticks" in out
    assert json.loads(stats.read_text())["ticks"] > 0


def test_exit_codes_are_documented():
    docs = [(Path(edge.__file__).parent.parent / name).read_text()
            for name in ("README.md", "docs/quickstart.md")]
    for text in docs:
        for code in EXIT_CODES:
            assert f"| {code} |" in text

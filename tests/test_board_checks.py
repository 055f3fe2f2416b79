"""`edge check` refuses what `edge run` refuses or what cannot work (issue 12, 10 and 11).

The walk runs both real commands on each bad board and asserts the same one-line error;
the in-process cases pin the file, line and field.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import BOARDS_DIR, parse_board
from edge.errors import ConfigError
from edge.rt.runtime import Runtime

EDGE = [sys.executable, "-m", "edge.cli"]
SIM_ARM = (BOARDS_DIR / "sim_arm.yaml").read_text()
MINIMAL = "name: t\naxes:\n  - {name: a, max_velocity: 1, max_acceleration: 2}\n"


def acquisition(device: str, channel: str, extra: str = "") -> str:
    return (MINIMAL + f"acquisition:\n  devices:\n    - {device}\n"
            f"  channels:\n    - {channel}\n{extra}")


SIM_DEVICE = "{name: d, kind: simulated}"
SIM_CHANNEL = "{name: c, device: d}"


def modbus(host: str = "127.0.0.1", address: int = 0, dtype: str = "uint16") -> str:
    return acquisition(f"{{name: plc, kind: modbus_tcp, host: '{host}'}}",
                       f"{{name: c, device: plc, table: holding, address: {address}, "
                       f"type: {dtype}}}")


def crypto(key: str) -> str:
    return acquisition(SIM_DEVICE, "{name: c, device: d, sensitive: true}",
                       f"  crypto: {{algorithm: aes-gcm, key_file: {key}}}\n")


def commands(spec: str) -> str:
    return MINIMAL + f"mqtt:\n  url: mqtt://127.0.0.1:1883\n  commands:\n    {spec}\n"


# name -> (board text, fragments of the one error line); {dir} is the board's directory
BAD_BOARDS = {
    "key_missing": (crypto("missing.key"), ["acquisition", "cannot read key file",
                                            "missing.key"]),
    "key_7_bytes": (crypto("short.key"), ["acquisition", "needs a key of 16", "got 7"]),
    "wall_holds_start": (SIM_ARM.replace("plane: {normal: [0, 0, 1], offset: 0.0}",
                                         "plane: {normal: [0, 0, 1], offset: 0.3}"),
                         ["safety.walls", "start pose", "inside wall 'floor'"]),
    "target_beyond_limits": (SIM_ARM.replace("positions: [0.3, -1.3, 1.6,",
                                             "positions: [0.3, -1.3, 4.0,"),
                             ["program[1].move_joint.positions", "joint 2 target 4",
                              "outside its limits"]),
    "float32_at_65535": (modbus(address=65535, dtype="float32"),
                         ["address", "takes 2 registers", "65535"]),
    "empty_host": (modbus(host=""), ["host", "empty"]),
    "bad_ipv4": (modbus(host="256.1.1.1"), ["host", "'256.1.1.1' is not a valid IP address"]),
    "arg_min_above_max": (commands("nudge: {mm: {type: float, min: 5, max: 1}}"),
                          ["mqtt.commands.nudge.mm.max", "min (5) exceeds max (1)"]),
    "name_empty": (MINIMAL.replace("name: t", "name: ''"), ["field 'name'", "not a board name"]),
    "name_slash": (MINIMAL.replace("name: t", "name: a/b"), ["'a/b' is not a board name"]),
    "name_hash": (MINIMAL.replace("name: t", "name: '#'"), ["'#' is not a board name"]),
    "name_dotdot": (MINIMAL.replace("name: t", "name: '..'"), ["'..' is not a board name"]),
    "watchdog_under_a_tick": (MINIMAL + "cycle: {period_us: 1000, watchdog_ms: 0.4}\n",
                              ["cycle.watchdog_ms", "shorter than one tick",
                               "minimum at period_us 1000 is 1"]),
    "mqtt_url_port_0": (MINIMAL + "mqtt: {url: 'mqtt://127.0.0.1:0'}\n",
                        ["mqtt.url", "bad port"]),
    "mqtt_credentials_missing": (MINIMAL + "mqtt: {url: 'mqtt://127.0.0.1', "
                                 "credentials_file: '{dir}/nope'}\n",
                                 ["cannot read MQTT credentials"]),
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "short.key").write_bytes(b"7 bytes")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("{dir}", str(tmp_path)))
    return path


def _one_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edge: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_check_and_run_refuse_every_bad_board_with_the_same_line(tmp_path):
    env = {**__import__("os").environ, "EDGE_STATE_DIR": str(tmp_path / "state")}
    procs = {}
    for name, (text, _) in BAD_BOARDS.items():
        path = _write(tmp_path, name, text)
        procs[name] = [subprocess.Popen([*EDGE, *args, str(path)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env,
                                        cwd=tmp_path)
                       for args in (["check"], ["run", "--virtual-time", "--duration", "0.01",
                                                "--board"])]
    for name, (check, run) in procs.items():
        results = [p.communicate(timeout=120) for p in (check, run)]
        check.stderr, run.stderr = results[0][1], results[1][1]
        line = _one_line(check)
        assert _one_line(run) == line, name
        for fragment in BAD_BOARDS[name][1]:
            assert fragment in line, (name, line)
    assert not (tmp_path / "state").exists()       # nothing started, nothing written


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_board(text, "b.yaml")
    return info.value


def test_watchdog_is_on_by_default():
    board = parse_board(MINIMAL, "b.yaml")
    assert board.cycle.watchdog_ms == 200.0 and board.cycle.watchdog_ticks == 200
    slow = parse_board(MINIMAL + "cycle: {period_us: 100000}\n", "b.yaml")
    assert slow.cycle.watchdog_ticks == 10                  # 10 periods of 100 ms
    rt = Runtime(board, virtual_time=True)
    assert rt.executor._kick_every == 50                    # fed 4 times per timeout


@pytest.mark.parametrize("period_us, watchdog_ms, minimum", [
    (1000, 0.4, "1"), (1000, 0.9, "1"), (250, 0.2, "0.25"), (50, 0.01, "0.05")])
def test_watchdog_under_one_tick_is_refused_with_the_minimum(period_us, watchdog_ms, minimum):
    err = error_of(MINIMAL + f"cycle: {{period_us: {period_us}, watchdog_ms: {watchdog_ms}}}\n")
    assert err.line == 4 and err.field == "cycle.watchdog_ms"
    assert f"the minimum at period_us {period_us} is {minimum} " in err.message


def test_watchdog_of_exactly_one_tick_and_explicit_off():
    one = parse_board(MINIMAL + "cycle: {period_us: 250, watchdog_ms: 0.25}\n", "b.yaml")
    assert one.cycle.watchdog_ticks == 1
    off = parse_board(MINIMAL + "cycle: {watchdog_ms: 0}\n", "b.yaml")
    assert off.cycle.watchdog_ticks == 0


def test_default_busy_tail_scales_so_the_minimum_period_works():
    board = parse_board(MINIMAL + "cycle: {period_us: 50}\n", "b.yaml")
    assert board.cycle.busy_tail_us == 5.0                  # a tenth of 50 us
    assert parse_board(MINIMAL, "b.yaml").cycle.busy_tail_us == 100.0
    rt = Runtime(board, virtual_time=True)
    rt.run_virtual(0.001)
    assert rt.summary()["ticks"] == 20


def test_missing_axes_is_reported_as_axes_not_program():
    err = error_of("name: t\nprogram:\n  - move_joint: {positions: [0]}\n")
    assert err.field == "axes" and "missing" in err.message


def test_wall_keep_out_box_around_the_tool_at_start():
    # UR5e at q = (0, -90, 90, 0, 0, 0) deg, by hand from its DH table: the upper arm
    # stands up (z = d1 + 0.425 = 0.5875), the forearm reaches x = -0.3922, d4 goes to
    # y = -0.1333, d5 down to z = 0.4878, d6 to y = -0.2329: tool at (-0.392, -0.233, 0.488)
    text = SIM_ARM.replace("- {name: floor, plane: {normal: [0, 0, 1], offset: 0.0}}",
                           "- {name: box, keep_out: {lo: [-0.5, -0.3, 0.4], "
                           "hi: [-0.3, -0.2, 0.6]}}")
    err = error_of(text)
    assert err.field == "safety.walls" and "inside wall 'box'" in err.message
    clear = SIM_ARM.replace("- {name: floor, plane: {normal: [0, 0, 1], offset: 0.0}}",
                            "- {name: box, keep_out: {lo: [0.5, 0.5, 0.5], hi: [0.6, 0.6, 0.6]}}")
    assert parse_board(clear, "b.yaml").sections["safety"].walls[0].name == "box"


def test_program_target_within_safety_limits_narrower_than_the_arm():
    text = SIM_ARM.replace("safety:\n", "safety:\n  joints: {q_min: [-3, -3, -2, -3, -3, -3], "
                                        "q_max: [3, 3, 2, 3, 3, 3]}\n")
    assert parse_board(text, "b.yaml").sections["program"].steps
    err = error_of(text.replace("positions: [0.3, -1.3, 1.6,", "positions: [0.3, -1.3, 2.5,"))
    assert "joint 2 target 2.5 rad is outside its limits [-2, 2]" in err.message


@pytest.mark.parametrize("address, dtype, ok", [(65535, "uint16", True), (65534, "float32", True),
                                                (65535, "float32", False),
                                                (65535, "int32", False)])
def test_modbus_value_must_fit_the_address_space(address, dtype, ok):
    text = modbus(address=address, dtype=dtype)
    if ok:
        parse_board(text, "b.yaml")
    else:
        assert "runs past the last address" in error_of(text).message


@pytest.mark.parametrize("host, ok", [("plc-1.ward3.local", True), ("10.0.0.2", True),
                                      ("::1", True), ("", False), ("256.1.1.1", False),
                                      ("1.2.3", False), ("bad host", False), ("-x", False),
                                      ("a" * 64, False)])
def test_modbus_host(host, ok):
    text = modbus(host=host)
    if ok:
        parse_board(text, "b.yaml")
    else:
        assert error_of(text).field == "acquisition.devices[0].host"


def test_command_argument_bounds():
    err = error_of(commands("nudge: {mm: {type: float, min: 5, max: 1}}"))
    assert err.line == 7 and "exceeds max" in err.message
    assert "for numbers" in error_of(commands("say: {text: {type: str, max: 3}}")).message
    assert parse_board(commands("nudge: {mm: {type: float, min: 0, max: 0}}"), "b.yaml")


@pytest.mark.parametrize("name", ["sim_arm", "arm-2", "a.b_c", "X" * 64])
def test_good_board_names(name):
    assert parse_board(MINIMAL.replace("name: t", f"name: '{name}'"), "b.yaml").name == name


@pytest.mark.parametrize("name", ["", "a/b", "#", "+", "..", ".", "a b", "-x", "X" * 65])
def test_bad_board_names(name):
    err = error_of(MINIMAL.replace("name: t", f"name: '{name}'"))
    assert err.field == "name" and err.line == 1


def test_usage_file_in_a_directory_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = error_of(acquisition(SIM_DEVICE, SIM_CHANNEL,
                               f"  usage: {{file: {blocker}/sub/usage.json}}\n"))
    assert err.field == "acquisition.usage.file" and "is not a directory" in err.message
    ok = parse_board(acquisition(SIM_DEVICE, SIM_CHANNEL,
                                 f"  usage: {{file: {tmp_path}/new/usage.json}}\n"), "b.yaml")
    assert ok.sections["acquisition"].usage.file == f"{tmp_path}/new/usage.json"
    assert not (tmp_path / "new").exists()                  # checked, not created


def test_check_writes_no_usage_counters(tmp_path):
    usage = tmp_path / "usage.json"
    board = parse_board(acquisition(SIM_DEVICE, SIM_CHANNEL, f"  usage: {{file: {usage}}}\n"),
                        "b.yaml")
    Runtime.for_check(board)
    assert not usage.exists()
    Runtime(board, virtual_time=True)                      # a run counts a power cycle
    assert usage.exists()


def test_start_checks_of_a_board_section_name_the_board_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_STATE_DIR", str(tmp_path))
    text = MINIMAL + f"mqtt:\n  url: mqtts://127.0.0.1\n  ca_file: {tmp_path}/ca.pem\n"
    with pytest.raises(ConfigError) as info:
        Runtime.for_check(parse_board(text, "b.yaml"))
    assert (info.value.file, info.value.line, info.value.field) == ("b.yaml", 5, "mqtt")
    assert "ca_file" in info.value.message and "ca.pem" in info.value.message

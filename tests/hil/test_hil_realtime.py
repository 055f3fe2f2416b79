"""`edge hil run --realtime`: scenarios against a separate `edge run` process over a real
mosquitto and real pymodbus devices, in wall time. One scenario run both ways gives the
same verdict per assertion (its expected verdicts come from the move's target, not from
an earlier run); the shipped real-time scenarios pass; what exists only in-process is
refused before anything starts, and what needs a rig is refused in virtual time. Every
wait is bounded: the rig's start (30 s), the run's own duration and its faults' ends."""

from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import ConfigError
from hil.check_command import check_file
from hil.cli import SHIPPED
from hil.realtime import execute_realtime
from hil.runner import execute
from hil.scenario import load_scenario

DATA = Path(__file__).resolve().parent / "data"


def one_run(path):
    scenario = load_scenario(path)
    assert len(scenario) == 1
    return scenario.run(0)


def test_one_scenario_gives_the_same_verdicts_both_ways():
    """A category 2 stop at 1.5 s and a constant 45 %RH channel (noise sigma 1): good
    within 1 s, no other category, category 2 within 2.5 s and at the end with the value
    in 40 .. 50; the last assertion (above 60) is false by construction, both ways."""
    path = DATA / "stop_both_ways.yaml"
    virtual = execute(one_run(path))
    real = execute_realtime(one_run(path))
    assert virtual.error is None and real.error is None, real.error
    expected = [True, True, True, True, False]
    assert [v.passed for v in virtual.verdicts] == expected
    assert [v.passed for v in real.verdicts] == expected, "\n".join(real.notes)
    assert not [n for n in real.notes if "command" in n]    # the stop command was taken
    assert real.seconds >= 3.0                    # it ran in wall time: 3 s of ticks


@pytest.mark.parametrize("name", ["modbus_silent", "broker_outage", "power_loss"])
def test_shipped_realtime_scenario_passes(name):
    result = execute_realtime(one_run(SHIPPED / f"{name}.yaml"))
    assert result.error is None and result.passed, "\n".join(result.failures())
    assert result.seconds < 30                    # each kept under ~20 s of wall time


def test_a_wrong_expectation_fails_in_real_time(tmp_path):
    """The device dropped requests during its silence, so claiming it dropped none fails
    at the end, naming the values."""
    text = (SHIPPED / "modbus_silent.yaml").read_text()
    old = "at_end: dropped > 0 AND timeouts >= dropped AND timeouts <= dropped + slow"
    assert old in text
    path = tmp_path / "wrong.yaml"
    path.write_text(text.replace(old, "at_end: dropped = 0"))
    result = execute_realtime(one_run(path))
    assert result.error is None and not result.passed
    (failure,) = result.failures()
    assert "at end: dropped = 0" in failure and "dropped = " in failure


@pytest.mark.parametrize("name, line_text, message", [
    ("collision_link3", "latched: {stop: latched}", "a stop signal is not available in real "
                                                    "time"),
])
def test_in_process_signals_are_refused_before_anything_starts(name, line_text, message,
                                                                capsys):
    path = SHIPPED / f"{name}.yaml"
    line = path.read_text().splitlines().index(f"  {line_text}") + 1
    assert main(["hil", "run", "--realtime", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert err.startswith(f"edge: error: {path}:{line}:")


def test_in_process_faults_are_refused_in_real_time(tmp_path):
    text = (DATA / "stop_both_ways.yaml").read_text().replace(
        "assert:", "  - at: 1 s\n    fault: {kind: stall, for: 50 ms}\nassert:")
    path = tmp_path / "stall.yaml"
    path.write_text(text)
    line = text.splitlines().index("    fault: {kind: stall, for: 50 ms}") + 1
    with pytest.raises(ConfigError) as info:
        check_file(path, realtime=True)
    assert info.value.line == line
    assert "a stall fault is not available in real time" in info.value.message


def test_rig_scenarios_are_refused_in_virtual_time_but_check(capsys):
    path = SHIPPED / "power_loss.yaml"
    assert main(["hil", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs real time: run it with --realtime" in err
    assert main(["hil", "check", str(path)]) == 0
    assert "is valid in real time" in capsys.readouterr().out


def test_a_device_fault_names_a_declared_device(tmp_path):
    text = (SHIPPED / "modbus_silent.yaml").read_text().replace("device: pump, fault",
                                                                "device: pomp, fault")
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_file(path)
    assert "no device 'pomp' in the scenario's devices (pump)" in info.value.message
    assert info.value.line == text.splitlines().index(
        next(ln for ln in text.splitlines() if "pomp" in ln)) + 1


def test_the_command_runs_in_real_time_with_junit(tmp_path, capsys):
    """`edge hil run --realtime`: the false-by-construction assertion makes it exit 3,
    and the JUnit file has that one failure, naming its line."""
    junit = tmp_path / "out.xml"
    path = DATA / "stop_both_ways.yaml"
    assert main(["hil", "run", "--realtime", str(path), "--junit", str(junit)]) == 3
    out = capsys.readouterr().out
    line = path.read_text().splitlines().index("  - at_end: humidity > 60") + 1
    assert "FAIL stop_both_ways" in out and f"{path}:{line}: at end: humidity > 60" in out
    xml = junit.read_text()
    assert 'tests="1" failures="1" errors="0"' in xml


def test_a_rig_that_cannot_start_is_one_line(monkeypatch, capsys):
    """No mosquitto on the machine: the run's error is the broker's one line, at once."""
    import time

    import hil.rigs.broker

    monkeypatch.setattr(hil.rigs.broker, "find_mosquitto", lambda: None)
    started = time.monotonic()
    assert main(["hil", "run", "--realtime", str(DATA / "stop_both_ways.yaml")]) == 3
    assert time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert "ERROR stop_both_ways" in out
    assert "broker: mosquitto is not installed" in out

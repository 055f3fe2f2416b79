"""Sensor faults in virtual time (hil/sensor_faults.py) on the real controller: each
fault bends the raw value where the channel takes it, and the product's quality logic
and threshold rules judge it. Every expected tick and value below is worked out by hand
from the definitions in docs/acquisition.md and docs/hil.md, not from a run:

- the `cabinet` and `probe` devices are read every 10 ticks (period_ms 10), at the
  sampler's release (every 10 ticks, deadline 10): a value acquired at tick k (a
  multiple of 10) is published at the release k and on the bus from tick k + 10 (LET);
- a fault on at tick s bends the values acquired at ticks s .. e - 1 (off at e).
"""

import numpy as np
import pytest

from hil.cli import SHIPPED
from hil.runner import Bench, execute
from hil.scenario import load_scenario

DELAY = 10          # acquired at a release, on the bus from the next one


@pytest.fixture(scope="module")
def trace():
    run = load_scenario(SHIPPED / "sensor_faults.yaml").run(0)
    return Bench(run).go().columns


def first(column) -> int:
    hits = np.flatnonzero(column)
    assert len(hits), "never"
    return int(hits[0])


def test_the_shipped_scenario_passes():
    result = execute(load_scenario(SHIPPED / "sensor_faults.yaml").run(0))
    assert result.passed, "\n".join(result.failures())


def test_offset_adds_its_value_and_raises_the_threshold_then_clears_it(trace):
    v = trace["off_v"]
    assert v[100 + DELAY - 1] == 35.0 and v[100 + DELAY] == 35.0 + 12.0
    assert first(trace["off_hot"]) == 100 + DELAY          # 47 > above 45
    # off at 400: the value acquired at 400 is 35 again, <= 45 - hysteresis 1: cleared
    assert v[400 + DELAY - 1] == 47.0 and v[400 + DELAY] == 35.0
    assert not trace["off_hot"][400 + DELAY:].any() and trace["off_hot"][400 + DELAY - 1]


def test_stuck_at_a_value(trace):
    assert trace["stuck_v"][100 + DELAY] == 50.0 and trace["stuck_good"][100 + DELAY]
    assert first(trace["stuck_hot"]) == 100 + DELAY


def test_stuck_without_a_value_holds_the_last_reading(tmp_path):
    # a ramp of 1 per second: the last value read before the fault (at tick 90) is
    # 0.09, and it stays 0.09 while the fault is on (acquired 100 .. 290)
    text = (SHIPPED / "sensor_faults.yaml").read_text()
    text = text.replace("{name: t_stuck, device: cabinet, unit: degC, signal: {mean: 35.0}",
                        "{name: t_stuck, device: cabinet, unit: degC, "
                        "signal: {shape: ramp, slope: 1.0}")
    text = text.replace("channel: t_stuck, value: 50.0, for: 300 ms",
                        "channel: t_stuck, for: 200 ms")
    path = tmp_path / "stuck.yaml"
    path.write_text(text)
    v = Bench(load_scenario(path).run(0)).go().columns["stuck_v"]
    assert v[90 + DELAY] == pytest.approx(0.09, abs=1e-12)
    assert np.all(v[100 + DELAY:300 + DELAY] == v[90 + DELAY])
    assert v[300 + DELAY] == pytest.approx(0.30, abs=1e-12)     # the ramp again


def test_out_of_range_is_flagged_with_its_value_and_never_reaches_the_threshold(trace):
    assert not trace["range_oor"][:100 + DELAY].any()
    assert first(trace["range_oor"]) == 100 + DELAY
    assert trace["range_v"][100 + DELAY] == 150.0
    assert not trace["range_hot"].any()
    assert first(trace["range_good"][100 + DELAY:]) == 400 + DELAY - (100 + DELAY)


def test_dropout_turns_stale_after_stale_ms_keeping_the_last_value(trace):
    # last reading acquired at 90; STALE at the first release r with r - 90 > 50 ticks
    # (stale_ms 50 at 1 ms a tick): r = 150, on the bus at 160; never COMM_ERROR
    stale = trace["probe_stale"]
    assert first(stale) == 150 + DELAY
    assert np.all(trace["probe_v"][150 + DELAY:400 + DELAY] == 35.0)
    assert not trace["probe_comm"].any()
    # back on at 400: a good reading at the release 400, on the bus at 410
    assert stale[400 + DELAY - 1] and not stale[400 + DELAY:].any()


def test_noise_is_the_seeded_gaussian_and_raises_the_threshold_when_it_crosses(trace):
    ks = np.arange(100, 1600 - DELAY, 10)
    want = np.array([35.0 + 5.0 * np.random.default_rng([7, int(k)]).standard_normal()
                     for k in ks])
    assert np.array_equal(trace["noise_v"][ks + DELAY], want)
    crossing = int(ks[np.flatnonzero(want > 45.0)[0]])
    assert first(trace["noise_hot"]) == crossing + DELAY
    assert set(trace["noise_q"][110:].tolist()) == {0}        # GOOD throughout


def test_drift_crosses_the_threshold_when_its_definition_says(trace):
    # 35 + 10/s * (k - 200) ms: 45.0 at k = 1200 is not above 45; 45.1 at 1210 is
    period_s = 1e-3
    ks = np.arange(200, 1600 - DELAY, 10)
    want = 35.0 + 10.0 * (ks - 200) * period_s
    assert np.allclose(trace["drift_v"][ks + DELAY], want, rtol=0, atol=1e-9)
    crossing = int(ks[np.flatnonzero(want > 45.0)[0]])
    assert crossing == 1210
    assert first(trace["drift_hot"]) == crossing + DELAY


@pytest.mark.parametrize("step, message", [
    ("{kind: offset, name: x, channel: nope, by: 1.0}", "no acquisition channel 'nope'"),
    ("{kind: out_of_range, name: x, channel: t_range, value: 50.0}",
     "50 is inside the valid range"),
    ("{kind: noise, name: x, channel: t_noise}", "sigma"),
])
def test_bad_sensor_fault_is_one_line_naming_the_file_and_line(tmp_path, step, message):
    from edge.errors import ConfigError

    text = (SHIPPED / "sensor_faults.yaml").read_text()
    text = text.replace("  - at: 200\n", f"  - fault: {step}\n  - at: 200\n")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_scenario(path).run(0)
    line = err.value.one_line()
    assert message in line and "bad.yaml:" in line and "\n" not in line


LOGIC = """name: logic_fault
board: sim_arm
overrides: {{program: null, acquisition: null}}
duration: 0.5 s
signals:
  latched: {{stop: latched}}
  category: {{stop: category}}
  requested: {{fault: requested}}
steps:
  - at: 300
    fault: {fault}
assert:
  - at_end: TRUE
"""


def logic_fault(tmp_path, fault: str):
    path = tmp_path / "logic_fault.yaml"
    path.write_text(LOGIC.format(fault=fault))
    return path


@pytest.mark.parametrize("fault, stops", [
    # sim_arm's rule: WHEN q1 < -3.0 OR q1 > 3.0 THEN ... STOP 2; q1 (the shoulder) stands
    # at -1.5708 rad. The scan released at 300 reads the bent value; its STOP takes
    # effect at the next scan's start, 300 + the 10 ms deadline (docs/logic.md, LET)
    ("{kind: offset, name: f, signal: q1, by: -2.0}", True),      # -3.57 < -3.0
    ("{kind: offset, name: f, signal: q1, by: 1.0}", False),      # -0.57: inside
    ("{kind: stuck, name: f, signal: q1, value: 3.5}", True),     # 3.5 > 3.0
    ("{kind: drift, name: f, signal: q1, rate_per_s: -20.0}", True),
])
def test_a_fault_on_a_logic_input_signal_is_what_the_rules_read(tmp_path, fault, stops):
    c = Bench(load_scenario(logic_fault(tmp_path, fault)).run(0)).go().columns
    if not stops:
        assert not c["latched"].any()
        return
    # the drift: -1.5708 - 20 * (r - 300) ms < -3.0 first at the scan r = 380 (-3.1708;
    # at 370, -2.9708 is inside), its STOP at 390
    at = 390 if "drift" in fault else 310
    assert first(c["latched"]) == at
    assert c["requested"][at] and c["category"][at] == 2


@pytest.mark.parametrize("fault, message", [
    ("{kind: dropout, name: f, signal: q1}", "acts on an acquisition channel"),
    ("{kind: offset, name: f, signal: nope, by: 1.0}", "no REAL input signal 'nope'"),
    ("{kind: offset, name: f, by: 1.0}", "names a `channel` (acquisition) or a `signal`"),
])
def test_a_bad_logic_signal_fault_is_one_line(tmp_path, fault, message):
    from edge.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_scenario(logic_fault(tmp_path, fault)).run(0)
    line = err.value.one_line()
    assert message in line and "logic_fault.yaml:11" in line

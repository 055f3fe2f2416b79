"""Signal quality in the logic: GOOD / AGE / STALE, on_bad policies, and interlocks that
fail safe when their sensor dies (simulated in virtual time, and a real Modbus device
going silent behind a fault proxy)."""

import asyncio
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import parse_board
from edge.errors import ConfigError, LogicError
from edge.logic import compile_expression
from edge.logic.program import Program
from edge.logic.quality import OnBad
from edge.rt.executor import LetTask
from edge.rt.runtime import Runtime

MS = 1_000_000


def test_good_age_and_stale_read_the_quality_keys():
    sig = {"p": "REAL"}
    good = compile_expression("GOOD(p)", sig)
    age = compile_expression("AGE(p)", sig)
    stale = compile_expression("STALE(p, T#500ms)", sig)
    m = {"p": 1.0, "p.good": True, "p.age": 500 * MS}
    assert good(m) is True and age(m) == 500 * MS and stale(m) is False
    assert age.result_type == "TIME" and stale.result_type == "BOOL"
    m["p.age"] = 500 * MS + 1                       # older than the limit
    assert stale(m) is True
    m.update({"p.good": False, "p.age": 0})         # not GOOD: stale whatever its age
    assert good(m) is False and stale(m) is True


@pytest.mark.parametrize("text, fragment", [
    ("GOOD(1.0)", "name of an input signal"), ("GOOD(p + 1.0)", "name of an input signal"),
    ("STALE(p, 5)", "expected TIME as the age limit of STALE"),
    ("GOOD(q)", "unknown name 'q'"), ("AGE(p) > 2", "cannot order TIME > INT"),
])
def test_quality_functions_are_type_checked(text, fragment):
    with pytest.raises(LogicError) as exc:
        compile_expression(text, {"p": "REAL"})
    assert fragment in exc.value.message and exc.value.line == 1


def test_a_quality_function_takes_a_signal_not_a_variable():
    with pytest.raises(LogicError, match="name of an input signal") as exc:
        Program("VAR v : REAL; END_VAR\nWHEN GOOD(v) THEN EVENT \"x\"; END_WHEN", {})
    assert exc.value.line == 2


PROG = """VAR hot : BOOL; END_VAR
hot := t > 60.0;
WHEN hot THEN EVENT "hot"; STOP 1; END_WHEN
WHEN p > 3.0 THEN EVENT "p_high"; END_WHEN
WHEN p < -3.0 THEN EVENT "p_low"; STOP 2; END_WHEN
"""


def test_default_policy_is_safe_for_signals_a_stop_rule_depends_on():
    """t reaches the STOP rule through the variable `hot`; p is read by a STOP rule too;
    a signal no STOP rule reads (u) holds."""
    prog = Program(PROG, {"t": "REAL", "p": "REAL", "u": "REAL"}, on_bad={})
    assert {n: b.policy for n, b in prog.on_bad.items()} == \
        {"t": "safe", "p": "safe", "u": "hold"}
    assert prog.forced == {0: ["t"], 2: ["p"]}
    ok = {"t": 20.0, "p": 0.0, "u": 0.0}
    assert prog.scan(ok, 0).events == []
    r = prog.scan({**ok, "t.good": False}, 1)     # held 20 degC would be "normal": forced
    assert r.events == [(0, "hot")] and r.stops == [1]
    # the EVENT-only rule on p is not forced (it has no safe state); the STOP rule is
    r = prog.scan({**ok, "t.good": False, "p.good": False}, 2)
    assert r.events == [(2, "p_low")] and r.stops == [2]
    assert prog.scan({**ok, "t.good": False, "p.good": False}, 3).events == []   # latched
    assert prog.scan(ok, 4).events == []                 # re-armed
    assert prog.scan({**ok, "t": 70.0}, 5).events == [(0, "hot")]


def test_hold_and_substitute_do_not_force_and_without_policies_nothing_is_forced():
    prog = Program(PROG, {"t": "REAL", "p": "REAL"},
                   on_bad={"t": OnBad("hold"), "p": OnBad("substitute", 0.0)})
    assert prog.forced == {}
    assert prog.scan({"t": 20.0, "p": 0.0}, 0).events == []
    assert Program(PROG, {"t": "REAL", "p": "REAL"}).forced == {}      # the plain API
    with pytest.raises(LogicError, match="'nope', which is not a signal"):
        Program(PROG, {"t": "REAL", "p": "REAL"}, on_bad={"nope": OnBad("hold")})


def test_a_forced_rule_keeps_its_for_delay():
    prog = Program("WHEN t > 60.0 FOR 30ms THEN STOP 1; END_WHEN", {"t": "REAL"},
                   on_bad={}, period_ns=10 * MS)
    bad = {"t": 20.0, "t.good": False}
    assert [prog.scan(bad, k).stops for k in range(5)] == [[], [], [], [1], []]


# -- the board section ----------------------------------------------------------------
def board(signal: str, program: str, extra: str = "") -> str:
    return f"""name: q
cycle: {{period_us: 1000, busy_tail_us: 0, lock_memory: false, priority: 0}}
axes: [{{name: a, max_velocity: 1.0, max_acceleration: 1.0}}]
{extra}logic:
  period_ms: 10
  deadline_ms: 2
  signals:
    temp: {signal}
  program: |
    {program}
"""


STOP_RULE = 'WHEN temp > 80.0 THEN EVENT "trip"; STOP 2; END_WHEN'


@pytest.mark.parametrize("signal, fragment, field", [
    ("{topic: a, field: value, type: REAL, on_bad: sometimes}", "must be one of", "on_bad"),
    ("{topic: a, field: value, type: REAL, on_bad: substitute}", "needs a 'substitute'",
     "on_bad"),
    ("{topic: a, field: value, type: REAL, on_bad: hold, substitute: 1.0}",
     "goes with on_bad: substitute", "substitute"),
    ("{topic: a, field: value, type: BOOL, substitute: 2.5}", "cannot be read as BOOL",
     "substitute"),
    ("{topic: a, field: value, type: REAL, max_age_ms: 0}", "", "max_age_ms"),
    ("{state: q.0, type: REAL, on_bad: hold}", "always GOOD", "on_bad"),
])
def test_quality_fields_are_checked_with_file_line_and_field(signal, fragment, field):
    with pytest.raises(ConfigError) as exc:
        parse_board(board(signal, STOP_RULE), "q.yaml")
    assert exc.value.file == "q.yaml" and exc.value.line == 8
    assert exc.value.field.endswith(field) and fragment in exc.value.message


def run_board(text, seconds, publisher=None):
    rt = Runtime(parse_board(text, "q.yaml"), virtual_time=True)
    events = rt.bus.subscribe("logic/events", maxlen=10_000)
    states = []
    rt.executor.add_state_listener(lambda tick, recs: states.append(recs), every_ticks=100)
    if publisher is not None:
        rt.add_task(LetTask("sensor", publisher, period_ticks=10, deadline_ticks=1))
    rt.run_virtual(seconds)
    return rt, events.drain(), np.concatenate(states)


SIM = """acquisition:
  devices:
    - {name: sim, kind: simulated, period_ms: 10, dropout_s: [0.5, 0.8]}
  channels:
    - {name: temp, device: sim, period_ms: 10, signal: {shape: constant, mean: 40}}
"""


def test_a_simulated_sensor_dying_mid_run_trips_its_interlock_in_the_declared_time():
    """The sensor's reading at tick 500 fails (dropout from 0.5 s). By hand: the sampler
    (period 10 ticks, D 10) takes it at its release 500 and publishes COMM_ERROR with
    value null at tick 509, seen from 510; the logic scan at 510 (period 10) sees a
    non-GOOD value on a signal of a STOP rule (default policy safe): the rule is forced,
    its event is published at 510 + D - 1 = 511 and the stop applied at 512. Declared
    bound: sampler period + D + scan period + D = 32 ticks after the failed reading; the
    held 40 degC would never have tripped 'temp > 80'."""
    text = board("{topic: acq/temp, field: value, type: REAL}", STOP_RULE, SIM)
    rt, events, s = run_board(text, 1.0)
    assert [(e.tick, e.data["event"]) for e in events] == [(511, "trip")]
    assert s["stop_category"][511] != 2 and s["stop_category"][512] == 2
    assert 512 - 500 <= 10 + 10 + 10 + 2
    assert rt.summary()["logic"]["bad_episodes"] == 1


def test_with_on_bad_hold_the_dead_sensor_is_held_and_the_interlock_stays_silent():
    text = board("{topic: acq/temp, field: value, type: REAL, on_bad: hold}", STOP_RULE, SIM)
    _, events, s = run_board(text, 1.0)
    assert events == [] and (s["stop_category"] != 2).all()


def test_a_substitute_value_is_what_the_rule_sees_while_the_sensor_is_bad():
    """substitute: 99.0 reads above 80 while the sensor is out (0.5 s .. 0.8 s): the
    rule fires at the scan that sees COMM_ERROR (510, event at 511) like a real reading."""
    text = board("{topic: acq/temp, field: value, type: REAL, substitute: 99.0}",
                 STOP_RULE, SIM)
    _, events, _ = run_board(text, 1.0)
    assert [e.tick for e in events] == [511]


def test_a_topic_that_stops_goes_not_good_after_max_age():
    """The publisher's last message is at tick 290 (it publishes at r + D - 1 = r for
    D = 1, every 10 ticks, until 290). max_age_ms 50: the scans at 340 (age 50 ms) still
    see a GOOD signal, the scan at 350 (age 60 ms) does not: event 351, stop at 352."""
    def sensor(ctx):
        if ctx.tick <= 290:
            ctx.publish("io/t", {"c": 20.0})
    text = board("{topic: io/t, field: c, type: REAL, max_age_ms: 50}", STOP_RULE)
    _, events, s = run_board(text, 0.6, sensor)
    assert [e.tick for e in events] == [351]
    assert s["stop_category"][351] != 2 and s["stop_category"][352] == 2


QUALITIES = ["GOOD", "COMM_ERROR", "STALE", "OUT_OF_RANGE", "INVALID"]
reading = st.one_of(
    st.tuples(st.floats(-1e3, 1e3) | st.sampled_from([math.nan, math.inf]) | st.none(),
              st.sampled_from(QUALITIES)),
    st.tuples(st.floats(0, 200), st.just("GOOD")))


@settings(max_examples=40, deadline=None)
@given(st.lists(reading, min_size=1, max_size=30))
def test_a_stop_rule_never_sees_a_non_good_value_as_a_normal_one(readings):
    """Any sequence of readings with qualities, one per scan, on a signal of a STOP rule
    with the default policy: the rule behaves as if its condition were TRUE whenever the
    signal is not GOOD (a null value, NaN or an infinity, or a non-GOOD quality), and reads
    the last GOOD value otherwise. Oracle, per scan j (which sees reading j - 1, by hand:
    the sensor publishes at its release 10 i, seen from 10 i + 1): effective = not GOOD or
    held > 80; the rule fires on each rising edge of `effective`."""
    def sensor(ctx):
        i = ctx.tick // 10
        if i < len(readings):
            value, quality = readings[i]
            ctx.publish("io/t", {"value": value, "quality": quality})
    text = board("{topic: io/t, field: value, type: REAL}", STOP_RULE)
    rt = Runtime(parse_board(text, "q.yaml"), virtual_time=True)
    events = rt.bus.subscribe("logic/events", maxlen=10_000)
    rt.add_task(LetTask("sensor", sensor, period_ticks=10, deadline_ticks=1))
    rt.run_virtual((len(readings) + 1) * 0.01)
    fired = [(e.tick - 1) // 10 for e in events.drain()]
    held, before, want = 0.0, False, []
    for j in range(len(readings) + 1):
        good = True
        if j >= 1:
            value, quality = readings[j - 1]
            good = quality == "GOOD" and value is not None and math.isfinite(value)
            if good:
                held = value
        effective = (not good) or held > 80.0
        if effective and not before:
            want.append(j)
        before = effective
    assert fired == want


# -- a real Modbus device going silent --------------------------------------------------
@pytest.mark.modbus_device(size=20)
async def test_a_modbus_device_going_silent_trips_the_interlock_within_max_age(
        modbus_device, modbus_faults):
    """A real pymodbus server behind a fault proxy stops answering. The pollers run on
    the loop, the executor is stepped (the sampler tests' way). The signal's max_age_ms
    is 30: with T the acquisition tick of the last GOOD value that reached the bus, the
    first scan (every 10 ticks) with age > 30 ms is the smallest multiple of 10 above
    T + 30, unless a COMM_ERROR sample is seen by an earlier scan; the event is published
    at that scan + 1 and the stop applied at + 2: at most 30 + 10 + 2 ticks after T."""
    sim, proxy = modbus_device, modbus_faults
    await sim.set_registers("holding", 0, [400])           # 40.0 with scale 0.1
    extra = f"""acquisition:
  devices:
    - {{name: plc, kind: modbus_tcp, host: 127.0.0.1, port: {proxy.port}, period_ms: 2,
       timeout_ms: 200, backoff: {{initial_ms: 10, max_ms: 50}}}}
  channels:
    - {{name: temp, device: plc, table: holding, address: 0, scale: 0.1, period_ms: 5}}
"""
    text = board("{topic: acq/temp, field: value, type: REAL, max_age_ms: 30}", STOP_RULE,
                 extra)
    rt = Runtime(parse_board(text, "q.yaml"), virtual_time=True)
    values = rt.bus.subscribe("acq/temp", maxlen=10_000)
    events = rt.bus.subscribe("logic/events", maxlen=100)
    states = []
    rt.executor.add_state_listener(lambda tick, recs: states.append(recs), every_ticks=10)
    poller = rt.lookup("acquisition").pollers["plc"]
    async with rt.lookup("acquisition").service():
        for _ in range(20):                                 # GOOD values flowing
            await poller.wait_attempts(1)
            rt.executor.step(5)
        proxy.faults.silent = True
        deadline = asyncio.get_running_loop().time() + 5.0
        while poller.errors["timeout"] == 0:               # the device is now silent
            assert asyncio.get_running_loop().time() < deadline
            await poller.wait_attempts(1)
        rt.executor.step(100)            # 100 ms of ticks: far less than one more timeout
    samples = values.drain()
    good = [m for m in samples if m.data["quality"] == "GOOD"]
    assert good, "no GOOD value before the silence"
    last_good = good[-1].data["tick"]
    scan = (last_good + 30) // 10 * 10 + 10          # first scan with age > 30 ms
    # the poller's timeout record may have come alone to a sampler release: then a
    # COMM_ERROR sample (seen from the tick after its publication) trips it sooner
    bad = [m.tick + 1 for m in samples if m.data["quality"] != "GOOD"]
    if bad:
        scan = min(scan, -(-bad[0] // 10) * 10)
    assert [(e.tick, e.data["event"]) for e in events.drain()] == [(scan + 1, "trip")]
    s = np.concatenate(states)
    assert s["stop_category"][scan + 1] != 2 and s["stop_category"][scan + 2] == 2
    assert scan + 2 - last_good <= 30 + 10 + 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.booleans(), st.floats(-100, 100),
                          st.booleans()), min_size=1, max_size=25),
       st.booleans(), st.booleans())
def test_forced_stop_rules_follow_the_oracle_on_every_scan_path(scans, vectorize, banks):
    """Two signals, a STOP rule reading `a` directly and one reading `b` through a
    variable, beside 40 plain rules (so the bank and numpy paths are taken): with the
    default policy each STOP rule's effective condition is `NOT GOOD or condition`, on
    the closure, bank and numpy paths alike; the plain rules are never forced."""
    plain = "".join(f'WHEN a > {k}.0 THEN EVENT "a{k}"; END_WHEN\n' for k in range(40))
    text = ("VAR hi : BOOL; END_VAR\nhi := b > 50.0;\n" + plain +
            'WHEN a < -50.0 THEN EVENT "a_low"; STOP 1; END_WHEN\n'
            'WHEN hi THEN EVENT "b_high"; STOP 2; END_WHEN\n')
    prog = Program(text, {"a": "REAL", "b": "REAL"}, on_bad={}, vectorize=vectorize,
                   banks=banks)
    before = {"a_low": False, "b_high": False, **{f"a{k}": False for k in range(40)}}
    for tick, (a, a_good, b, b_good) in enumerate(scans):
        got = {name for _, name in prog.scan({"a": a, "a.good": a_good, "a.age": 0,
                                              "b": b, "b.good": b_good, "b.age": 0},
                                             tick).events}
        now = {"a_low": not a_good or a < -50.0, "b_high": not b_good or b > 50.0,
               **{f"a{k}": a > k for k in range(40)}}
        want = {name for name, v in now.items() if v and not before[name]}
        assert got == want, (tick, a, a_good, b, b_good)
        before = now

"""The sampler under LET: simulated boards in virtual time, and real Modbus pollers
feeding a stepped executor (I/O never blocks the step)."""

import asyncio
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.acquisition.channel import ChannelConfig, FilterSpec
from edge.acquisition.crypto import Keyring, Sealer
from edge.acquisition.model import AcquisitionConfig, CryptoConfig, DeviceConfig, UsageConfig
from edge.acquisition.sampler import Sampler
from edge.acquisition.sources import Backoff
from edge.acquisition.sources.modbus import ModbusLink
from edge.acquisition.usage import UsageStore
from edge.config import load_board, parse_board
from edge.rt.bus import Bus
from edge.rt.executor import Executor
from edge.rt.native import Cycle
from edge.rt.runtime import Runtime


def run_sim_arm(seconds):
    rt = Runtime(load_board("sim_arm"), virtual_time=True)
    sub = rt.bus.subscribe("acq/#", maxlen=100_000)
    rt.run_virtual(seconds)
    return rt, sub.drain()


def test_sim_arm_publishes_every_channel_stamped_and_reproducible():
    rt, msgs = run_sim_arm(3.0)
    topics = {m.topic for m in msgs}
    assert topics == {"acq/cabinet_temp", "acq/cabinet_humidity", "acq/base_motor_current"}
    for m in msgs:
        d = m.data
        assert d["quality"] == "GOOD" and d["tick"] <= m.tick   # acquired before publication
        assert d["t_ns"] == d["tick"] * rt.period_ns              # virtual wall clock
    current = [m for m in msgs if m.topic == "acq/base_motor_current"]
    assert [m.tick for m in current] == list(range(59, 3000, 50))   # 50 ms, LET: r + D - 1
    _, again = run_sim_arm(3.0)                                     # bit for bit
    assert [m.to_wire() for m in again] == [m.to_wire() for m in msgs]


def board(extra_channels: str, extra: str = "") -> str:
    return f"""name: t
cycle: {{period_us: 1000}}
axes: [{{name: a, max_velocity: 1.0, max_acceleration: 1.0}}]
acquisition:
  devices:
    - {{name: sim, kind: simulated, period_ms: 10, dropout_s: [0.5, 0.8]}}
  channels:
{extra_channels}
{extra}"""


def test_thresholds_raise_and_clear_events_and_dropout_sets_quality(tmp_path):
    text = board(
        "    - {name: temp, device: sim, period_ms: 10, stale_ms: 50, "
        "signal: {shape: sine, mean: 40, amplitude: 10, period_s: 1.0}}",
        "  thresholds:\n    - {name: hot, channel: temp, above: 45, hysteresis: 2}\n"
        f"  usage: {{file: {tmp_path}/usage.json, save_every_s: 0.2}}\n")
    rt = Runtime(parse_board(text, "t.yaml"), virtual_time=True)
    events = rt.bus.subscribe("events/acq/#", maxlen=1000)
    values = rt.bus.subscribe("acq/temp", maxlen=10_000)
    rt.run_virtual(2.0)
    ev = events.drain()
    states = [(e.data["state"], e.topic) for e in ev]
    assert states[0] == ("raised", "events/acq/hot")
    assert [s for s, _ in states] == ["raised", "cleared"] * (len(states) // 2) + \
        (["raised"] if len(states) % 2 else [])
    for e in ev:               # raised above 45, cleared at or below 43
        assert (e.data["value"] > 45) if e.data["state"] == "raised" else (e.data["value"] <= 43)
    qual = [(m.data["quality"], m.data["tick"]) for m in values.drain()]
    bad = [q for q in qual if q[0] != "GOOD"]
    assert bad == [("COMM_ERROR", 500)]          # the dropout, reported once
    assert ("GOOD", 800) in qual                 # and the recovery
    usage = UsageStore(tmp_path / "usage.json").load()
    # 2 s of run: 200 releases of 10 ms, all saved at stop (not only up to the last
    # periodic save at 1.8 s)
    assert usage.power_cycles == 1 and usage.running_s == pytest.approx(2.0, abs=1e-9)


def test_sensitive_channel_leaves_sealed_and_opens_with_the_key(tmp_path):
    key = tmp_path / "acq.key"
    key.write_bytes(bytes(range(32)))
    key.chmod(0o600)
    text = board("    - {name: spo2, device: sim, sensitive: true, unit: '%', "
                 "signal: {shape: constant, mean: 97}}",
                 f"  crypto: {{algorithm: sm4-gcm, key_file: {tmp_path}/k16, key_id: ward-3}}\n")
    (tmp_path / "k16").write_bytes(bytes(range(16)))
    rt = Runtime(parse_board(text, "t.yaml"), virtual_time=True)
    sub = rt.bus.subscribe("acq/spo2")
    rt.run_virtual(0.1)
    msgs = sub.drain()
    assert msgs and all(m.data["sealed"] and m.data["kid"] == "ward-3" for m in msgs)
    assert b"97" not in msgs[0].to_wire()
    ring = Keyring()
    ring.add(Sealer("sm4-gcm", bytes(range(16)), "ward-3"))
    assert ring.open("acq/spo2", msgs[0].data)["value"] == 97.0


def test_threshold_events_of_a_sensitive_channel_are_sealed_too(tmp_path):
    (tmp_path / "k").write_bytes(bytes(range(32)))
    text = board("    - {name: hr, device: sim, sensitive: true, "
                 "signal: {shape: constant, mean: 131}}",
                 "  thresholds:\n    - {name: tachycardia, channel: hr, above: 120}\n"
                 f"  crypto: {{algorithm: aes-gcm, key_file: {tmp_path}/k}}\n")
    rt = Runtime(parse_board(text, "t.yaml"), virtual_time=True)
    events = rt.bus.subscribe("events/acq/#")
    rt.run_virtual(0.1)
    (ev,) = events.drain()
    assert ev.data["sealed"] and b"131" not in ev.to_wire()
    ring = Keyring()
    ring.add(rt.lookup("acquisition").sealer)
    opened = ring.open("events/acq/tachycardia", ev.data)
    assert opened["state"] == "raised" and opened["value"] == 131.0


def modbus_sampler(port, cycle, timeout_s=0.2, stale_ms=None):
    ch = ChannelConfig(name="pressure", device="plc", unit="kPa", period_ms=5, scale=0.1,
                       stale_ms=stale_ms, source={"table": "holding", "address": 4,
                                                  "type": "uint16"})
    dev = DeviceConfig("plc", "modbus_tcp", period_ms=2,
                       link=ModbusLink("tcp", port=port, timeout_s=timeout_s),
                       backoff=Backoff(0.01, 0.05))
    cfg = AcquisitionConfig(devices=[dev], channels=[ch])
    return Sampler(cfg, cycle.period_ns, tick_fn=lambda: cycle.tick)


async def test_modbus_values_reach_the_bus_under_let(modbus_device):
    cycle = Cycle(1_000_000, 1)
    bus = Bus()
    ex = Executor(cycle, bus)
    sampler = modbus_sampler(modbus_device.port, cycle)
    ex.add_task(sampler.task)
    sub = bus.subscribe("acq/pressure")
    status = bus.subscribe("status/acq/plc")
    await modbus_device.set_value("holding", 4, 1013)
    async with sampler.service():
        poller = sampler.pollers["plc"]
        await poller.wait_attempts(2)
        ex.step(10)
        first = sub.drain()
        assert first[0].data["value"] == pytest.approx(101.3)
        assert first[0].data["quality"] == "GOOD" and first[0].data["tick"] == 0
        await modbus_device.set_value("holding", 4, 998)
        polls = poller.polls
        while poller.polls < polls + 2:           # a poll that surely saw the change
            await poller.wait_attempts(1)
        ex.step(10)
        assert sub.drain()[-1].data["value"] == pytest.approx(99.8)
    assert status.drain()[0].data["connected"] is True


async def test_a_dead_device_never_blocks_the_executor(unused_tcp_port):
    cycle = Cycle(1_000_000, 1)
    bus = Bus()
    ex = Executor(cycle, bus)
    sampler = modbus_sampler(unused_tcp_port, cycle, timeout_s=2.0, stale_ms=20)
    ex.add_task(sampler.task)
    sub = bus.subscribe("acq/pressure")
    async with sampler.service():
        await sampler.pollers["plc"].wait_attempts(1)
        t = time.perf_counter()
        ex.step(200)
        took = time.perf_counter() - t
        await asyncio.sleep(0)
    assert took < 0.5                                # 200 ticks, device timeout 2 s
    q = [m.data["quality"] for m in sub.drain()]
    assert q == ["COMM_ERROR"]                       # once per transition
    assert sampler.stats()["devices"]["plc"]["errors"]["connect"] >= 1


def test_polls_beyond_the_queue_bound_are_dropped_oldest_first_and_counted():
    from edge.acquisition.sampler import PENDING_MAX

    cycle = Cycle(1_000_000, 1)
    sampler = modbus_sampler(1, cycle)              # its poller is never started
    sink = sampler.sink_for("plc")
    for k in range(PENDING_MAX + 10):
        sink({"pressure": float(k)}, 0, k)
    assert sampler.dropped_readings == 10
    taken = sampler.queues["plc"].take("pressure", 0)
    assert len(taken) == PENDING_MAX and taken[0][1] == 10     # the 10 oldest went
    assert sampler.dropped_readings == 10 and sampler.stats()["dropped_readings"] == 10


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["poll", "a", "b", "trim"]),
                          st.integers(0, 4)), max_size=150),
       st.integers(1, 12))
def test_a_device_queue_gives_every_channel_each_poll_once_or_counts_it_lost(ops, bound):
    """One queue shared by the channels of a device: each channel takes every poll once,
    in order, at the first release at or after its tick, unless the bound dropped it
    first, and then it counts as lost; nothing is lost while the queue has room."""
    from edge.acquisition.sampler import PollQueue

    queue = PollQueue(["a", "b"], bound)
    appended: list[tuple] = []
    got: dict[str, list[tuple]] = {"a": [], "b": []}
    overflowed = False
    tick = 0
    released = {"a": 0, "b": 0}
    for step, (advance, op, lag) in enumerate(ops):
        tick += advance                       # ticks rise; polls and releases interleave
        if op == "poll":
            overflowed |= len(queue.records) == bound
            record = (tick, step, {"a": float(step)}, None, None)
            queue.records.append(record)
            queue.appended += 1
            appended.append(record)
        elif op == "trim":
            queue.trim()
        else:                                 # a release lags the polls by `lag` ticks
            released[op] = max(released[op], tick - lag)
            taken = queue.take(op, released[op])
            assert all(r[0] <= released[op] for r in taken)
            untaken = min(queue.appended - queue.taken[op], len(queue.records))
            left = list(queue.records)[len(queue.records) - untaken:]
            assert all(r[0] > released[op] for r in left)             # later ones wait
            got[op] += taken
    for c in "ab":
        got[c] += queue.take(c, tick)         # a last release takes what is left
        assert got[c] == sorted(got[c], key=lambda r: r[1])          # in order, once each
        assert len(got[c]) + queue.lost(c) == len(appended)          # or counted lost
        assert set(map(id, got[c])) <= set(map(id, appended))
        if not overflowed:
            assert got[c] == appended


async def test_readings_after_the_release_tick_wait_for_the_next_release(modbus_device):
    cycle = Cycle(1_000_000, 1)
    ex = Executor(cycle, Bus())
    sampler = modbus_sampler(modbus_device.port, cycle)
    sink = sampler.sink_for("plc")
    sink({"pressure": 5.0}, 3, 0)
    sink({"pressure": 6.0}, 7, 0)                   # acquired after release 5
    got = []
    ex.bus.subscribe("acq/pressure", callback=got.append)
    ex.add_task(sampler.task)
    ex.step(16)                                      # releases 0, 5, 10 (visible by 15)
    assert [m.data["value"] for m in got] == [pytest.approx(0.5), pytest.approx(0.6)]
    assert [m.data["tick"] for m in got] == [3, 7]


def test_channel_filters_see_every_simulated_sample_between_releases():
    ch = ChannelConfig(name="x", device="sim", period_ms=50,
                       filter=FilterSpec("moving_average", window=5),
                       source={"signal": "ramp", "slope": 1000.0})
    cfg = AcquisitionConfig(devices=[DeviceConfig("sim", "simulated", period_ms=10)],
                            channels=[ch])
    cycle = Cycle(1_000_000, 1)
    ex = Executor(cycle, Bus())
    s = Sampler(cfg, cycle.period_ns, lambda: cycle.tick, virtual_time=True)
    got = []
    ex.bus.subscribe("acq/x", callback=got.append)
    ex.add_task(s.task)
    ex.step(120)
    # raw = 1000 * t = tick, sampled at 0, 10, 20, ...: release 50 averages 10..50 (30),
    # release 100 averages 60..100 (80): every sample between releases went through
    assert [m.data["value"] for m in got] == pytest.approx([0.0, 30.0, 80.0])
    assert [m.data["tick"] for m in got] == [0, 50, 100]


def test_usage_config_running_channel(tmp_path):
    ch = ChannelConfig(name="motor", device="sim", period_ms=10,
                       source={"signal": "square", "offset": 1.0, "amplitude": 1.0,
                               "period_s": 1.0})
    cfg = AcquisitionConfig(devices=[DeviceConfig("sim", "simulated", period_ms=10)],
                            channels=[ch], usage=UsageConfig(str(tmp_path / "u.json"), 0.1,
                                                             "motor", 0.5))
    cycle = Cycle(1_000_000, 1)
    ex = Executor(cycle, Bus())
    s = Sampler(cfg, cycle.period_ns, lambda: cycle.tick, virtual_time=True)
    ex.add_task(s.task)
    ex.step(2000)                                    # running half of each second
    assert s.usage.counters.running_s == pytest.approx(1.0, abs=0.02)


def test_crypto_config_rejects_a_bad_key_at_construction(tmp_path):
    (tmp_path / "k").write_bytes(b"short")
    cfg = AcquisitionConfig(devices=[DeviceConfig("sim", "simulated")], channels=[],
                            crypto=CryptoConfig("aes-gcm", str(tmp_path / "k")))
    from edge.errors import CryptoError
    with pytest.raises(CryptoError):
        Sampler(cfg, 1_000_000, lambda: 0)


async def test_runtime_runs_pollers_as_services_in_real_time(modbus_device, tmp_path):
    await modbus_device.set_value("holding", 0, 21.5, "float32")
    text = f"""name: t
cycle: {{period_us: 1000, busy_tail_us: 0, lock_memory: false}}
axes: [{{name: a, max_velocity: 1.0, max_acceleration: 1.0}}]
acquisition:
  devices:
    - {{name: plc, kind: modbus_tcp, host: 127.0.0.1, port: {modbus_device.port}, period_ms: 5}}
  channels:
    - {{name: t, device: plc, table: holding, address: 0, type: float32, period_ms: 10}}
  usage: {{file: {tmp_path}/u.json, save_every_s: 0.1}}
"""
    rt = Runtime(parse_board(text, "t.yaml"))
    sub = rt.bus.subscribe("acq/t")
    await rt.run_realtime(0.4)
    msgs = sub.drain()
    assert msgs and msgs[-1].data == {**msgs[-1].data, "value": 21.5, "quality": "GOOD"}
    for m in msgs:
        assert m.data["tick"] <= m.tick and m.data["t_ns"] <= m.t_ns
    summary = rt.summary()["acquisition"]
    assert summary["devices"]["plc"]["polls"] > 10
    assert sum(summary["devices"]["plc"]["errors"].values()) == 0
    saved = UsageStore(tmp_path / "u.json").load()
    assert saved.power_cycles == 1
    assert saved.running_s == rt.lookup("acquisition").usage.counters.running_s > 0  # nothing lost


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59),
                          st.floats(-100, 100) | st.sampled_from([math.nan, math.inf,
                                                                  -math.inf])),
                max_size=40),
       st.integers(1, 4))
def test_outputs_depend_on_reading_ticks_not_on_when_readings_arrived(readings, feed_every):
    """LET: readings stamped with ticks give the same bus outputs whether the poller
    delivered them all up front or trickling in as time passed. Readings include NaN and
    infinities: whatever the path, they are published INVALID, never GOOD."""
    readings = sorted(readings, key=lambda r: r[0])

    def run(trickle: bool):
        cycle = Cycle(1_000_000, 1)
        ex = Executor(cycle, Bus())
        s = modbus_sampler(1, cycle)                 # its poller is never started
        ex.add_task(s.task)
        out = []
        ex.bus.subscribe("acq/pressure", callback=lambda m: out.append(
            (m.tick, m.data["tick"], m.data["quality"], m.data["value"])))
        pending = list(readings)
        for step in range(0, 70, feed_every):
            # a reading stamped k exists before the executor handles tick k
            while pending and (not trickle or pending[0][0] < step + feed_every):
                tick, v = pending.pop(0)
                s.sink_for("plc")({"pressure": v}, tick, tick * 1000)
            ex.step(feed_every)
        return out

    a, b = run(False), run(True)
    assert a == b
    by_tick = {}
    for tick, v in readings:
        by_tick.setdefault(tick, []).append(v)
    for pub_tick, acq_tick, quality, value in a:
        assert acq_tick <= pub_tick
        if quality == "GOOD":
            assert math.isfinite(value)              # a reading of that tick, scaled by 0.1
            assert value == pytest.approx(by_tick[acq_tick][-1] * 0.1)
        elif quality == "INVALID":
            assert value is None and not all(map(math.isfinite, by_tick[acq_tick]))


def test_rtu_units_on_one_port_share_one_line():
    text = """name: t
cycle: {period_us: 1000}
axes: [{name: a, max_velocity: 1.0, max_acceleration: 1.0}]
acquisition:
  devices:
    - {name: psu, kind: modbus_rtu, port: /dev/ttyUSB7, unit: 1}
    - {name: fan, kind: modbus_rtu, port: /dev/ttyUSB7, unit: 2}
    - {name: aux, kind: modbus_rtu, port: /dev/ttyUSB8, unit: 1}
  channels:
    - {name: v, device: psu, table: input, address: 0}
    - {name: rpm, device: fan, table: input, address: 0}
    - {name: x, device: aux, table: input, address: 0}
"""
    s = Runtime(parse_board(text, "t.yaml"), virtual_time=True).lookup("acquisition")
    assert s.sources["psu"].conn is s.sources["fan"].conn
    assert s.sources["aux"].conn is not s.sources["psu"].conn


async def test_a_modbus_float32_reading_inf_is_invalid_and_trips_no_threshold(modbus_device):
    """A float32 channel without a `valid` range: the device's +inf (0x7F800000, written
    as raw register words, not through our encoder) is published INVALID with a reason and
    no value, and the threshold above 50 stays quiet; the next finite value is GOOD."""
    import struct

    from edge.acquisition.thresholds import ThresholdRule

    ch = ChannelConfig(name="current", device="plc", unit="A", period_ms=5,
                       source={"table": "holding", "address": 0, "type": "float32"})
    dev = DeviceConfig("plc", "modbus_tcp", period_ms=2,
                       link=ModbusLink("tcp", port=modbus_device.port, timeout_s=0.2),
                       backoff=Backoff(0.01, 0.05))
    cfg = AcquisitionConfig(devices=[dev], channels=[ch],
                            thresholds=[ThresholdRule("over", "current", above=50.0)])
    cycle = Cycle(1_000_000, 1)
    ex = Executor(cycle, Bus())
    sampler = Sampler(cfg, cycle.period_ns, tick_fn=lambda: cycle.tick)
    ex.add_task(sampler.task)
    sub = ex.bus.subscribe("acq/current")
    events = ex.bus.subscribe("events/acq/#")

    async def show(words):
        await modbus_device.set_registers("holding", 0, list(words))
        poller = sampler.pollers["plc"]
        polls = poller.polls
        while poller.polls < polls + 2:           # a poll that surely saw the change
            await poller.wait_attempts(1)
        ex.step(10)
        return sub.drain()[-1].data

    async with sampler.service():
        await sampler.pollers["plc"].wait_attempts(1)
        assert (await show(struct.unpack(">HH", struct.pack(">f", 1.5))))["quality"] == "GOOD"
        inf = await show(struct.unpack(">HH", struct.pack(">f", math.inf)))
        assert (inf["quality"], inf["value"], inf["reason"]) == ("INVALID", None, "+inf")
        back = await show(struct.unpack(">HH", struct.pack(">f", 2.5)))
        assert (back["quality"], back["value"]) == ("GOOD", 2.5)
        nan = await show((0x7FC0, 0x0000))         # a quiet NaN
        assert (nan["quality"], nan["value"], nan["reason"]) == ("INVALID", None, "NaN")
    assert events.drain() == []
    assert sampler.stats()["channels"]["current"]["INVALID"] >= 1


@pytest.mark.parametrize("save_every_s", [0.7, 60.0])
def test_usage_counters_keep_the_last_interval_of_a_virtual_time_run(tmp_path, save_every_s):
    """10 s of virtual run shows 10 s saved: the sampler's task runs every 10 ms (the
    simulated device's period), so 1,000 releases of 0.01 s each, by hand; the counters
    are saved at stop whatever the save period (0.7 s left 9.8 s, 60 s left 0 s)."""
    text = board("    - {name: temp, device: sim, period_ms: 10}",
                 f"  usage: {{file: {tmp_path}/u.json, save_every_s: {save_every_s}}}\n")
    rt = Runtime(parse_board(text, "t.yaml"), virtual_time=True)
    assert rt.lookup("acquisition").task.period_ticks == 10
    rt.run_virtual(10.0)
    saved = UsageStore(tmp_path / "u.json").load()
    assert saved.running_s == pytest.approx(10.0, abs=1e-9)
    assert saved.power_cycles == 1

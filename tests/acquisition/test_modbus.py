"""Modbus sources against a real pymodbus server: batching, types, dead/late/corrupt."""

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.acquisition.channel import ChannelConfig, Quality, Reading
from edge.acquisition.sources import Backoff, DevicePoller, collecting_sink
from edge.acquisition.sources.modbus import (
    TABLES,
    ModbusLink,
    ModbusSource,
    channel_width,
    plan_reads,
)


def ch(name, table, address, dtype="uint16", bo="big", wo="big"):
    return ChannelConfig(name=name, device="dev", source={
        "table": table, "address": address, "type": dtype, "byte_order": bo, "word_order": wo})


channel_specs = st.lists(st.tuples(st.sampled_from(TABLES), st.integers(0, 300),
                                   st.sampled_from(["uint16", "int32", "float32"])),
                         min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(channel_specs, st.integers(2, 130))
def test_plan_covers_every_channel_once_within_limits(specs, limit):
    chans = [ch(f"c{i}", t, a, d) for i, (t, a, d) in enumerate(specs)]
    limits = dict.fromkeys(TABLES, limit)
    blocks = plan_reads(chans, 0, limits)
    seen = [m[0].name for b in blocks for m in b.members]
    assert sorted(seen) == sorted(c.name for c in chans)
    for b in blocks:
        assert b.count <= limit
        for c, off, width in b.members:
            assert c.source["table"] == b.table
            assert b.start + off == c.source["address"] and off + width <= b.count
    # oracle: with an unreachable limit, one block per run of touching address ranges
    blocks = plan_reads(chans, 0, dict.fromkeys(TABLES, 10**6))
    for table in TABLES:
        used = set()
        for c in chans:
            if c.source["table"] == table:
                used |= set(range(c.source["address"], c.source["address"] + channel_width(c)))
        runs = sum(1 for a in used if a - 1 not in used)
        assert sum(1 for b in blocks if b.table == table) == runs


async def test_reads_every_type_with_one_request_per_contiguous_block(modbus_device):
    chans = [ch("f_big", "holding", 0, "float32"),
             ch("f_swap", "holding", 2, "float32", wo="little"),
             ch("i16", "holding", 4, "int16"), ch("u32", "holding", 5, "uint32", bo="little"),
             ch("in32", "input", 10, "int32"), ch("coil", "coil", 7), ch("di", "discrete", 3)]
    await modbus_device.set_value("holding", 0, 21.5, "float32")
    await modbus_device.set_value("holding", 2, -3.25, "float32", word_order="little")
    await modbus_device.set_value("holding", 4, -123, "int16")
    await modbus_device.set_value("holding", 5, 3_000_000_000, "uint32", byte_order="little")
    await modbus_device.set_value("input", 10, -70000, "int32")
    await modbus_device.set_value("coil", 7, 1)
    await modbus_device.set_value("discrete", 3, 1)
    src = ModbusSource("dev", chans, ModbusLink("tcp", port=modbus_device.port, timeout_s=1.0))
    await src.open()
    try:
        values, refused = await src.read()
    finally:
        await src.close()
    assert refused is None
    assert values == {"f_big": 21.5, "f_swap": -3.25, "i16": -123.0, "u32": 3e9,
                      "in32": -70000.0, "coil": 1.0, "di": 1.0}
    assert src.requests == 4 == len(src.blocks)       # holding 0..6 is one request


def make_poller(port, chans, timeout_s=0.1, period_s=0.01):
    got: dict[str, list[Reading]] = {}
    src = ModbusSource("dev", chans, ModbusLink("tcp", port=port, timeout_s=timeout_s))
    poller = DevicePoller(src, period_s, collecting_sink(got),
                          tick_fn=lambda: 0, backoff=Backoff(0.01, 0.04))
    return poller, got


async def test_exception_response_refuses_only_that_block(modbus_device):
    chans = [ch("ok", "holding", 1), ch("beyond", "holding", 500)]   # the device has 200
    await modbus_device.set_value("holding", 1, 42)
    poller, got = make_poller(modbus_device.port, chans)
    async with poller.service():
        await poller.wait_attempts(2)
    assert got["ok"][-1].raw == 42.0
    assert got["beyond"][-1].raw is None and got["beyond"][-1].error == "exception"
    assert poller.errors["exception"] >= 2 and poller.polls >= 2


async def test_dead_device_is_retried_with_backoff_and_never_blocks_the_loop(unused_tcp_port):
    poller, got = make_poller(unused_tcp_port, [ch("x", "holding", 0)])
    lags = []

    async def ticker():                      # another device / the executor's loop
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - t - 0.002)

    tick_task = asyncio.create_task(ticker())
    async with poller.service():
        await poller.wait_attempts(5)
    tick_task.cancel()
    assert poller.errors["connect"] >= 5 and poller.polls == 0 and poller.connects == 0
    assert all(r.raw is None and r.error == "connect" for r in got["x"])
    assert max(lags) < 0.05                  # the loop kept running throughout
    assert len(lags) >= 10


async def test_silent_device_times_out_then_recovers(modbus_device, modbus_faults):
    await modbus_device.set_value("holding", 0, 7)
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)])
    async with poller.service():
        await poller.wait_attempts(2)
        assert got["x"][-1].raw == 7.0
        modbus_faults.faults.silent = True
        await poller.wait_attempts(3)
        assert poller.errors["timeout"] >= 1
        assert any(r.error == "timeout" for r in got["x"])
        modbus_faults.faults.clear()
        await modbus_device.set_value("holding", 0, 8)
        polls = poller.polls
        while poller.polls < polls + 2:
            await poller.wait_attempts(1)
    assert got["x"][-1].raw == 8.0
    assert poller.connects >= 2                 # it reconnected after the timeouts


async def test_late_answers_beyond_the_timeout_count_as_timeouts(modbus_device, modbus_faults):
    await modbus_device.set_value("holding", 0, 5)
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)], timeout_s=0.1)
    modbus_faults.faults.delay_s = 0.02                 # late but within the timeout: fine
    async with poller.service():
        await poller.wait_attempts(3)
        assert poller.polls >= 3 and poller.errors["timeout"] == 0
        modbus_faults.faults.delay_s = 0.3              # later than the timeout
        await poller.wait_attempts(3)
    assert poller.errors["timeout"] >= 1
    assert got["x"][-1].error == "timeout"


async def until_a_timeout(poller):
    """Polls until the first timeout (a reply already on its way when the fault was set
    may still arrive in time); at most three attempts, each bounded."""
    for _ in range(3):
        await poller.wait_attempts(1, timeout_s=2.0)
        if poller.errors["timeout"]:
            break
    assert poller.errors["timeout"] == 1


async def test_tcp_timeout_is_kept_by_the_watchdog_never_early(modbus_device, modbus_faults):
    """The connection's watchdog (one timer, no per-request timer) fails a request after
    at least the timeout and less than 1.25 times it; an answer just inside the timeout
    is never cut off."""
    await modbus_device.set_value("holding", 0, 5)
    timeout = 0.2
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)], timeout_s=timeout)
    modbus_faults.faults.delay_s = 0.75 * timeout            # late, inside the timeout
    async with poller.service():
        await poller.wait_attempts(4)
        assert poller.polls >= 4 and poller.errors["timeout"] == 0
        last_good = got["x"][-1].t_ns
        modbus_faults.faults.delay_s = 30.0                  # no answer in time any more
        await until_a_timeout(poller)
        conn = poller.source.conn
        failed = next(r for r in got["x"] if r.error == "timeout")
    waited = (failed.t_ns - last_good) / 1e9         # the request went out after last_good
    assert timeout <= waited < 1.25 * timeout + 0.01 + 0.1     # + period, loop slack
    assert conn.watchdog_timeouts >= 1


async def test_tcp_timeout_falls_back_to_pymodbus_where_the_watchdog_cannot_reach(
        modbus_device, modbus_faults, monkeypatch):
    """A pymodbus whose request future the watchdog cannot find keeps its own timeout."""
    from edge.acquisition.sources.modbus import ModbusConnection

    monkeypatch.setattr(ModbusConnection, "_watchable", lambda self, client: False)
    await modbus_device.set_value("holding", 0, 5)
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)], timeout_s=0.1)
    async with poller.service():
        await poller.wait_attempts(2)
        modbus_faults.faults.delay_s = 30.0
        await until_a_timeout(poller)
        conn = poller.source.conn
    assert poller.errors["timeout"] == 1 and conn.watchdog_timeouts == 0
    assert got["x"][-1].error == "timeout"


async def test_corrupt_answers_are_counted_as_corrupt(modbus_device, modbus_faults):
    await modbus_device.set_value("holding", 0, 9)
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)], timeout_s=0.1)
    async with poller.service():
        await poller.wait_attempts(1)
        modbus_faults.faults.corrupt = True
        await poller.wait_attempts(4)
        assert poller.errors["corrupt"] >= 1
        modbus_faults.faults.clear()
        polls = poller.polls
        while poller.polls < polls + 1:
            await poller.wait_attempts(1)
    assert got["x"][-1].raw == 9.0
    assert modbus_faults.faults.corrupted >= 1


def test_quality_follows_the_readings_of_a_failing_device():
    from edge.acquisition.channel import Channel
    c = Channel(ch("x", "holding", 0), sample_rate_hz=100.0, period_ns=1_000_000)
    assert c.ingest([Reading(None, 3, 0, "timeout")], tick=5).quality == Quality.COMM_ERROR
    assert c.ingest([Reading(1.0, 6, 0)], tick=10).quality == Quality.GOOD


async def test_device_hanging_up_is_a_disconnect_and_the_poller_reconnects(modbus_device,
                                                                            modbus_faults):
    await modbus_device.set_value("holding", 0, 3)
    poller, got = make_poller(modbus_faults.port, [ch("x", "holding", 0)], timeout_s=0.2)
    async with poller.service():
        await poller.wait_attempts(2)
        connects = poller.connects
        await modbus_faults.drop_connections()
        polls = poller.polls
        while poller.polls < polls + 3:
            await poller.wait_attempts(1)
    assert poller.errors["disconnect"] + poller.errors["timeout"] >= 1
    assert poller.connects > connects and modbus_faults.connections >= 2
    assert got["x"][-1].raw == 3.0


@given(st.floats(1e-3, 1.0), st.floats(1.0, 60.0), st.floats(1.0, 4.0), st.integers(0, 200))
def test_backoff_grows_and_is_capped(initial, cap, factor, n):
    b = Backoff(initial, max(cap, initial), factor)
    assert b.delay(0) == pytest.approx(min(initial, b.max_s))
    assert b.delay(n) <= b.delay(n + 1) <= b.max_s


async def test_an_unexpected_driver_exception_is_counted_and_the_poller_lives_on(modbus_device):
    class HalfBrokenSource(ModbusSource):
        """A driver with a bug on every other read (a real Modbus exchange otherwise)."""

        calls = 0

        async def read(self):
            HalfBrokenSource.calls += 1
            if HalfBrokenSource.calls % 2:
                raise ValueError("driver bug")
            return await super().read()

    await modbus_device.set_value("holding", 0, 11)
    got = {}
    src = HalfBrokenSource("dev", [ch("x", "holding", 0)],
                           ModbusLink("tcp", port=modbus_device.port))
    poller = DevicePoller(src, 0.001, collecting_sink(got),
                          tick_fn=lambda: 0, backoff=Backoff(0.001, 0.002))
    async with poller.service():
        await poller.wait_attempts(6)
    assert poller.errors["other"] >= 2 and poller.polls >= 2
    assert got["x"][-1].raw in (11.0, None) and any(r.raw == 11.0 for r in got["x"])


def test_registers_the_codec_cannot_read_fail_the_poll_not_the_release():
    """Values decode at the release: a register outside 0..65535 (a broken driver) turns
    into a failed reading there, never an exception in the release."""
    from edge.acquisition.channel import PollReadings
    from edge.acquisition.sources.modbus import DecodedOnRead

    src = ModbusSource("dev", [ch("x", "holding", 0, "float32")], ModbusLink("tcp", port=1))
    good = DecodedOnRead(src, [[0x41A0, 0]])
    bad = DecodedOnRead(src, [[70_000, 0]])
    readings = PollReadings([(1, 10, good, None, None), (2, 20, bad, None, None)], "x")
    assert readings[0].raw == 20.0
    assert readings[1].raw is None and readings[1].error == "other"
    assert src.undecodable == 1

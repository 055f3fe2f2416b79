"""Modbus RTU over a real pty pair (null-modem link) to a pymodbus serial server (the
plugin's `modbus_rtu_device`)."""

import pytest

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import Backoff, DevicePoller, collecting_sink
from edge.acquisition.sources.modbus import ModbusLink, ModbusSource


def ch(name, address, dtype="uint16"):
    return ChannelConfig(name=name, device="rtu", source={"table": "holding",
                                                          "address": address, "type": dtype})


@pytest.mark.modbus_rtu_device(unit=3, size=50)
async def test_rtu_reads_then_counts_crc_corruption_and_silence(modbus_rtu_device):
    dev = modbus_rtu_device
    await dev.set_value("holding", 0, 12.75, "float32")
    await dev.set_value("holding", 2, 4321)
    got = {}
    src = ModbusSource("rtu", [ch("temp", 0, "float32"), ch("count", 2)],
                       ModbusLink("rtu", serial_port=dev.path, baudrate=115200,
                                  unit=3, timeout_s=0.15))
    poller = DevicePoller(src, 0.01, collecting_sink(got),
                          tick_fn=lambda: 0, backoff=Backoff(0.01, 0.04))
    async with poller.service():
        await poller.wait_attempts(2)
        assert got["temp"][-1].raw == 12.75 and got["count"][-1].raw == 4321.0
        dev.faults.corrupt = True                # CRC no longer matches
        await poller.wait_attempts(3)
        assert poller.errors["corrupt"] >= 1
        dev.faults.corrupt = False
        dev.faults.silent = True
        await poller.wait_attempts(3)
        assert poller.errors["timeout"] >= 1
        dev.faults.silent, dev.faults.delay_s = False, 0.3   # later than 0.15 s
        timeouts = poller.errors["timeout"]
        await poller.wait_attempts(2)
        assert poller.errors["timeout"] > timeouts
        dev.faults.clear()
        await dev.set_value("holding", 2, 4322)
        polls = poller.polls
        while poller.polls < polls + 6:
            await poller.wait_attempts(1)
    assert got["count"][-1].raw == 4322.0
    assert len(src.blocks) == 1                  # registers 0..2: one request


@pytest.mark.modbus_rtu_device(unit=1, size=20, more_units=(2,))
async def test_units_sharing_one_line_poll_on_while_an_absent_unit_times_out(
        modbus_rtu_device):
    from edge.acquisition.sources.modbus import ModbusConnection

    dev = modbus_rtu_device
    await dev.set_value("holding", 0, 101, unit=1)
    await dev.set_value("holding", 0, 202, unit=2)
    links = {u: ModbusLink("rtu", serial_port=dev.path, baudrate=115200,
                           unit=u, timeout_s=0.1) for u in (1, 2, 7)}    # 7 is absent
    line = ModbusConnection(links[1])
    got, pollers = {}, {}
    for u, link in links.items():
        src = ModbusSource(f"u{u}", [ChannelConfig(name=f"v{u}", device=f"u{u}", source={
            "table": "holding", "address": 0, "type": "uint16"})], link, line)
        pollers[u] = DevicePoller(src, 0.005,
                                  collecting_sink(got),
                                  tick_fn=lambda: 0, backoff=Backoff(0.01, 0.02))
    async with pollers[1].service(), pollers[2].service(), pollers[7].service():
        await pollers[7].wait_attempts(4, timeout_s=10)
        await pollers[1].wait_attempts(4, timeout_s=10)
        await pollers[2].wait_attempts(4, timeout_s=10)
    assert got["v1"][-1].raw == 101.0 and got["v2"][-1].raw == 202.0
    assert pollers[7].errors["timeout"] >= 3 and pollers[7].polls == 0
    for u in (1, 2):       # the dead unit never took the line down for the others
        assert sum(pollers[u].errors.values()) == 0, pollers[u].errors
        assert pollers[u].connects == 1
    assert line.client is None                      # the last unit closed the line

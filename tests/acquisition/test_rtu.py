"""Modbus RTU over a real pty pair (null-modem link) to a pymodbus serial server."""

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import Backoff, DevicePoller
from edge.acquisition.sources.modbus import ModbusLink, ModbusSource
from hil.slave_sim import SlaveSimulator


def ch(name, address, dtype="uint16"):
    return ChannelConfig(name=name, device="rtu", source={"table": "holding",
                                                          "address": address, "type": dtype})


async def test_rtu_reads_then_counts_crc_corruption_and_silence(pty_link):
    sim = SlaveSimulator(unit=3, size=50)
    async with sim.rtu(pty_link.device_path):
        await sim.set_value("holding", 0, 12.75, "float32")
        await sim.set_value("holding", 2, 4321)
        got = {}
        src = ModbusSource("rtu", [ch("temp", 0, "float32"), ch("count", 2)],
                           ModbusLink("rtu", serial_port=pty_link.client_path, baudrate=115200,
                                      unit=3, timeout_s=0.15))
        poller = DevicePoller(src, 0.01, lambda n, r: got.setdefault(n, []).append(r),
                              tick_fn=lambda: 0, backoff=Backoff(0.01, 0.04))
        async with poller.service():
            await poller.wait_attempts(2)
            assert got["temp"][-1].raw == 12.75 and got["count"][-1].raw == 4321.0
            pty_link.faults.corrupt = True           # CRC no longer matches
            await poller.wait_attempts(3)
            assert poller.errors["corrupt"] >= 1
            pty_link.faults.corrupt = False
            pty_link.faults.silent = True
            await poller.wait_attempts(3)
            assert poller.errors["timeout"] >= 1
            pty_link.faults.silent, pty_link.faults.delay_s = False, 0.3   # later than 0.15 s
            timeouts = poller.errors["timeout"]
            await poller.wait_attempts(2)
            assert poller.errors["timeout"] > timeouts
            pty_link.faults.clear()
            await sim.set_value("holding", 2, 4322)
            polls = poller.polls
            while poller.polls < polls + 6:
                await poller.wait_attempts(1)
        assert got["count"][-1].raw == 4322.0
        assert len(src.blocks) == 1                  # registers 0..2: one request

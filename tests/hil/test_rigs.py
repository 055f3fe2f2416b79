"""The rig resources really start and serve, each in one `async with` block: clients we
did not write (pymodbus, paho, pyserial) read registers from the TCP and RTU devices, a
line from the serial device and a message through the broker; `edge run` of the sim arm
board is killed with SIGKILL during a broker outage and its restart sends the journal;
a rig that cannot start is one error line, quickly."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

import pytest
import serial
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from edge.acquisition.sources.serial import SerialLink
from hil.mqtt_peer import PahoPeer, wait_until
from hil.rigs import (
    Broker,
    BrokerFaults,
    EdgeProcess,
    EdgeRig,
    ModbusRtuDevice,
    ModbusTcpDevice,
    RigError,
    SerialDevice,
    TcpFaultLink,
)
from hil.rigs.modbus import quiet_pymodbus


@pytest.fixture(autouse=True)
def _quiet():
    with quiet_pymodbus():
        yield


def words_of_float(value: float) -> list[int]:
    """A float32 as two big-endian registers, most significant first (the Modbus default,
    MODBUS Application Protocol 4.2), written out here with struct."""
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def tcp_client(port: int, timeout_s: float = 2.0) -> AsyncModbusTcpClient:
    return AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout_s, retries=0,
                                reconnect_delay=0)


def rtu_client(path: str, timeout_s: float = 2.0) -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient(path, framer=FramerType.RTU, baudrate=115200,
                                   timeout=timeout_s, retries=0, reconnect_delay=0)


async def read_holding(client, address: int, count: int = 1, unit: int = 1) -> list[int]:
    """One read on a new connection of `client`, closed after."""
    await client.connect()
    try:
        return (await client.read_holding_registers(address, count=count,
                                                    device_id=unit)).registers
    finally:
        client.close()


async def test_a_tcp_device_serves_its_registers_to_a_pymodbus_client():
    async with ModbusTcpDevice(unit=4, size=50) as dev:
        await dev.set_value("holding", 3, 1234)
        await dev.set_value("holding", 10, -2.5, "float32")
        await dev.set_value("input", 7, -2, "int16")
        held = await read_holding(tcp_client(dev.port), 3, unit=4)
        flt = await read_holding(tcp_client(dev.port), 10, count=2, unit=4)
        client = tcp_client(dev.port)
        await client.connect()
        try:
            inp = (await client.read_input_registers(7, count=1, device_id=4)).registers
        finally:
            client.close()
    assert held == [1234]
    assert flt == words_of_float(-2.5)
    assert inp == [0xFFFE]                           # -2 in two's complement
    assert not dev.running


async def test_an_rtu_device_on_a_pty_serves_a_pymodbus_client_and_its_faults_bite():
    async with ModbusRtuDevice(unit=5, size=20) as dev:
        await dev.set_value("holding", 2, 4321)
        first = await read_holding(rtu_client(dev.path), 2, unit=5)
        dev.faults.silent = True
        with pytest.raises(ModbusException):
            await read_holding(rtu_client(dev.path, timeout_s=0.3), 2, unit=5)
        dev.faults.clear()
        again = await read_holding(rtu_client(dev.path), 2, unit=5)
    assert first == [4321] and again == [4321]
    assert dev.faults.dropped >= 1                   # answers (pty reads) swallowed


async def test_a_serial_device_answers_a_pyserial_client_with_the_line_it_should():
    link = SerialLink(port="", request=b"MEAS?\r\n", format="keyvalue", separator=";",
                      terminator=b"\r\n")
    async with SerialDevice(link, {"temp": 23.5, "hum": 41}) as dev:
        def ask() -> bytes:
            with serial.Serial(dev.path, 115200, timeout=2) as port:
                port.write(b"MEAS?\r\n")
                return port.read_until(b"\r\n")

        line = await asyncio.to_thread(ask)
        assert dev.requests == 1
    assert line == b"temp=23.5;hum=41\r\n"          # docs/acquisition.md: key=value pairs


async def test_device_faults_by_name_on_a_tcp_link():
    async with ModbusTcpDevice(size=10) as dev, TcpFaultLink(dev.port) as link:
        await dev.set_value("holding", 0, 77)
        assert await read_holding(tcp_client(link.port), 0) == [77]
        await link.faults.set("silent")
        with pytest.raises(ModbusException):
            await read_holding(tcp_client(link.port, timeout_s=0.3), 0)
        await link.faults.set("silent", on=False)
        assert await read_holding(tcp_client(link.port), 0) == [77]
        held = tcp_client(link.port)
        await held.connect()
        try:                                         # relayed once, so the link holds it
            assert (await held.read_holding_registers(0, device_id=1)).registers == [77]
            await link.faults.set("disconnect")
            await wait_until(lambda: not held.connected, 5)
        finally:
            held.close()
        assert await read_holding(tcp_client(link.port), 0) == [77]
        with pytest.raises(RigError, match="unknown device fault 'smoke'; known: silent, "
                                           "late, corrupt, disconnect"):
            await link.faults.set("smoke")
    assert link.connections == 5 and link.faults.dropped == 1


async def test_a_link_counts_the_answers_it_hands_on_later_than_slow_after_s():
    """A 0.3 s late answer against a 0.1 s threshold is slow; a prompt one is not."""
    async with ModbusTcpDevice(size=10) as dev, TcpFaultLink(dev.port) as link:
        link.faults.slow_after_s = 0.1
        assert await read_holding(tcp_client(link.port), 0) == [0]
        assert link.faults.slow == 0
        await link.faults.set("late", delay_s=0.3)
        assert await read_holding(tcp_client(link.port), 0) == [0]
        await link.faults.set("late", on=False)
        assert await read_holding(tcp_client(link.port), 0) == [0]
    assert link.faults.slow == 1 and link.faults.answers == 3


async def test_a_broker_round_trips_a_message_and_again_after_an_outage():
    async with Broker() as broker:
        peer = PahoPeer(broker.port, "rig/check", "checker", clean_session=False)
        try:
            await peer.wait_subscribed()
            peer.publish("rig/check", b"one")
            await peer.wait_for(lambda: peer.raw("rig/check") == [b"one"], 10)
            with BrokerFaults(broker).during("restart"), socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", broker.port)) != 0      # it is away
            await peer.wait_for(peer.client.is_connected, 10)
            peer.publish("rig/check", b"two")
            await peer.wait_for(lambda: peer.raw("rig/check") == [b"one", b"two"], 10)
        finally:
            peer.close()


async def test_edge_reaches_the_broker_through_a_link_that_can_be_cut(tmp_path):
    async with EdgeRig("sim_arm", tmp_path / "rig", via_link=True) as rig:
        peer = PahoPeer(rig.broker.port, "edge/v1/+/state/joints", "via-link")
        try:
            await peer.wait_for(lambda: len(peer.raw()) >= 5, 30)   # relayed by the link
            with rig.broker_faults.during("cut"):
                await asyncio.sleep(0.3)            # what was on the wire arrives
                during = len(peer.raw())
                await asyncio.sleep(0.5)            # 50 frames published meanwhile
                held = len(peer.raw()) - during
            after = len(peer.raw())
            await peer.wait_for(lambda: len(peer.raw()) > after + 20, 10)   # flowing again
        finally:
            peer.close()
        assert rig.url == f"mqtt://127.0.0.1:{rig.link.port}" != rig.broker.url
        assert rig.link.connections >= 1 and not rig.broker_faults.active
    assert held == 0
    with pytest.raises(RigError, match="fault 'cut' needs a TcpFaultLink"):
        BrokerFaults(rig.broker).begin("cut")


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def test_a_taken_port_is_one_clear_error_and_quick(taken_port):
    t0 = time.monotonic()
    with pytest.raises(RigError) as broker_error:
        Broker(port=taken_port)
    with pytest.raises(RigError) as device_error:
        async with ModbusTcpDevice(port=taken_port):
            pass
    assert str(broker_error.value) == f"broker: port {taken_port} on 127.0.0.1 is taken"
    assert str(device_error.value) == \
        f"modbus tcp device: port {taken_port} on 127.0.0.1 is taken"
    assert time.monotonic() - t0 < 2.0


def test_a_missing_mosquitto_is_one_clear_error(monkeypatch):
    import hil.rigs.broker

    monkeypatch.setattr(hil.rigs.broker, "find_mosquitto", lambda: None)
    with pytest.raises(RigError, match=r"^broker: mosquitto is not installed \(apt-get"):
        Broker()


async def test_an_edge_run_that_cannot_start_is_one_line_with_its_exit_code(tmp_path):
    board = tmp_path / "bad.yaml"
    board.write_text("name: bad\ncycle: {period_us: -5}\naxes: []\n")
    t0 = time.monotonic()
    with pytest.raises(RigError) as error:
        async with EdgeProcess(board, workdir=tmp_path / "edge", ready_timeout_s=30):
            pass
    message = str(error.value)
    assert message.startswith("edge run: exited with 2 before it was ready: edge: error: ")
    assert "bad.yaml" in message and "\n" not in message
    assert time.monotonic() - t0 < 30


@pytest.mark.slow
async def test_edge_run_killed_during_an_outage_sends_its_journal_after_a_restart(tmp_path):
    """The sim arm board against a real broker, audited by a paho consumer holding a
    persistent session. The broker stops; edge journals what it publishes; edge is
    killed with SIGKILL, the broker comes back, edge starts again on the same state
    directory. The consumer then has the first run's state/joints frames without a gap
    (seq 0..M, DESIGN.md: seq counts from 0 per topic per session with no gaps) and
    further than it had seen when the broker went away: the restart sent the journal."""
    topic = "edge/v1/+/state/joints"
    async with Broker(directory=str(tmp_path / "broker")) as broker:
        peer = PahoPeer(broker.port, topic, "ward-audit", clean_session=False)
        await peer.wait_subscribed()
        try:
            async with EdgeRig("sim_arm", tmp_path / "rig", broker=broker) as rig:
                edge = rig.edge
                await peer.wait_for(lambda: len(peer.raw()) >= 20, 30)
                seen_before = max(m["seq"] for m in decoded(peer))
                rig.broker_faults.begin("restart")
                at_outage = published(edge)
                await wait_until(lambda: published(edge) >= at_outage + 200, 30)
                killed_ns = time.time_ns()
                assert edge.kill() == -9
                rig.broker_faults.end("restart")
                await peer.wait_for(peer.client.is_connected, 10)
                await edge.start()                  # same state dir: the journal is read
                recovered = edge.stats()["mqtt"]["journal"]["recovered"]
                # the journal is one ordered log: once the second run's frames arrive,
                # everything the first run left in it was sent before them
                await wait_until(lambda: any(m["t_ns"] > killed_ns for m in decoded(peer)),
                                 30, poll_s=0.2)
                rc = await edge.stop()
        finally:
            peer.close()
    first_run = sorted({m["seq"] for m in decoded(peer) if m["t_ns"] < killed_ns})
    second_run = [m for m in decoded(peer) if m["t_ns"] > killed_ns]
    assert first_run == list(range(len(first_run))), "a gap in the first run's frames"
    assert first_run[-1] >= seen_before + 100        # frames of the outage, via the journal
    assert recovered > 0 and second_run and second_run[0]["seq"] == 0
    # 0, or 3 when the loaded machine made a LET task miss its deadline (the arm faults)
    assert edge.exit_codes == [-9, rc] and (rc == 0 or rc == 3 and "run faulted" in
                                            edge.stderr_text(run=2))
    assert "messages from an earlier run wait in the journal" in edge.stderr_text(run=2)
    assert edge.starts == 2 and os.path.exists(edge.stderr_path(run=1))


def decoded(peer: PahoPeer) -> list[dict]:
    import msgpack

    return [msgpack.unpackb(p) for p in peer.raw()]


def published(edge: EdgeProcess) -> int:
    """state/joints frames the run published, by its own summary (only to pace the test)."""
    return int(edge.stats().get("bus", {}).get("published_per_topic", {})
               .get("state/joints", 0))

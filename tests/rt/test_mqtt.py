"""The MQTT bridge against a real mosquitto: order, completeness across a broker restart,
journal across a bridge restart, birth/death with session counter, inbound commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import msgpack
import pytest

from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.mqtt import MqttBridge
from hil.mqtt_peer import PahoPeer, bridge_board

BOARD = bridge_board("{url}", "{state}",
                     extra="  commands:\n    stop:\n    move_joint:\n")


def board_cfg(mosquitto, tmp_path: Path, extra: str = ""):
    text = BOARD.replace("{url}", mosquitto.url).replace("{state}", str(tmp_path)) + extra
    return parse_board(text, "t.yaml").sections["mqtt"]


def Consumer(port: int, pattern: str, client_id: str = "consumer") -> PahoPeer:
    """An independent QoS 1 consumer (paho) with a persistent session that reconnects."""
    return PahoPeer(port, pattern, client_id, clean_session=False)


def pump(bus: Bus, start_tick: int, ticks: int, topics=("acq/temp", "state/x")) -> int:
    """Publish one message per topic per tick, delivering at each tick boundary."""
    for tick in range(start_tick, start_tick + ticks):
        for topic in topics:
            bus.publish(topic, {"tick": tick})
        bus.deliver(tick + 1)
    return start_tick + ticks


def assert_complete_in_order(values: list[dict], total: int) -> int:
    """Sequence numbers 0..total-1 all present, never going back except for an exact
    resend of a run already seen (QoS 1 duplicates); returns the duplicate count."""
    seqs = [v["seq"] for v in values]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == list(range(total)), "lost or reordered messages"
    return len(seqs) - len(first_seen)


async def test_forwards_in_order_with_birth_and_clean_goodbye(mosquitto, tmp_path) -> None:
    bus = Bus()
    consumer = Consumer(mosquitto.port, "edge/v1/dev1/#")
    await consumer.wait_subscribed()
    async with MqttBridge(bus, board_cfg(mosquitto, tmp_path), board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        pump(bus, 0, 300)
        assert await bridge.drain(10)
        await consumer.wait_for(lambda: len(consumer.on("edge/v1/dev1/state/x")) == 300)
    temps = consumer.on("edge/v1/dev1/acq/temp")
    assert assert_complete_in_order(temps, 300) == 0
    assert [v["data"]["tick"] for v in temps] == list(range(300))
    states = consumer.on("edge/v1/dev1/state")
    await consumer.wait_for(lambda: len(consumer.on("edge/v1/dev1/state")) == 2)
    states = consumer.on("edge/v1/dev1/state")
    assert states[0]["online"] is True and states[0]["session"] == 0
    assert states[1]["online"] is False and states[1]["session"] == 0
    assert bridge.stats.sent == 600
    consumer.close()


async def test_nothing_lost_or_reordered_across_a_broker_restart(mosquitto, tmp_path) -> None:
    bus = Bus()
    consumer = Consumer(mosquitto.port, "edge/v1/dev1/acq/#")
    await consumer.wait_subscribed()
    async with MqttBridge(bus, board_cfg(mosquitto, tmp_path), board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        tick = pump(bus, 0, 200, topics=("acq/temp",))
        mosquitto.stop()                         # mid-stream: some publishes may be in flight
        tick = pump(bus, tick, 100, topics=("acq/temp",))
        await asyncio.sleep(0.3)
        assert not bridge.connected.is_set()
        tick = pump(bus, tick, 700, topics=("acq/temp",))
        assert bridge.journal.pending() >= 700
        mosquitto.start()
        assert await bridge.drain(20)
        await consumer.wait_for(
            lambda: len({v["seq"] for v in consumer.on("edge/v1/dev1/acq/temp")}) == 1000, 20)
    dups = assert_complete_in_order(consumer.on("edge/v1/dev1/acq/temp"), 1000)
    assert dups <= bridge.stats.resent
    assert bridge.stats.disconnects >= 1 and bridge.stats.connections >= 2
    consumer.close()


async def test_journal_survives_a_bridge_restart_with_the_broker_away(mosquitto, tmp_path) -> None:
    cfg = board_cfg(mosquitto, tmp_path)
    mosquitto.stop()
    bus = Bus()
    async with MqttBridge(bus, cfg, board_name="t") as bridge:
        pump(bus, 0, 50, topics=("acq/temp",))
        await asyncio.sleep(0.1)
        assert bridge.journal.pending() == 50 and not bridge.connected.is_set()
    mosquitto.start()
    consumer = Consumer(mosquitto.port, "edge/v1/dev1/#", client_id="c2")
    await consumer.wait_subscribed()
    bus2 = Bus()                                # a new session: seq restarts at 0
    async with MqttBridge(bus2, cfg, board_name="t") as bridge2:
        assert bridge2.journal.stats.recovered == 50
        await asyncio.wait_for(bridge2.connected.wait(), 5)
        pump(bus2, 0, 10, topics=("acq/temp",))
        assert await bridge2.drain(10)
        await consumer.wait_for(lambda: len(consumer.on("edge/v1/dev1/acq/temp")) >= 60)
    got = consumer.on("edge/v1/dev1/acq/temp")
    assert [v["seq"] for v in got] == list(range(50)) + list(range(10))   # old run first
    assert consumer.on("edge/v1/dev1/state")[0]["session"] == 1
    consumer.close()


async def send_command(port: int, name: str, payload: bytes) -> dict:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"op-{name}") as op:
        await op.subscribe(f"edge/v1/dev1/reply/{name}", qos=1)
        await op.publish(f"edge/v1/dev1/cmd/{name}", payload, qos=1)
        async with asyncio.timeout(5):
            async for m in op.messages:
                return msgpack.unpackb(m.payload)
    raise AssertionError("no reply")


@pytest.mark.parametrize("name, payload, error", [
    ("move_joint", b"\xc1\xff garbage", "neither msgpack nor JSON"),
    ("move_joint", json.dumps({"args": {"positions": [1.0]}}).encode(), "list of 2 numbers"),
    ("move_joint", json.dumps({"args": {"positions": [1, 2], "x": 1}}).encode(), "unknown arg"),
    ("move_joint", json.dumps({"args": {"positions": [1, "2"]}}).encode(), "must be a number"),
    ("move_joint", msgpack.packb({"args": {"positions": [float("inf"), 2]}}), "must be finite"),
    ("move_joint", json.dumps({"args": {"positions": [1e400, 2]}}).encode(), "not strict JSON"),
    ("move_joint", msgpack.packb([1, 2]), "must be a map"),
    ("stop", json.dumps({"args": {"category": 3}}).encode(), "within [0, 2]"),
    ("stop", json.dumps({"args": {"category": True}}).encode(), "must be an int"),
    ("format_disk", b"{}", "not allowed on this board"),
    ("stop", b"{" + b" " * 20000 + b"}", "larger than"),
])
async def test_malformed_commands_are_rejected_with_a_reply(mosquitto, tmp_path, name, payload,
                                                            error) -> None:
    bus = Bus()
    seen = bus.subscribe("cmd/#")
    async with MqttBridge(bus, board_cfg(mosquitto, tmp_path), board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        reply = await send_command(mosquitto.port, name, payload)
        bus.deliver(1)
    assert reply["ok"] is False and error in reply["error"]
    assert seen.drain() == [] and bridge.stats.commands_rejected == 1


async def test_valid_command_reaches_the_bus(mosquitto, tmp_path) -> None:
    bus = Bus()
    seen = bus.subscribe("cmd/#")
    async with MqttBridge(bus, board_cfg(mosquitto, tmp_path), board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        reply = await send_command(mosquitto.port, "move_joint", msgpack.packb(
            {"id": "r1", "args": {"positions": [0.5, -0.25], "speed_scale": 0.5}}))
        bus.deliver(1)
    assert reply == {"command": "move_joint", "id": "r1", "ok": True, "status": "accepted"}
    (msg,) = seen.drain()
    assert msg.topic == "cmd/move_joint"
    assert msg.data == {"id": "r1", "args": {"positions": [0.5, -0.25], "speed_scale": 0.5}}
    assert bridge.stats.commands_accepted == 1


async def test_killed_controller_leaves_its_death_message(mosquitto, tmp_path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(BOARD.replace("{url}", mosquitto.url).replace("{state}", str(tmp_path)))
    consumer = Consumer(mosquitto.port, "edge/v1/dev1/state", client_id="watch")
    await consumer.wait_subscribed()
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--board", str(board),
                             "--duration", "60"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": "."})
    try:
        await consumer.wait_for(lambda: consumer.on("edge/v1/dev1/state"), 20)
        os.kill(proc.pid, signal.SIGKILL)
        await consumer.wait_for(lambda: len(consumer.on("edge/v1/dev1/state")) >= 2, 10)
    finally:
        proc.kill()
        proc.wait()
    birth, death = consumer.on("edge/v1/dev1/state")[:2]
    assert birth["online"] is True and death["online"] is False
    assert birth["session"] == death["session"]
    consumer.close()


async def test_stop_command_stops_the_running_controller(mosquitto, tmp_path) -> None:
    from edge.rt.runtime import Runtime

    text = BOARD.replace("{url}", mosquitto.url).replace("{state}", str(tmp_path))
    runtime = Runtime(parse_board(text, "t.yaml"))
    stop = asyncio.Event()
    run = asyncio.create_task(runtime.run_realtime(10.0, stop))
    consumer = Consumer(mosquitto.port, "edge/v1/dev1/state", client_id="w2")
    await consumer.wait_for(lambda: consumer.on("edge/v1/dev1/state"), 10)
    reply = await send_command(mosquitto.port, "stop", json.dumps(
        {"id": 7, "args": {"category": 2}}).encode())
    assert reply["ok"] is True
    def latched() -> bool:                       # no history before the first tick
        history = runtime.executor.history(1)["stop_category"]
        return len(history) > 0 and int(history[0]) == 2

    await consumer.wait_for(latched, 5)
    stop.set()
    await asyncio.wait_for(run, 10)
    assert runtime.summary()["mqtt"]["commands_accepted"] == 1
    consumer.close()


@pytest.mark.parametrize("url, error", [
    ("http://x", "mqtt:// or mqtts://"), ("mqtt://user:pw@host", "credentials do not belong"),
    ("mqtt://", "no host"), ("mqtt://h:99999", "bad port")])
def test_bad_urls_name_the_field(tmp_path, url, error) -> None:
    from edge.errors import ConfigError

    text = BOARD.replace("{url}", url).replace("{state}", str(tmp_path))
    with pytest.raises(ConfigError, match=error) as err:
        parse_board(text, "t.yaml")
    assert err.value.line == 6 and "mqtt.url" in str(err.value)


def test_cli_bad_mqtt_url_is_one_line(capsys) -> None:
    from edge.cli import main

    assert main(["run", "--virtual-time", "--duration", "0.01", "--mqtt", "mqtt://u:p@h"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "credentials do not belong" in err[0]


async def test_mqtts_with_client_certificate(tmp_path) -> None:
    """mqtts:// with a CA and a client certificate against a broker that requires one."""
    from hil.broker import Mosquitto
    from hil.certs import make_tls_files

    tls = make_tls_files(tmp_path / "pki")
    with Mosquitto(tls=tls) as broker:
        extra = (f"  ca_file: {tls.ca}\n  cert_file: {tls.client_cert}\n"
                 f"  key_file: {tls.client_key}\n")
        cfg = board_cfg(broker, tmp_path / "state", extra)
        assert cfg.tls and cfg.port == broker.port
        bus = Bus()
        async with MqttBridge(bus, cfg, board_name="t") as bridge:
            await asyncio.wait_for(bridge.connected.wait(), 10)
            pump(bus, 0, 20, topics=("acq/temp",))
            assert await bridge.drain(10)
        assert bridge.stats.sent == 20
        # without the client certificate the broker refuses the connection
        cfg_no_cert = board_cfg(broker, tmp_path / "state2", f"  ca_file: {tls.ca}\n")
        async with MqttBridge(Bus(), cfg_no_cert, board_name="t") as refused:
            await asyncio.sleep(1.0)
            assert not refused.connected.is_set() and refused.stats.connections == 0

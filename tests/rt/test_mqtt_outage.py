"""The bridge when the broker goes away: the loss is seen at once, the journal is written
whether or not a broker was ever there, and a crash of edge during an outage loses
nothing (checked by an independent paho subscriber holding a persistent session)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.mqtt import MqttBridge
from hil.mqtt_peer import PahoPeer, bridge_board, wait_until

REPO = Path(__file__).resolve().parents[2]
PREFIX = "edge/v1/dev1"
BOARD = bridge_board("{url}", "{state}", axes=1, extra="  keepalive_s: 30\n")

# The edge side as its own process, so that it can be killed with SIGKILL: a bus and the
# bridge, publishing acq/n = start .. start+count-1 paced over about a second.
EDGE_PROC = """
import asyncio, sys
from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.mqtt import MqttBridge

async def main(board, start, count):
    cfg = parse_board(open(board).read(), "t.yaml").sections["mqtt"]
    bus = Bus()
    async with MqttBridge(bus, cfg, board_name="t"):
        for tick, n in enumerate(range(start, start + count), 1):
            bus.publish("acq/n", {"n": n, "tag": f"msg-{n:06d}"})
            bus.deliver(tick)
            if n % 10 == 0:
                await asyncio.sleep(0.003)
        print("published", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def board_text(broker, state: Path) -> str:
    return BOARD.replace("{url}", broker.url).replace("{state}", str(state))


def journal_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((state / "mqtt-journal").glob("*.seg")))


def pump(bus: Bus, start: int, count: int) -> None:
    for n in range(start, start + count):
        bus.publish("acq/n", {"n": n, "tag": f"msg-{n:06d}"})
        bus.deliver(bus.tick + 1)


@pytest.mark.parametrize("traffic", ["idle", "streaming"])
async def test_a_dropped_connection_is_noticed_at_once(mosquitto, tmp_path, traffic) -> None:
    bus = Bus()
    cfg = parse_board(board_text(mosquitto, tmp_path), "t.yaml").sections["mqtt"]
    async with MqttBridge(bus, cfg, board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 5)
        pump(bus, 0, 50)
        assert await bridge.drain(5)
        if traffic == "streaming":              # publishes in flight, awaiting PUBACKs
            pump(bus, 50, 2000)
            await wait_until(lambda: bridge.stats.sent > 50, 5)
        mosquitto.kill()                        # the kernel resets the TCP connection
        t0 = time.monotonic()
        await wait_until(lambda: not bridge.connected.is_set(), 15)
        noticed_s = time.monotonic() - t0
        assert not bridge.stats_dict()["connected"]
        assert bridge.stats.disconnects == 1
        pump(bus, 2050, 20)
        assert bridge.journal.pending() >= 20
    # keepalive is 30 s and aiomqtt's publish timeout 10 s: either would be far later
    assert noticed_s < 3.0, f"loss noticed after {noticed_s:.1f} s"


async def test_an_unreachable_broker_from_the_start_still_fills_the_journal(mosquitto, tmp_path,
                                                                          caplog) -> None:
    mosquitto.stop()
    bus = Bus()
    cfg = parse_board(board_text(mosquitto, tmp_path), "t.yaml").sections["mqtt"]
    with caplog.at_level(logging.WARNING, logger="edge.rt.mqtt"):
        async with MqttBridge(bus, cfg, board_name="t") as bridge:
            pump(bus, 0, 200)
            # on disk while the bridge runs, with no broker ever seen (fsync: interval)
            await wait_until(lambda: b"msg-000199" in journal_bytes(tmp_path), 5)
            await wait_until(lambda: bridge.stats.connect_failures >= 3, 10)
            assert not bridge.connected.is_set()
    unreachable = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, unreachable         # once, not once per attempt
    assert f"broker 127.0.0.1:{mosquitto.port} unreachable" in unreachable[0]
    assert "journaling until it is back" in unreachable[0]


async def test_kill_9_of_edge_during_an_outage_loses_nothing(mosquitto, tmp_path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(board_text(mosquitto, tmp_path / "state"))
    script = tmp_path / "edge_proc.py"
    script.write_text(EDGE_PROC)
    topic = f"{PREFIX}/acq/n"
    subscriber = PahoPeer(mosquitto.port, topic, "ward-monitor", clean_session=False)
    await subscriber.wait_subscribed()
    total = 3000

    def edge(start: int, count: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(script), str(board), str(start),
                                 str(count)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": "."})

    first = edge(0, total)
    second = None
    try:
        await subscriber.wait_for(lambda: len(subscriber.raw(topic)) >= 300, 20)
        mosquitto.stop()                        # mid-stream; edge keeps publishing
        line = await asyncio.wait_for(asyncio.to_thread(first.stdout.readline), 30)
        assert line.strip() == b"published"
        # the outage's messages reach the journal files while edge runs, no broker there
        await wait_until(lambda: f"msg-{total - 1:06d}".encode()
                         in journal_bytes(tmp_path / "state"), 5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        mosquitto.start()
        await subscriber.wait_for(lambda: subscriber.client.is_connected(), 10)
        second = edge(total, 0)                 # a restart: sends what the journal holds
        await subscriber.wait_for(
            lambda: len({m["data"]["n"] for m in subscriber.on(topic)}) >= total, 30)
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait(10)
        subscriber.close()
    got = subscriber.on(topic)
    first_seen: dict[int, dict] = {}
    for m in got:
        first_seen.setdefault(m["data"]["n"], m)
    assert list(first_seen) == list(range(total)), "lost or reordered"
    for m in got:                               # a duplicate is the same message again
        assert m == first_seen[m["data"]["n"]]
    assert all(m["seq"] == m["data"]["n"] for m in first_seen.values())

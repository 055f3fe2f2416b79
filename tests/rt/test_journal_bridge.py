"""A corrupt journal through the real MQTT bridge and mosquitto: what survives is
delivered, in order, the loss is reported, and nothing spins (issue 12, defect 1)."""

from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from pathlib import Path

import aiomqtt
import msgpack

from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.mqtt import MqttBridge

BOARD = """
name: t
axes: [{name: a, max_velocity: 1, max_acceleration: 1}]
mqtt:
  url: {url}
  device_id: dev1
  state_dir: {state}
  reconnect_min_s: 0.05
  reconnect_max_s: 0.2
  journal: {max_mb: 0.05, fsync: always}
"""


@contextmanager
def wall_limit(seconds: float):
    """Raise TimeoutError in the main thread after `seconds`, even out of a busy loop
    that never returns to the event loop (as the bridge did on a corrupt journal)."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


async def test_corrupt_journal_is_delivered_around_the_damage(mosquitto, tmp_path: Path) -> None:
    cfg = parse_board(BOARD.replace("{url}", mosquitto.url).replace("{state}", str(tmp_path)),
                      "t.yaml").sections["mqtt"]
    mosquitto.stop()
    bus = Bus()
    async with MqttBridge(bus, cfg, board_name="t") as bridge:
        for tick in range(400):
            bus.publish("acq/temp", {"tick": tick})
            bus.deliver(tick + 1)
        assert bridge.journal.pending() == 400
    segs = sorted((tmp_path / "mqtt-journal").glob("*.seg"))
    assert len(segs) >= 3
    data = bytearray(segs[0].read_bytes())
    data[len(data) // 2] ^= 0x10                  # a record in the middle of the first
    segs[0].write_bytes(bytes(data))
    segs[1].unlink()                              # a whole middle segment gone

    mosquitto.start()
    got: list[int] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="c") as consumer:
        await consumer.subscribe("edge/v1/dev1/acq/temp", qos=1)
        with wall_limit(30):
            async with MqttBridge(Bus(), cfg, board_name="t") as bridge:
                journal = bridge.journal
                recovered = journal.pending()
                assert await bridge.drain(15)
                lost = journal.stats.lost_records
                assert lost > 0 and recovered == 400 - lost
                async with asyncio.timeout(10):
                    async for m in consumer.messages:
                        got.append(msgpack.unpackb(m.payload)["data"]["tick"])
                        if len(got) == 400 - lost:
                            break
    lost_ticks = {i for a, b in journal.stats.lost_ranges for i in range(a, b + 1)}
    # journal index == tick here: one message per tick, all in the first session
    assert got == [t for t in range(400) if t not in lost_ticks]
    assert 0 not in lost_ticks and len(lost_ticks) == lost

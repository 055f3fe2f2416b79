"""An independent MQTT consumer that audits what edge delivered: lost, reordered, duplicated.

It is written on paho-mqtt, not on edge's bridge code, so a bug in the bridge cannot hide
itself in the check. It holds a persistent QoS 1 session (clean_session false), as a
production consumer would, so messages queued by the broker while it is away still count.
Per topic it keeps the `seq` of every message (DESIGN.md: seq counts from 0 per topic per
session with no gaps) and judges the stream from those numbers alone.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import msgpack
import paho.mqtt.client as paho


@dataclass
class TopicAudit:
    """What one topic's stream looked like to the consumer."""

    received: int = 0
    duplicates: int = 0        # a seq seen before (QoS 1 allows these)
    reordered: int = 0         # a new seq lower than the highest seen before it
    seqs: set[int] = field(default_factory=set)
    highest: int = -1

    def add(self, seq: int) -> None:
        self.received += 1
        if seq in self.seqs:
            self.duplicates += 1
            return
        if seq < self.highest:
            self.reordered += 1
        self.seqs.add(seq)
        self.highest = max(self.highest, seq)

    def lost(self, published: int | None = None) -> int:
        """Seqs missing from 0 up to the highest seen (or up to `published` - 1)."""
        top = self.highest + 1 if published is None else published
        return top - len({s for s in self.seqs if s < top})

    def report(self, published: int | None = None) -> dict[str, int]:
        return {"received": self.received, "unique": len(self.seqs),
                "lost": self.lost(published), "reordered": self.reordered,
                "duplicates": self.duplicates}


class StreamWatch:
    """`with StreamWatch(port, "edge/v1/+/state/joints") as watch:` counts per topic.

    Connects once before the stream starts (so the broker keeps its session from then on)
    and reconnects by itself when the broker goes away and comes back."""

    def __init__(self, port: int, pattern: str, *, host: str = "127.0.0.1",
                 client_id: str = "edge-audit") -> None:
        self.host, self.port, self.pattern = host, port, pattern
        self.topics: dict[str, TopicAudit] = defaultdict(TopicAudit)
        self.undecodable = 0
        self.last_message = 0.0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not reason.is_failure:
            client.subscribe(self.pattern, qos=1)
            self._subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        try:
            seq = msgpack.unpackb(message.payload, raw=False)["seq"]
        except Exception:                 # not an edge bus message: counted, never fatal
            with self._lock:
                self.undecodable += 1
            return
        with self._lock:
            self.topics[message.topic].add(int(seq))
            self.last_message = time.monotonic()

    def __enter__(self) -> StreamWatch:
        self.client.connect(self.host, self.port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(5.0):
            self.client.loop_stop()
            raise RuntimeError(f"audit subscriber could not subscribe on port {self.port}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_first(self, timeout_s: float) -> bool:
        """Wait until the first message has arrived (True) or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.last_message:
                return True
            time.sleep(0.02)
        return False

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Wait until nothing has arrived for `quiet_s` (True) or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                idle = time.monotonic() - self.last_message if self.last_message else 0.0
            if idle >= quiet_s:
                return True
            time.sleep(0.05)
        return False

    def report(self, published: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
        """Per topic: received, unique, lost, reordered, duplicates. `published` (topic →
        count, from the publisher's own summary) makes a lost tail visible too."""
        published = published or {}
        with self._lock:
            return {topic: audit.report(_count_for(published, topic))
                    for topic, audit in self.topics.items()}


def _count_for(published: dict[str, int], mqtt_topic: str) -> int | None:
    """The publisher's count for an MQTT topic `edge/v1/<device>/<bus topic>`."""
    bus_topic = mqtt_topic.split("/", 3)[-1]
    return published.get(bus_topic)

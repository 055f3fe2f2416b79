"""An independent MQTT peer (paho-mqtt, its own network thread) for rigs and tests: a
QoS 1 consumer with a persistent session, and an operator that sends commands and
collects replies. Nothing here shares code with edge's bridge."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import msgpack
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class PahoPeer:
    """Connects (and reconnects by itself) to 127.0.0.1:`port` as `client_id`,
    subscribes to `patterns` at QoS 1 on every connect, and records what arrives."""

    def __init__(self, port: int, patterns: list[str] | str, client_id: str, *,
                 clean_session: bool = False) -> None:
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        self._lock = threading.Lock()
        self._messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.max_inflight_messages_set(0)         # no window: a flood is a flood
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            client.subscribe([(p, 1) for p in self.patterns])

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self._messages.append((message.topic, bytes(message.payload)))

    def raw(self, topic: str | None = None) -> list[bytes]:
        with self._lock:
            return [p for t, p in self._messages if topic is None or t == topic]

    def on(self, topic: str) -> list[Any]:
        """Payloads received on `topic`, msgpack-decoded, in arrival order."""
        return [msgpack.unpackb(p) for p in self.raw(topic)]

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)

    async def wait_subscribed(self, timeout_s: float = 10.0) -> None:
        await wait_until(self.subscribed.is_set, timeout_s)

    async def wait_for(self, predicate, timeout_s: float = 10.0) -> None:
        await wait_until(predicate, timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def wait_until(predicate, timeout_s: float, poll_s: float = 0.01) -> None:
    """Poll `predicate` until true; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(poll_s)


def bridge_board(url: str, state_dir: str, *, axes: int = 2, extra: str = "") -> str:
    """A minimal board with an `mqtt:` section for device `dev1` (fast reconnects), for
    rigs that drive the bridge; `extra` holds more lines of the section, indented."""
    axis_list = ",\n       ".join(f"{{name: a{i}, max_velocity: 1, max_acceleration: 1}}"
                                  for i in range(axes))
    return (f"\nname: t\naxes: [{axis_list}]\nmqtt:\n  url: {url}\n  device_id: dev1\n"
            f"  state_dir: {state_dir}\n  reconnect_min_s: 0.05\n  reconnect_max_s: 0.2\n"
            + extra)

"""The MQTT bridge: bus topics out to `edge/v1/<device_id>/<topic>`, commands in.

Every outgoing message is written ahead to the journal and leaves it in order; a record
is acknowledged only when the broker has confirmed it (QoS 1 PUBACK), so a broker outage
or a crash loses nothing: what was not confirmed is sent again, in order, on reconnect
(a consumer may see a message twice, never a gap or a reordering; `seq` tells them apart).
A retained birth message and a last-will death message on `edge/v1/<device_id>/state`
carry a session counter kept on disk, so consumers can tell restarts apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import msgpack

from edge.rt.bus import Bus, Message
from edge.rt.bus_config import MqttConfig, default_state_dir
from edge.rt.commands import CommandRejected
from edge.rt.journal import Journal, read_checked, write_checked

log = logging.getLogger(__name__)

_TOPIC_LEN = struct.Struct("<H")
CURSOR_SAVE_INTERVAL_S = 0.5
SHUTDOWN_DRAIN_S = 2.0            # on a clean stop, give the broker this long to take the rest


def allow_window(client: aiomqtt.Client, inflight: int) -> None:
    """aiomqtt warns (building a log record per publish) once more than a handful of
    publishes await their PUBACK; keeping a window in flight is the design here."""
    client.pending_calls_threshold = inflight + 16


def encode_record(topic: str, payload: bytes) -> bytes:
    """A journal record: the bus topic and the wire payload."""
    t = topic.encode()
    return _TOPIC_LEN.pack(len(t)) + t + payload


def decode_record(record: bytes) -> tuple[str, bytes]:
    (n,) = _TOPIC_LEN.unpack_from(record)
    return record[2:2 + n].decode(), record[2 + n:]


@dataclass
class BridgeStats:
    connections: int = 0
    disconnects: int = 0
    sent: int = 0                 # confirmed by the broker
    resent: int = 0               # in flight when the connection dropped, sent again
    commands_accepted: int = 0
    commands_rejected: int = 0
    session: int = 0


class MqttBridge:
    """`async with MqttBridge(bus, cfg, board_name=...):` bridges until the block ends."""

    def __init__(self, bus: Bus, cfg: MqttConfig, *, board_name: str,
                 extra_birth: dict[str, Any] | None = None) -> None:
        self.bus = bus
        self.cfg = cfg
        self.prefix = f"edge/v1/{cfg.device_id}"
        self.state_dir = Path(cfg.state_dir) if cfg.state_dir else default_state_dir(board_name)
        self.extra_birth = extra_birth or {}
        self.stats = BridgeStats()
        self.connected = asyncio.Event()
        self.journal: Journal | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._subs = []
        self._last_cursor_save = 0.0
        self._live_client: aiomqtt.Client | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def __aenter__(self) -> MqttBridge:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        j = self.cfg.journal
        self.journal = Journal(j.directory or self.state_dir / "mqtt-journal",
                               max_bytes=int(j.max_mb * 1024 * 1024), fsync=j.fsync,
                               fsync_interval_s=j.fsync_interval_ms / 1000, when_full=j.when_full)
        if self.journal.stats.recovered:
            log.info("mqtt: %d messages from an earlier run wait in the journal",
                     self.journal.stats.recovered)
        self.stats.session = self._next_session()
        for pattern in self.cfg.forward:
            self._subs.append(self.bus.subscribe(pattern, callback=self._outgoing))
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self.connected.is_set():
            await self.drain(SHUTDOWN_DRAIN_S)
        client = self._live_client
        if client is not None:           # a clean goodbye: the will is only for crashes
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(client.publish(
                    f"{self.prefix}/state", self._state_payload(False), qos=1, retain=True), 1.0)
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.journal is not None:
            self.journal.close()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything published so far is confirmed by the broker (or the
        timeout passes); True when nothing is pending."""
        deadline = time.monotonic() + timeout_s
        while self.journal.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.journal.pending() == 0

    def _next_session(self) -> int:
        path = self.state_dir / "mqtt-session"
        raw = read_checked(path)
        session = (struct.unpack("<Q", raw)[0] + 1) if raw and len(raw) == 8 else 0
        write_checked(path, struct.pack("<Q", session))
        return session

    def _state_payload(self, online: bool) -> bytes:
        return msgpack.packb({"online": online, "session": self.stats.session,
                              "device_id": self.cfg.device_id, "t_ns": time.time_ns(),
                              **(self.extra_birth if online else {})}, use_bin_type=True)

    # -- outgoing ------------------------------------------------------------------
    def _outgoing(self, msg: Message) -> None:
        """Bus callback, at delivery: write ahead to the journal, wake the sender."""
        self.journal.append(encode_record(msg.topic, msg.to_wire()))
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        cfg = self.cfg
        tls = None
        if cfg.tls:
            tls = ssl.create_default_context(cafile=cfg.ca_file)
            if cfg.cert_file:
                tls.load_cert_chain(cfg.cert_file, cfg.key_file)
        user, password = cfg.credentials()
        client = aiomqtt.Client(
            cfg.host, cfg.port, identifier=f"edge-{cfg.device_id}", username=user,
            password=password, keepalive=cfg.keepalive_s, tls_context=tls, timeout=10,
            will=aiomqtt.Will(f"{self.prefix}/state", self._state_payload(False), qos=1,
                              retain=True),
            max_inflight_messages=cfg.inflight, clean_session=True)
        allow_window(client, cfg.inflight)
        return client

    async def _run(self) -> None:
        delay = self.cfg.reconnect_min_s
        while True:
            try:
                async with self._client() as client:
                    self.stats.connections += 1
                    delay = self.cfg.reconnect_min_s
                    await client.publish(f"{self.prefix}/state", self._state_payload(True),
                                         qos=1, retain=True)
                    await client.subscribe(f"{self.prefix}/cmd/+", qos=1)
                    self.connected.set()
                    self._live_client = client
                    log.info("mqtt: connected to %s:%d as %s (session %d)", self.cfg.host,
                             self.cfg.port, self.cfg.device_id, self.stats.session)
                    receiver = asyncio.create_task(self._receive(client))
                    try:
                        await self._send(client)
                    finally:
                        self._live_client = None
                        receiver.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await receiver
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    self.stats.disconnects += 1
                    log.warning("mqtt: connection lost (%s); journaling until it is back", exc)
                else:
                    log.debug("mqtt: cannot connect (%s); retry in %.2f s", exc, delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    async def _send(self, client: aiomqtt.Client) -> None:
        """Keep up to `inflight` publishes outstanding; acknowledge the journal in order."""
        journal = self.journal
        inflight: deque[tuple[int, asyncio.Future]] = deque()
        next_index = journal.cursor
        qos = self.cfg.qos
        try:
            while True:
                room = self.cfg.inflight - len(inflight)
                if room > 0:
                    journal.flush()
                    for index, record in journal.read(next_index, room):
                        topic, payload = decode_record(record)
                        inflight.append((index, asyncio.ensure_future(client.publish(
                            f"{self.prefix}/{topic}", payload, qos=qos))))
                        next_index = index + 1
                if not inflight:
                    self._wake.clear()
                    if journal.pending() == 0:
                        self._save_cursor(force=False)
                        await self._wake.wait()
                    continue
                await inflight[0][1]            # raises MqttError when the link is gone
                done = 0
                while inflight and inflight[0][1].done():
                    index, fut = inflight.popleft()
                    fut.result()
                    done += 1
                journal.ack(index)
                self.stats.sent += done
                self._save_cursor(force=False)
        finally:
            if inflight:
                self.stats.resent += len(inflight)
                for _, fut in inflight:
                    fut.cancel()
                await asyncio.gather(*(f for _, f in inflight), return_exceptions=True)

    def _save_cursor(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_cursor_save >= CURSOR_SAVE_INTERVAL_S:
            self.journal.save_cursor()
            self._last_cursor_save = now

    # -- incoming commands ---------------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            name = str(message.topic).rsplit("/", 1)[-1]
            payload = message.payload if isinstance(message.payload, bytes) else b""
            reply: dict[str, Any] = {"command": name}
            try:
                spec = self.cfg.commands.get(name)
                if spec is None:
                    raise CommandRejected(f"command '{name}' is not allowed on this board")
                command = spec.validate(payload)
                reply["id"] = command["id"]
                self.bus.publish(f"cmd/{name}", command)
                self.stats.commands_accepted += 1
                reply.update(ok=True)
            except CommandRejected as exc:
                self.stats.commands_rejected += 1
                log.warning("mqtt: rejected command %r: %s", name, exc)
                reply.update(ok=False, error=str(exc))
            await client.publish(f"{self.prefix}/reply/{name}",
                                 msgpack.packb(reply, use_bin_type=True), qos=1)

    def stats_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.stats.__dict__)
        out["connected"] = self.connected.is_set()
        out["journal"] = self.journal.stats_dict() if self.journal else None
        return out


def attach(runtime, cfg: MqttConfig) -> None:
    """Bridge the runtime's bus (a service in real time) and act on built-in commands."""
    bridge_holder: dict[str, MqttBridge] = {}

    def factory() -> MqttBridge:
        bridge = MqttBridge(runtime.bus, cfg, board_name=runtime.board.name,
                            extra_birth={"board": runtime.board.name})
        bridge_holder["bridge"] = bridge
        return bridge

    runtime.add_service(factory)
    runtime.extra_summary["mqtt"] = lambda: (bridge_holder["bridge"].stats_dict()
                                             if bridge_holder else None)
    if "stop" in cfg.commands:
        runtime.bus.subscribe("cmd/stop", callback=lambda m: runtime.request_stop(
            m.data["args"].get("category", 1)))

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
import errno
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

from edge.errors import EdgeError
from edge.rt.bus import Bus, Message
from edge.rt.bus_config import MqttConfig, default_state_dir
from edge.rt.command_intake import CommandIntake, LogLimiter, ReplyQueue, reply_name_ok
from edge.rt.journal import Journal, read_checked, write_checked

log = logging.getLogger(__name__)

_TOPIC_LEN = struct.Struct("<H")
CURSOR_SAVE_INTERVAL_S = 0.5
# __aexit__ must finish within 2 s whatever the load: drain, goodbye, cancel, each bounded
SHUTDOWN_DRAIN_S = 1.0
GOODBYE_S = 0.3
CANCEL_S = 0.3
FIRST_CONNECT_S = 3.0          # __aenter__ waits this long for the first attempt's outcome
UNREACHABLE_LOG_S = 60.0
REPLY_INFLIGHT = 16            # replies awaiting PUBACK at once
NOT_BRIDGED_OUT = ("cmd", "reply")   # cmd/# is never echoed; reply/+ goes out bare
# CONNACK refusals that retrying cannot cure (MQTT 3.1.1 codes 4, 5 and their v5 forms)
FATAL_CONNACK = {4, 5, 134, 135}


class BrokerRefused(EdgeError):
    """The broker refused us for good (credentials, authorisation, TLS verification)."""


def allow_window(client: aiomqtt.Client, inflight: int) -> None:
    """aiomqtt warns (building a log record per publish) once more than a handful of
    publishes await their PUBACK; keeping a window in flight is the design here."""
    client.pending_calls_threshold = inflight + REPLY_INFLIGHT + 16


def fail_connect_on_close(client: aiomqtt.Client) -> None:
    """A connection closed before the broker's CONNACK fails the connect at once.

    aiomqtt ignores a disconnect that comes before CONNACK and lets the connect wait out
    its whole timeout (10 s). That is what a broker behind a proxy or load balancer looks
    like while the broker is down: the TCP connect succeeds and the socket is closed at
    once. Every reconnect attempt then took 10 s, and a 1.5 s broker restart left the
    bridge away for tens of seconds. This reaches into aiomqtt's private state (the paho
    client and the connect future), kept to this one function."""
    paho_client = client._client                      # noqa: SLF001
    on_disconnect = paho_client.on_disconnect

    def closed(*args, **kwargs) -> None:
        connected = client._connected                  # noqa: SLF001
        if not connected.done():
            connected.set_exception(aiomqtt.MqttError("connection closed before CONNACK"))
        on_disconnect(*args, **kwargs)

    paho_client.on_disconnect = closed


def encode_record(topic: str, payload: bytes) -> bytes:
    """A journal record: the bus topic and the wire payload."""
    t = topic.encode()
    return _TOPIC_LEN.pack(len(t)) + t + payload


def decode_record(record: bytes) -> tuple[str, bytes]:
    (n,) = _TOPIC_LEN.unpack_from(record)
    return record[2:2 + n].decode(), record[2 + n:]


def fatal_reason(exc: BaseException) -> str | None:
    """Why a failed connection attempt will never succeed as configured, or None when
    retrying may help (broker down, network away)."""
    if isinstance(exc, BrokerRefused):
        return str(exc)
    if isinstance(exc, aiomqtt.MqttCodeError):
        rc = getattr(exc.rc, "value", exc.rc)
        if isinstance(rc, int) and rc in FATAL_CONNACK:
            return f"the broker refused the connection: {exc.rc} (check the credentials)"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError) or isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {cause or exc}"
    return None


@dataclass
class BridgeStats:
    connections: int = 0
    disconnects: int = 0
    sent: int = 0                 # confirmed by the broker
    resent: int = 0               # in flight when the connection dropped, sent again
    commands_accepted: int = 0
    commands_rejected: int = 0
    rate_limited: int = 0         # inbound commands over command_rate, answered so
    commands_failed: int = 0      # inbound messages whose handling raised (a bug), answered
    replies_sent: int = 0
    replies_dropped: int = 0      # replies beyond the reply queue bound, or unanswerable
    connect_failures: int = 0
    journal_errors: int = 0       # exceptions from journal calls caught by the bridge
    bridge_errors: int = 0        # unexpected exceptions in the bridge task (then retried)
    stale_socket_callbacks: int = 0   # aiomqtt callbacks for a socket already closed
    session: int = 0


class MqttBridge:
    """`async with MqttBridge(bus, cfg, board_name=...):` bridges until the block ends.

    Entering raises BrokerRefused when the first connection attempt is refused for good
    (bad credentials, TLS verification); an unreachable broker is not an error."""

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
        self.replies = ReplyQueue(self.stats)
        self.intake = CommandIntake(bus, cfg.commands, cfg.command_rate, self.stats,
                                    self.replies)
        self.logs = LogLimiter()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._flusher: asyncio.Task | None = None
        self._first_attempt: asyncio.Future | None = None
        self._subs = []
        self._last_cursor_save = 0.0
        self._journal_seen: dict[str, int] = {}
        self._live_client: aiomqtt.Client | None = None
        self._in_session = False

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
        self._contain_stale_socket_callbacks(asyncio.get_running_loop())
        for pattern in self.cfg.forward:
            self._subs.append(self.bus.subscribe(pattern, callback=self._outgoing))
        self._subs.append(self.bus.subscribe("reply/+", callback=self._verdict))
        self._first_attempt = asyncio.get_running_loop().create_future()
        self._flusher = asyncio.create_task(self._flush_loop(), name="mqtt-journal-flush")
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        self._task.add_done_callback(self._task_ended)
        done, _ = await asyncio.wait({self._first_attempt}, timeout=FIRST_CONNECT_S)
        outcome = self._first_attempt.result() if done else None
        reason = fatal_reason(outcome) if isinstance(outcome, BaseException) else None
        if reason is not None:
            await self.__aexit__(None, None, None)
            raise BrokerRefused(f"mqtt broker {self.cfg.host}:{self.cfg.port}: {reason}")
        if not done:
            log.warning("mqtt: broker %s:%d not connected after %.0f s; journaling until it "
                        "is back", self.cfg.host, self.cfg.port, FIRST_CONNECT_S)
        return self

    async def __aexit__(self, *exc_info) -> None:
        t0 = time.monotonic()
        for sub in self._subs:                  # nothing more to journal or answer
            self.bus.unsubscribe(sub)
        self._subs.clear()
        if self.connected.is_set():
            await self.drain(SHUTDOWN_DRAIN_S)
        t_drain = time.monotonic()
        client = self._live_client
        if client is not None:           # a clean goodbye: the will is only for crashes
            with contextlib.suppress(aiomqtt.MqttError, asyncio.TimeoutError):
                await asyncio.wait_for(client.publish(
                    f"{self.prefix}/state", self._state_payload(False), qos=1, retain=True),
                    GOODBYE_S)
        t_goodbye = time.monotonic()
        await _stop_task(self._task, CANCEL_S)
        await _stop_task(self._flusher, CANCEL_S)
        if self.journal is not None:
            self._journal_call("close", self.journal.close)
        t_end = time.monotonic()
        log.debug("mqtt: closed in %.3f s (drain %.3f, goodbye %.3f, stop %.3f)", t_end - t0,
                  t_drain - t0, t_goodbye - t_drain, t_end - t_goodbye)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything published so far is confirmed by the broker (or the
        timeout passes); True when nothing is pending."""
        deadline = time.monotonic() + timeout_s
        while self._pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self._pending() == 0

    def _pending(self) -> int:
        return self._journal_call("pending", self.journal.pending) or 0

    def _task_ended(self, task: asyncio.Task) -> None:
        """The bridge task never ends on its own; if it does, say why at once."""
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("mqtt: the bridge stopped: %s: %s", type(exc).__name__, exc,
                      exc_info=exc)

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

    # -- the journal: every call guarded, errors counted and logged once a minute -----
    def _journal_call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            self.stats.journal_errors += 1
            self.logs.log(logging.ERROR, ("journal", what, type(exc).__name__),
                          "mqtt: journal %s failed: %s: %s", what, type(exc).__name__, exc)
            return None

    def _check_journal_stats(self) -> None:
        """Report error counters the journal keeps itself (it does not raise on I/O
        errors): once a minute while any of them grows."""
        stats = self._journal_call("stats", self.journal.stats_dict) or {}
        for key, value in stats.items():
            if "error" in key and isinstance(value, int) and value > self._journal_seen.get(key, 0):
                self.logs.log(logging.ERROR, ("journal-stat", key),
                              "mqtt: the journal reports %s = %d", key, value)
                self._journal_seen[key] = value

    async def _flush_loop(self) -> None:
        """Write (and fsync per policy) what the journal buffers, connected or not."""
        period = max(0.01, min(self.cfg.journal.fsync_interval_ms / 1000, 1.0) / 2)
        while True:
            await asyncio.sleep(period)
            self._journal_call("flush", self.journal.flush)
            self._check_journal_stats()

    # -- outgoing ------------------------------------------------------------------
    def _outgoing(self, msg: Message) -> None:
        """Bus callback, at delivery: write ahead to the journal, wake the sender."""
        if msg.topic.split("/", 1)[0] in NOT_BRIDGED_OUT:
            return
        self._journal_call("append", self.journal.append, encode_record(msg.topic, msg.to_wire()))
        self._wake.set()

    def _verdict(self, msg: Message) -> None:
        """Bus `reply/<name>` (the controller's verdicts): out as the bare map."""
        name = msg.topic.split("/", 1)[1]
        if isinstance(msg.data, dict) and reply_name_ok(name):
            self.replies.put(name, msg.data, important=True)
        else:
            self.stats.replies_dropped += 1

    def _contain_stale_socket_callbacks(self, loop: asyncio.AbstractEventLoop) -> None:
        """aiomqtt registers socket readers and writers from paho's connect thread with
        call_soon_threadsafe; when the socket closes first (a connection dropped while it
        was being set up), the loop's add_writer fails with EBADF and the default handler
        prints a traceback for a socket that is already gone. Count those and log one
        debug line; everything else goes to the handler that was there."""
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, OSError) and exc.errno == errno.EBADF:
                self.stats.stale_socket_callbacks += 1
                log.debug("mqtt: callback for a closed socket ignored (%s)", exc)
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

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
        fail_connect_on_close(client)
        return client

    async def _run(self) -> None:
        delay = self.cfg.reconnect_min_s
        while True:
            try:
                client = self._client()
            except Exception as exc:             # credentials or TLS files unreadable
                self._connection_failed(BrokerRefused(f"cannot set up the connection: "
                                                      f"{type(exc).__name__}: {exc}"), delay)
                client = None
            try:
                if client is not None:
                    async with client:
                        delay = self.cfg.reconnect_min_s
                        await self._session(client)
            except aiomqtt.MqttError as exc:
                self._connection_failed(exc, delay)
            except Exception as exc:
                self.stats.bridge_errors += 1
                self._resolve_first(exc)
                self.logs.log(logging.ERROR, ("bridge", type(exc).__name__),
                              "mqtt: bridge error, reconnecting: %s: %s", type(exc).__name__,
                              exc, exc_info=True)
            finally:
                self.connected.clear()
                self._live_client = None
                self._in_session = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _resolve_first(self, outcome: BaseException | None) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            self._first_attempt.set_result(outcome)

    def _connection_failed(self, exc: BaseException, delay: float) -> None:
        was_connected = self._in_session
        first = self._first_attempt is not None and not self._first_attempt.done()
        self.connected.clear()
        self._resolve_first(exc)
        if was_connected:                       # counted by _session
            log.warning("mqtt: connection lost (%s); journaling until it is back", exc)
            return
        self.stats.connect_failures += 1
        reason = fatal_reason(exc)
        where = f"{self.cfg.host}:{self.cfg.port}"
        if reason is not None:
            if not first:                       # the first one is raised by __aenter__
                self.logs.log(logging.ERROR, "refused", "mqtt: broker %s: %s", where, reason)
        else:
            self.logs.log(logging.WARNING, "unreachable", "mqtt: broker %s unreachable (%s); "
                          "journaling until it is back", where, exc)
        log.debug("mqtt: cannot connect (%s); retry in %.2f s", exc, delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: commands subscribed before the birth (a command sent right
        after it gets its reply), then sender, receiver and replier until one of them
        ends; the receiver ends at once when the link drops."""
        self.stats.connections += 1
        await client.subscribe(f"{self.prefix}/cmd/+", qos=1)
        await client.publish(f"{self.prefix}/state", self._state_payload(True),
                             qos=1, retain=True)
        self.connected.set()
        self._live_client = client
        self._in_session = True
        self._resolve_first(None)
        log.info("mqtt: connected to %s:%d as %s (session %d)", self.cfg.host,
                 self.cfg.port, self.cfg.device_id, self.stats.session)
        tasks = [asyncio.create_task(self._receive(client), name="mqtt-receive"),
                 asyncio.create_task(self._send(client), name="mqtt-send"),
                 asyncio.create_task(self._send_replies(client), name="mqtt-replies")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            self.connected.clear()              # counted before anything else can run
            self.stats.disconnects += 1
        finally:
            self.connected.clear()
            self._live_client = None
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=CANCEL_S)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        raise aiomqtt.MqttError("the connection ended")

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
                    else:                        # pending but unreadable now: do not spin
                        await asyncio.sleep(0.05)
                    continue
                await inflight[0][1]            # raises MqttError when the link is gone
                done = 0
                while inflight and inflight[0][1].done():
                    index, fut = inflight.popleft()
                    fut.result()
                    done += 1
                journal.ack(index)               # the cursor moves on PUBACK only
                self.stats.sent += done
                self._save_cursor(force=False)
        finally:
            if inflight:
                self.stats.resent += len(inflight)
                for _, fut in inflight:
                    fut.cancel()
                await asyncio.wait([f for _, f in inflight], timeout=CANCEL_S)

    def _save_cursor(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_cursor_save >= CURSOR_SAVE_INTERVAL_S:
            self._journal_call("save_cursor", self.journal.save_cursor)
            self._last_cursor_save = now

    # -- incoming commands and replies ------------------------------------------------
    async def _receive(self, client: aiomqtt.Client) -> None:
        """Hand each inbound message to the intake, which never raises; this ends only
        when the link drops (the iterator raises MqttError at once)."""
        async for message in client.messages:
            try:
                name = str(message.topic).rsplit("/", 1)[-1]
            except Exception:                    # noqa: BLE001 - an undecodable topic
                name = ""
            self.intake.handle(name, message.payload)

    async def _send_replies(self, client: aiomqtt.Client) -> None:
        """Publish queued replies with at most REPLY_INFLIGHT awaiting PUBACK, so a
        command flood queues no more than the reply queue's bound."""
        pending: deque[asyncio.Future] = deque()
        waiter: asyncio.Future | None = None          # one wait for "a reply arrived"
        try:
            while True:
                while pending and pending[0].done():
                    pending.popleft().result()
                    self.stats.replies_sent += 1
                if len(pending) >= REPLY_INFLIGHT:
                    await asyncio.wait({pending[0]})
                    continue
                item = self.replies.pop()
                if item is None:
                    self.replies.ready.clear()
                    if waiter is None or waiter.done():
                        waiter = asyncio.ensure_future(self.replies.ready.wait())
                    await asyncio.wait({waiter, *list(pending)[:1]},
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                name, payload = item
                pending.append(asyncio.ensure_future(
                    client.publish(f"{self.prefix}/reply/{name}", payload, qos=1)))
        finally:
            self.stats.replies_dropped += sum(1 for f in pending if not f.done())
            for fut in (*pending, waiter):
                if fut is not None:
                    fut.cancel()

    def stats_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.stats.__dict__)
        out["connected"] = self.connected.is_set()
        out["journal"] = self._journal_call("stats", self.journal.stats_dict) \
            if self.journal else None
        return out


async def _stop_task(task: asyncio.Task | None, timeout_s: float) -> None:
    """Cancel `task` and wait for it at most about 2 × timeout_s (a second cancel for a
    task that caught the first one in a cleanup of its own)."""
    if task is None or task.done():
        return
    for _ in range(2):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if done:
            return
    log.warning("mqtt: %s did not stop within %.1f s; left behind", task.get_name(),
                2 * timeout_s)


def attach(runtime, cfg: MqttConfig) -> None:
    """Bridge the runtime's bus (a service in real time) and act on built-in commands."""
    bridge_holder: dict[str, MqttBridge] = {}

    def factory() -> MqttBridge:
        bridge = MqttBridge(runtime.bus, cfg, board_name=runtime.board.name,
                            extra_birth={"board": runtime.board.name})
        bridge_holder["bridge"] = bridge
        return bridge

    runtime.add_service(factory, "mqtt bridge")
    runtime.add_summary("mqtt", lambda: (bridge_holder["bridge"].stats_dict()
                                         if bridge_holder else None))

    def connect() -> None:
        if "stop" in cfg.commands and runtime.lookup("motion", None) is None:
            # with a motion controller, it takes cmd/stop (and the other motion commands)
            runtime.bus.subscribe("cmd/stop", callback=lambda m: stop_verdict(runtime, m))
            runtime.add_topics("reply/stop")

    runtime.on_connect(connect)


def stop_verdict(runtime, msg: Message) -> None:
    """`cmd/stop` on a board without a motion controller: request the stop and publish the
    verdict on bus `reply/stop` (`done`, or `refused` with the reason)."""
    data = msg.data if isinstance(msg.data, dict) else {}
    args = data.get("args") if isinstance(data.get("args"), dict) else {}
    verdict: dict[str, Any] = {"id": data.get("id"), "command": "stop", "final": True}
    try:
        runtime.request_stop(args.get("category", 1))
        verdict.update(ok=True, status="done")
    except EdgeError as exc:
        verdict.update(ok=False, status="refused", error=str(exc))
    runtime.bus.publish("reply/stop", verdict)

"""Broker faults end to end: a real `edge run` streams through a real mosquitto while the
broker is restarted, frozen, or cut off, and an independent consumer audits the stream.

The rig starts the broker, a TCP proxy between edge and the broker (for the network
cut), the audit consumer (hil.mqtt_watch, paho with a persistent session, connected
straight to the broker), and `edge run` as a subprocess on a board that publishes one
state frame per tick. One fault is applied in the middle of the run. The verdict comes
from the consumer's seq numbers against edge's own per-topic publish counts: lost,
reordered, duplicated, and what was still waiting in edge's journal at exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from hil.faults import TcpFaultProxy
from hil.mqtt_watch import StreamWatch

CAUGHT_UP_PENDING = 64           # the bridge's default QoS 1 window


class ProxyThread(AbstractContextManager):
    """A TcpFaultProxy on its own event loop thread, for a synchronous rig."""

    def __init__(self, upstream_port: int) -> None:
        self.proxy = TcpFaultProxy("127.0.0.1", upstream_port)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="fault-proxy", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            self._stop = asyncio.Event()
            async with self.proxy.running():
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(serve())

    @property
    def port(self) -> int:
        return self.proxy.port

    def call(self, fn: Callable[[], Any]) -> None:
        self._loop.call_soon_threadsafe(fn)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)


def _restart(broker: Mosquitto, proxy: ProxyThread) -> tuple[Callable, Callable]:
    return broker.stop, broker.start


def _freeze(broker: Mosquitto, proxy: ProxyThread) -> tuple[Callable, Callable]:
    return broker.freeze, broker.thaw


def _cut(broker: Mosquitto, proxy: ProxyThread) -> tuple[Callable, Callable]:
    return (lambda: proxy.call(proxy.proxy.cut)), (lambda: proxy.call(proxy.proxy.restore))


def _none(broker: Mosquitto, proxy: ProxyThread) -> tuple[Callable, Callable]:
    return (lambda: None), (lambda: None)


# fault name -> (begin, end) actions on the rig
FAULTS: dict[str, Callable[[Mosquitto, ProxyThread], tuple[Callable, Callable]]] = {
    "none": _none,             # the anchor: the same stream with no fault
    "restart": _restart,       # broker stopped (SIGTERM, sessions saved) and started again
    "freeze": _freeze,         # broker SIGSTOP / SIGCONT: sockets open, no answers
    "cut": _cut,               # edge's link to the broker cut at a proxy, then restored
}


def stream_board(path: Path, rate_hz: int) -> Path:
    """A board that publishes one joint-state frame per tick at `rate_hz`."""
    period_us = round(1e6 / rate_hz)
    path.write_text(
        "name: stream\n"
        f"cycle: {{period_us: {period_us}, busy_tail_us: {min(100, period_us // 4)},"
        " watchdog_ms: 200}\n"
        "axes:\n  - {name: a0, max_velocity: 1.0, max_acceleration: 5.0}\n"
        "bus:\n  state: {topic: state/joints, every_ticks: 1}\n")
    return path


@dataclass
class FaultResult:
    fault: str
    rate_hz: int
    fault_s: float
    edge_rc: int
    published: int                 # state frames edge published (its own count)
    stream: dict[str, int]         # the consumer's audit of state/joints
    journal_pending: int           # still in edge's journal at exit (durable, not sent)
    bridge: dict[str, Any]
    catch_up_s: float | None = None    # fault end → bridge caught up with the stream

    @property
    def ok(self) -> bool:
        s = self.stream
        return (self.edge_rc == 0 and s["lost"] == 0 and s["reordered"] == 0
                and self.journal_pending == 0 and self.published > 0)

    def as_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "rate_hz": self.rate_hz, "fault_s": self.fault_s,
                "edge_rc": self.edge_rc, "published": self.published, **self.stream,
                "journal_pending": self.journal_pending, "catch_up_s": self.catch_up_s,
                "ok": self.ok,
                "bridge": self.bridge}


def run_fault(fault: str, *, rate_hz: int = 2000, before_s: float = 2.0,
              fault_s: float = 5.0, after_s: float = 6.0,
              workdir: str | os.PathLike | None = None,
              start_timeout_s: float = 60.0, catch_up_timeout_s: float = 60.0) -> FaultResult:
    """Stream for before_s, apply `fault` for fault_s, stream on for after_s, stop edge
    with SIGTERM (a clean stop: the bridge drains for up to 2 s), then audit. The clock
    starts at the first message the consumer sees, not at the process start, so a slow
    start-up cannot move the fault into it. From the end of the fault the rig watches
    edge's own summary (rewritten every 0.25 s) until the bridge has caught up with the
    stream (less than one QoS window pending, connected): that time is `catch_up_s`
    (None: not within `catch_up_timeout_s`). The stream then goes on for what is left of
    `after_s`. A backlog still in the journal at exit counts against the run."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    work = Path(workdir or tempfile.mkdtemp(prefix=f"edge-fault-{fault}-"))
    work.mkdir(parents=True, exist_ok=True)
    board = stream_board(work / "stream.yaml", rate_hz)
    stats = work / "stats.json"
    env = {**os.environ, "EDGE_STATE_DIR": str(work / "state")}
    (work / "broker").mkdir(exist_ok=True)
    with Mosquitto(directory=str(work / "broker")) as broker, \
            ProxyThread(broker.port) as proxy, \
            StreamWatch(broker.port, "edge/v1/+/state/joints",
                        client_id=f"audit-{fault}-{os.getpid()}") as watch:
        begin, end = FAULTS[fault](broker, proxy)
        log_level = os.environ.get("EDGE_FAULT_LOG", "warning")
        with open(work / "edge.log", "wb") as edge_log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "--log-level", log_level, "run",
                 "--board", str(board), "--mqtt", f"mqtt://127.0.0.1:{proxy.port}",
                 "--stats-json", str(stats), "--stats-every", "0.25"],
                env=env, stdout=subprocess.DEVNULL, stderr=edge_log)
        try:
            if not watch.wait_first(start_timeout_s):
                raise RuntimeError(f"edge published nothing within {start_timeout_s} s; "
                                   f"see {work / 'edge.log'}")
            time.sleep(before_s)
            begin()
            time.sleep(fault_s)
            end()
            ended = time.monotonic()
            catch_up_s = _wait_caught_up(stats, ended, catch_up_timeout_s)
            time.sleep(max(0.0, after_s - (time.monotonic() - ended)))
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        watch.wait_quiet(quiet_s=1.0, timeout_s=30.0)
        summary = json.loads(stats.read_text()) if stats.exists() else {}
        published = summary.get("bus", {}).get("published_per_topic", {}).get("state/joints", 0)
        audits = watch.report({"state/joints": published})
    stream = next(iter(audits.values()), {"received": 0, "unique": 0, "lost": published,
                                          "reordered": 0, "duplicates": 0})
    mqtt = summary.get("mqtt") or {}
    journal = mqtt.get("journal") or {}
    bridge = {k: v for k, v in mqtt.items() if not isinstance(v, (dict, list))}
    return FaultResult(fault=fault, rate_hz=rate_hz, fault_s=fault_s, edge_rc=rc,
                       published=published, stream=stream,
                       journal_pending=int(journal.get("pending", 0)), bridge=bridge,
                       catch_up_s=catch_up_s)


def _wait_caught_up(stats: Path, since: float, timeout_s: float) -> float | None:
    """Seconds from `since` until the bridge had less than a window pending (None: it
    did not catch up within `timeout_s`), read from the summary edge rewrites."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            mqtt = json.loads(stats.read_text()).get("mqtt") or {}
        except (OSError, ValueError):
            mqtt = {}
        journal = mqtt.get("journal") or {}
        if mqtt.get("connected") and journal.get("pending", 1 << 30) < CAUGHT_UP_PENDING:
            return round(time.monotonic() - since, 2)
        time.sleep(0.1)
    return None

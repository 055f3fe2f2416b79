"""Inbound commands for the MQTT bridge: rate limits, validation, bounded replies.

An inbound message, whatever its bytes, ends in exactly one of: accepted (handed to the
bus as `cmd/<name>`), rejected, rate limited, or failed (a bug caught here, counted); each
gets a reply unless the bounded reply queue is full (then the reply is dropped and
counted). Nothing a sender does can end the receive loop or keep `stop` out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

from edge.rt.bus import Bus
from edge.rt.commands import (
    CommandRate,
    CommandRejected,
    CommandSpec,
    decode_payload,
    read_request_id,
)

log = logging.getLogger("edge.rt.mqtt")

REPLY_QUEUE_MAX = 256              # replies waiting for the link; beyond: dropped, counted
MAX_NAME_CHARS = 64                # a command name longer than this gets no reply topic
NEVER_LIMITED = frozenset({"stop"})
_UNKNOWN = "\0unknown"             # one shared bucket for every name the board does not allow


class TokenBucket:
    """`burst` tokens, refilled at `per_s` per second; `take(now_s)` spends one if any.

    Over any window of T seconds at most burst + per_s * T takes succeed."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s = per_s
        self.burst = burst
        self.tokens = float(burst)
        self.last_s: float | None = None

    def take(self, now_s: float) -> bool:
        if self.last_s is not None and now_s > self.last_s:
            self.tokens = min(float(self.burst), self.tokens + (now_s - self.last_s) * self.per_s)
        if self.last_s is None or now_s > self.last_s:
            self.last_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class LogLimiter:
    """Log a kind of event at most once per `interval_s`, with the count of the ones left
    out since, so a flood of bad input cannot flood the log."""

    def __init__(self, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[Any, float] = {}
        self._quiet: dict[Any, int] = {}

    def log(self, level: int, kind: Any, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        if len(self._last) > 1024:          # kinds come from outside: keep the map bounded
            self._last.clear()
            self._quiet.clear()
        self._last[kind] = now
        quiet = self._quiet.pop(kind, 0)
        if quiet:
            msg += f" ({quiet} more like it not logged)"
        log.log(level, msg, *args, exc_info=exc_info, stacklevel=2)


class ReplyQueue:
    """Replies waiting to be published, at most `maxlen`. A final verdict or a reply to
    `stop` pushes out the oldest other reply when full; any other reply is dropped."""

    def __init__(self, stats: Any, maxlen: int = REPLY_QUEUE_MAX) -> None:
        self.stats = stats
        self.maxlen = maxlen
        self._items: deque[tuple[str, bytes, bool]] = deque()
        self.ready = asyncio.Event()           # set when an item arrives

    def put(self, name: str, reply: dict[str, Any], important: bool = False) -> None:
        try:
            payload = msgpack.packb(reply, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            self.stats.replies_dropped += 1
            log.warning("mqtt: reply on %r cannot be encoded (%s); dropped", name, exc)
            return
        if len(self._items) >= self.maxlen:
            victim = next((i for i, item in enumerate(self._items) if not item[2]), None)
            if not important or victim is None:
                self.stats.replies_dropped += 1
                return
            del self._items[victim]
            self.stats.replies_dropped += 1
        self._items.append((name, payload, important))
        self.ready.set()

    def pop(self) -> tuple[str, bytes] | None:
        if not self._items:
            return None
        name, payload, _ = self._items.popleft()
        return name, payload

    def __len__(self) -> int:
        return len(self._items)


def reply_name_ok(name: str) -> bool:
    """A name we can answer on `reply/<name>`: one topic level, short, printable."""
    return (0 < len(name) <= MAX_NAME_CHARS and name.isprintable()
            and not any(c in name for c in "/+#"))


class CommandIntake:
    """Turns inbound `cmd/<name>` payloads into bus commands and replies (see module doc).

    `stats` needs the counters commands_accepted, commands_rejected, rate_limited,
    commands_failed, replies_dropped."""

    def __init__(self, bus: Bus, commands: dict[str, CommandSpec], rate: CommandRate,
                 stats: Any, replies: ReplyQueue, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.commands = commands
        self.rate = rate
        self.stats = stats
        self.replies = replies
        self.clock = clock
        self.logs = LogLimiter(clock=clock)
        self._buckets: dict[str, TokenBucket] = {}

    def handle(self, name: str, payload: Any) -> None:
        """One inbound message on `cmd/<name>`; never raises (a bug is counted as
        `commands_failed`, logged once per kind and answered)."""
        try:
            self._handle(name, payload)
        except Exception as exc:
            self.stats.commands_failed += 1
            self.logs.log(logging.ERROR, ("failed", type(exc).__name__),
                          "mqtt: command on %r failed: %s: %s", str(name)[:MAX_NAME_CHARS],
                          type(exc).__name__, exc, exc_info=True)
            try:
                self._reply(name, None, "rejected", f"internal error ({type(exc).__name__})")
            except Exception:               # noqa: BLE001 - the count above is what is left
                self.stats.replies_dropped += 1

    def _bucket(self, name: str) -> TokenBucket:
        key = name if name in self.commands else _UNKNOWN
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate.per_s, self.rate.burst)
        return bucket

    def _handle(self, name: str, payload: Any) -> None:
        raw = payload if isinstance(payload, (bytes, bytearray)) else b""
        if name not in NEVER_LIMITED and not self._bucket(name).take(self.clock()):
            self.stats.rate_limited += 1
            self.logs.log(logging.WARNING, ("rate_limited", name in self.commands),
                          "mqtt: commands over %g/s (burst %d) on %r: rate limited",
                          self.rate.per_s, self.rate.burst, name[:MAX_NAME_CHARS])
            self._reply(name, _id_or_none(raw), "rate_limited",
                        f"rate limited: at most {self.rate.per_s:g} commands/s "
                        f"(burst {self.rate.burst})")
            return
        try:
            spec = self.commands.get(name)
            if spec is None:
                raise CommandRejected(f"command {name[:MAX_NAME_CHARS]!r} is not allowed "
                                      "on this board", _id_or_none(raw))
            command = spec.validate(raw)
        except CommandRejected as exc:
            self.stats.commands_rejected += 1
            self.logs.log(logging.WARNING, ("rejected", name if name in self.commands else None),
                          "mqtt: rejected command %r: %s", name[:MAX_NAME_CHARS], exc)
            self._reply(name, exc.request_id, "rejected", str(exc))
            return
        self.bus.publish(f"cmd/{name}", command)
        self.stats.commands_accepted += 1
        self._reply(name, command["id"], "accepted")

    def _reply(self, name: str, request_id: Any, status: str, error: str | None = None) -> None:
        if not reply_name_ok(name):
            self.stats.replies_dropped += 1
            return
        reply: dict[str, Any] = {"id": request_id, "command": name, "ok": error is None,
                                 "status": status}
        if error is not None:
            reply["error"] = error
        self.replies.put(name, reply, important=name in NEVER_LIMITED)


def _id_or_none(raw: bytes) -> str | int | None:
    """The request id of a payload we will not act on, for its reply, when readable."""
    try:
        return read_request_id(decode_payload(raw))
    except CommandRejected:
        return None

"""The in-process bus: topics, LET delivery, latest values, bounded subscriber queues.

What is published during tick k is staged and delivered when the executor opens tick
k + 1 (`deliver`). The delivery order is fixed by configuration, never by timing: messages
are ranked by the first `order` pattern their topic matches (unmatched last), and within a
rank they keep publish order — itself fixed by the executor's task order. `seq` counts from
0 per topic per session with no gaps. Every drop is counted.

What arrives from outside the controller (published while the executor is not processing a
tick: an MQTT command, a rig, a test between steps) is delivered after the controller's own
messages of its rank, so the order never depends on when it arrived; `tap` sees each
delivery, and which messages of it came from outside (the flight recorder).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import msgpack

from edge.errors import BusError

log = logging.getLogger(__name__)

OverflowPolicy = Literal["drop_oldest", "drop_newest"]
OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")


class Message(NamedTuple):
    topic: str
    seq: int
    tick: int
    t_ns: int
    data: Any

    def to_wire(self) -> bytes:
        """The msgpack map of DESIGN.md: {"seq", "tick", "t_ns", "data"}."""
        return msgpack.packb({"seq": self.seq, "tick": self.tick, "t_ns": self.t_ns,
                              "data": self.data}, use_bin_type=True)


def check_topic(topic: str) -> None:
    """A publishable topic: '/'-separated, non-empty segments, no wildcards."""
    if not topic or any(not seg or seg in ("+", "#") for seg in topic.split("/")):
        raise BusError(f"invalid topic {topic!r}: '/'-separated non-empty names, no wildcards")


def check_pattern(pattern: str) -> None:
    """A subscription pattern: '+' stands for one whole segment, '#' only as the last."""
    segs = pattern.split("/")
    if not pattern or any(not s for s in segs) or "#" in segs[:-1] or any(
            ("+" in s or "#" in s) and len(s) > 1 for s in segs):
        raise BusError(f"invalid subscription pattern {pattern!r}: '/'-separated names, "
                       "'+' for one segment, '#' only at the end")


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT-style match: '+' is one segment, a final '#' is any number (including none)."""
    p, t = pattern.split("/"), topic.split("/")
    for i, seg in enumerate(p):
        if seg == "#":
            return i == len(p) - 1
        if i >= len(t) or (seg != "+" and seg != t[i]):
            return False
    return len(p) == len(t)


class Subscription:
    """A bounded queue of messages matching `pattern`, or a callback run at delivery.

    When the queue is full, `overflow` decides: drop_oldest (the newest state matters
    most) or drop_newest (keep history intact). Either way the drop is counted."""

    def __init__(self, pattern: str, maxlen: int, overflow: OverflowPolicy,
                 callback: Callable[[Message], None] | None) -> None:
        self.pattern = pattern
        self.maxlen = maxlen
        self.overflow = overflow
        self.callback = callback
        self.queue: deque[Message] = deque()
        self.delivered = 0
        self.dropped = 0
        self.callback_errors = 0

    def offer(self, msg: Message) -> None:
        self.delivered += 1
        if self.callback is not None:
            try:
                self.callback(msg)
            except Exception:                  # one bad subscriber must not starve the rest
                self.callback_errors += 1
                log.exception("subscriber of %r failed on %s seq %d",
                              self.pattern, msg.topic, msg.seq)
            return
        if len(self.queue) >= self.maxlen:
            self.dropped += 1
            if self.overflow == "drop_newest":
                return
            self.queue.popleft()
        self.queue.append(msg)

    def drain(self) -> list[Message]:
        out = list(self.queue)
        self.queue.clear()
        return out

    def stats(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "delivered": self.delivered, "dropped": self.dropped,
                "queued": len(self.queue), "overflow": self.overflow,
                "callback_errors": self.callback_errors}


class Bus:
    """Topic bus with LET delivery; `deliver(tick)` is called by the executor each tick."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns, *,
                 order: Sequence[str] = (), default_maxlen: int = 1024,
                 default_overflow: OverflowPolicy = "drop_oldest") -> None:
        for pattern in order:
            check_pattern(pattern)
        if default_overflow not in OVERFLOW_POLICIES:
            raise BusError(f"overflow policy must be one of {OVERFLOW_POLICIES}")
        self._clock_ns = clock_ns
        self.order = tuple(order)
        self.default_maxlen = default_maxlen
        self.default_overflow: OverflowPolicy = default_overflow
        self._seq: dict[str, int] = {}
        self._staged: list[Message] = []
        self._arrived: list[Message] = []     # published from outside the controller
        # nonzero while the executor processes a tick: a publish then is the controller's
        self.internal = 0
        # tap(tick, delivered in order, arrived from outside): before each delivery
        self.tap: Callable[[int, list[Message], list[Message]], None] | None = None
        self._latest: dict[str, Message] = {}
        self._subs: list[Subscription] = []
        self._routes: dict[str, tuple[int, list[Subscription]]] = {}   # topic -> rank, subs
        self.delivered = 0
        self.tick = 0

    def publish(self, topic: str, data: Any) -> Message:
        """Stage `data` on `topic` in the current tick; visible from the next tick."""
        seq = self._seq.get(topic)
        if seq is None:
            check_topic(topic)
            seq = 0
        self._seq[topic] = seq + 1
        msg = Message(topic, seq, self.tick, self._clock_ns(), data)
        (self._staged if self.internal else self._arrived).append(msg)
        return msg

    def subscribe(self, pattern: str, *, maxlen: int | None = None,
                  overflow: OverflowPolicy | None = None,
                  callback: Callable[[Message], None] | None = None) -> Subscription:
        """Subscribe to a topic or a '+'/'#' pattern. Messages queue (bounded) or go to
        `callback` at delivery, in delivery order."""
        check_pattern(pattern)
        maxlen = self.default_maxlen if maxlen is None else maxlen
        overflow = overflow or self.default_overflow
        if maxlen < 1:
            raise BusError("a subscription queue holds at least one message")
        if overflow not in OVERFLOW_POLICIES:
            raise BusError(f"overflow policy must be one of {OVERFLOW_POLICIES}")
        sub = Subscription(pattern, maxlen, overflow, callback)
        self._subs.append(sub)
        self._routes.clear()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.remove(sub)
        self._routes.clear()

    def _route(self, topic: str) -> tuple[int, list[Subscription]]:
        route = self._routes.get(topic)
        if route is None:
            rank = next((i for i, p in enumerate(self.order) if topic_matches(p, topic)),
                        len(self.order))
            route = (rank, [s for s in self._subs if topic_matches(s.pattern, topic)])
            self._routes[topic] = route
        return route

    def deliver(self, tick: int) -> int:
        """Open `tick`: deliver everything staged in earlier ticks; returns the count."""
        staged, self._staged = self._staged, []
        arrived = self._arrived
        if arrived:
            self._arrived = []
            staged += arrived
        if self.order and len(staged) > 1:
            staged.sort(key=lambda m: self._route(m.topic)[0])     # stable: keeps publish order
        if self.tap is not None and staged:
            self.tap(tick, staged, arrived)
        latest = self._latest
        for msg in staged:
            latest[msg.topic] = msg
            for sub in self._route(msg.topic)[1]:
                sub.offer(msg)
        self.delivered += len(staged)
        self.tick = tick
        return len(staged)

    def has_staged(self) -> bool:
        """True when messages wait for the next tick boundary."""
        return bool(self._staged or self._arrived)

    def latest(self, topic: str) -> Message | None:
        """The last delivered message on `topic` (state topics), or None."""
        return self._latest.get(topic)

    def topics(self) -> dict[str, int]:
        """Every topic published this session with its message count."""
        return dict(self._seq)

    def stats(self) -> dict[str, Any]:
        return {
            "topics": len(self._seq),
            "published": sum(self._seq.values()),
            "published_per_topic": dict(self._seq),
            "delivered": self.delivered,
            "dropped": sum(s.dropped for s in self._subs),
            "subscriptions": [s.stats() for s in self._subs],
        }

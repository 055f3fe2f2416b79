"""The in-process bus: topics, LET delivery, latest values.

What is published during tick k is staged and delivered when the executor opens tick
k + 1 (`deliver`), in publish order — which is fixed by the executor's task order, never
by timing. `seq` counts from 0 per topic per session with no gaps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from edge.errors import BusError


@dataclass(frozen=True, slots=True)
class Message:
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
    """A bounded queue of messages matching `pattern`; drops are counted, never silent."""

    def __init__(self, pattern: str, maxlen: int,
                 callback: Callable[[Message], None] | None) -> None:
        self.pattern = pattern
        self.maxlen = maxlen
        self.callback = callback
        self.queue: deque[Message] = deque()
        self.delivered = 0
        self.dropped = 0

    def offer(self, msg: Message) -> None:
        self.delivered += 1
        if self.callback is not None:
            self.callback(msg)
            return
        if len(self.queue) >= self.maxlen:
            self.queue.popleft()           # drop-oldest: the newest state matters most
            self.dropped += 1
        self.queue.append(msg)

    def drain(self) -> list[Message]:
        out = list(self.queue)
        self.queue.clear()
        return out


class Bus:
    """Topic bus with LET delivery; `deliver(tick)` is called by the executor each tick."""

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._seq: dict[str, int] = {}
        self._staged: list[Message] = []
        self._latest: dict[str, Message] = {}
        self._subs: list[Subscription] = []
        self.tick = 0

    def publish(self, topic: str, data: Any) -> Message:
        """Stage `data` on `topic` in the current tick; visible from the next tick."""
        check_topic(topic)
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        msg = Message(topic, seq, self.tick, self._clock_ns(), data)
        self._staged.append(msg)
        return msg

    def subscribe(self, pattern: str, *, maxlen: int = 1024,
                  callback: Callable[[Message], None] | None = None) -> Subscription:
        """Subscribe to a topic or a '+'/'#' pattern."""
        segs = pattern.split("/")
        if not pattern or any(not s for s in segs) or "#" in segs[:-1] or any(
                ("+" in s or "#" in s) and len(s) > 1 for s in segs):
            raise BusError(f"invalid subscription pattern {pattern!r}")
        if maxlen < 1:
            raise BusError("a subscription queue holds at least one message")
        sub = Subscription(pattern, maxlen, callback)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.remove(sub)

    def deliver(self, tick: int) -> int:
        """Open `tick`: deliver everything staged in earlier ticks; returns the count."""
        staged, self._staged = self._staged, []
        for msg in staged:
            self._latest[msg.topic] = msg
            for sub in self._subs:
                if topic_matches(sub.pattern, msg.topic):
                    sub.offer(msg)
        self.tick = tick
        return len(staged)

    def has_staged(self) -> bool:
        """True when messages wait for the next tick boundary."""
        return bool(self._staged)

    def latest(self, topic: str) -> Message | None:
        """The last delivered message on `topic` (state topics), or None."""
        return self._latest.get(topic)

    def stats(self) -> dict[str, Any]:
        return {
            "topics": len(self._seq),
            "published": sum(self._seq.values()),
            "subscriptions": [{"pattern": s.pattern, "delivered": s.delivered,
                               "dropped": s.dropped, "queued": len(s.queue)} for s in self._subs],
        }

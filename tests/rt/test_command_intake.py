"""The bridge's command intake without a broker: token bucket bounds (hypothesis, virtual
time), bounded replies, `stop` never limited, and no exception ever leaves `handle`."""

from __future__ import annotations

import json
import math

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.bus import Bus
from edge.rt.command_intake import CommandIntake, ReplyQueue, TokenBucket
from edge.rt.commands import CommandRate, builtin_commands
from edge.rt.mqtt import BridgeStats


class Clock:
    """Virtual time for the intake: the test moves it."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


RATE = CommandRate(per_s=10, burst=5)


def make_intake(rate=RATE, queue=256, bus=None):
    stats = BridgeStats()
    clock = Clock()
    replies = ReplyQueue(stats, maxlen=queue)
    intake = CommandIntake(bus or Bus(), builtin_commands(2), rate, stats, replies, clock=clock)
    return intake, stats, replies, clock


def drain(replies: ReplyQueue) -> list[tuple[str, dict]]:
    out = []
    while (item := replies.pop()) is not None:
        out.append((item[0], msgpack.unpackb(item[1])))
    return out


@settings(max_examples=200, deadline=None)
@given(per_s=st.floats(0.5, 1000), burst=st.integers(1, 100),
       gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300))
def test_token_bucket_never_exceeds_burst_plus_rate_times_window(per_s, burst, gaps) -> None:
    bucket = TokenBucket(per_s, burst)
    times, t = [], 0.0
    for gap in gaps:
        t += gap
        times.append(t)
    taken = [now for now in times if bucket.take(now)]
    # independent bound: in every window [a, b] at most burst + per_s * (b - a) takes
    for i, a in enumerate(taken):
        for j in range(i, len(taken)):
            assert j - i + 1 <= burst + per_s * (taken[j] - a) + 1e-6


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(per_s=4, burst=2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.2) is False                  # 0.8 of a token
    assert bucket.take(0.25) is True                  # 1.0 token after 0.25 s at 4/s
    assert bucket.take(100.0) and bucket.take(100.0) and not bucket.take(100.0)   # capped


def test_flood_is_rate_limited_and_answered_but_stop_always_passes() -> None:
    bus = Bus()
    seen = bus.subscribe("cmd/#", maxlen=100_000)
    intake, stats, replies, clock = make_intake(bus=bus)
    for i in range(5000):                       # 5,000 enables within 0.4 s of virtual time
        clock.t = i * 0.4 / 5000
        intake.handle("enable", json.dumps({"id": i, "args": {}}).encode())
    intake.handle("stop", b'{"id": "s", "args": {"category": 1}}')
    bus.deliver(1)
    topics = [m.topic for m in seen.drain()]
    # 5 of burst + 10/s over 0.4 s = 4 more: at most 9 enables reach the bus
    assert topics.count("cmd/enable") <= 5 + math.ceil(10 * 0.4) and topics[-1] == "cmd/stop"
    assert stats.rate_limited == 5000 - topics.count("cmd/enable")
    assert stats.commands_accepted == topics.count("cmd/enable") + 1
    answered = drain(replies)
    assert len(answered) == 256                 # the queue bound
    assert stats.replies_dropped == 5001 - 256
    assert answered[-1] == ("stop", {"id": "s", "command": "stop", "ok": True,
                                     "status": "accepted"})
    limited = [r for _, r in answered if r["status"] == "rate_limited"]
    assert limited and all(r["ok"] is False and "rate limited" in r["error"] for r in limited)
    assert all(isinstance(r["id"], int) for r in limited)        # the id rides along


def test_unknown_names_share_one_bucket() -> None:
    intake, stats, replies, clock = make_intake()
    for i in range(100):
        intake.handle(f"x{i}", b"{}")
    assert stats.commands_rejected == 5 and stats.rate_limited == 95
    assert len(intake._buckets) == 1


def test_a_bus_that_raises_is_counted_answered_and_survived() -> None:
    class BrokenBus(Bus):
        def publish(self, topic, data):
            raise RuntimeError("boom")

    intake, stats, replies, clock = make_intake(bus=BrokenBus())
    intake.handle("enable", b'{"id": 1, "args": {}}')
    intake.handle("enable", b'{"id": 2, "args": {}}')
    assert stats.commands_failed == 2
    assert [r["status"] for _, r in drain(replies)] == ["rejected", "rejected"]


def test_unanswerable_names_are_counted_as_dropped_replies() -> None:
    intake, stats, replies, clock = make_intake()
    intake.handle("x" * 65, b"{}")
    intake.handle("", b"{}")
    assert stats.commands_rejected == 2 and stats.replies_dropped == 2 and len(replies) == 0


def test_full_reply_queue_keeps_stop_and_verdicts() -> None:
    stats = BridgeStats()
    replies = ReplyQueue(stats, maxlen=3)
    for i in range(3):
        replies.put("enable", {"id": i})
    replies.put("enable", {"id": 3})                  # dropped: the queue is full
    replies.put("stop", {"id": "s"}, important=True)  # pushes out the oldest other one
    assert [r["id"] for _, r in drain(replies)] == [1, 2, "s"]
    assert stats.replies_dropped == 2


def test_command_rate_is_read_from_the_board_and_checked() -> None:
    import pytest

    from edge.config import parse_board
    from edge.errors import ConfigError

    text = ("name: t\naxes: [{name: a, max_velocity: 1, max_acceleration: 1}]\n"
            "mqtt:\n  url: mqtt://127.0.0.1\n  command_rate: {per_s: 5, burst: %s}\n")
    cfg = parse_board(text % 3, "t.yaml").sections["mqtt"]
    assert cfg.command_rate == CommandRate(per_s=5.0, burst=3)
    assert parse_board(text.replace("  command_rate: {per_s: 5, burst: %s}\n", ""),
                       "t.yaml").sections["mqtt"].command_rate == CommandRate(20.0, 40)
    with pytest.raises(ConfigError, match="burst") as err:
        parse_board(text % 0, "t.yaml")
    assert err.value.line == 5

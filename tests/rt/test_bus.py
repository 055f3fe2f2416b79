"""The in-process bus: routing, LET visibility, configured order, bounded queues, frames."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import parse_board
from edge.errors import BusError, ConfigError
from edge.rt.bus import Bus, topic_matches
from edge.rt.executor import LetTask
from edge.rt.runtime import Runtime

ROUTING = [
    ("a/b/c", "a/b/c", True), ("a/b/c", "a/b", False), ("a/+/c", "a/x/c", True),
    ("a/+/c", "a/x/y/c", False), ("a/#", "a", True), ("a/#", "a/b/c/d", True),
    ("#", "anything/at/all", True), ("+", "a", True), ("+", "a/b", False),
    ("+/+", "a/b", True), ("a/+/#", "a/b", True), ("a/+/#", "a", False),
    ("acq/+", "acq/temp", True), ("acq/+", "events/acq/temp", False),
]


@pytest.mark.parametrize("pattern, topic, expected", ROUTING)
def test_wildcard_routing(pattern: str, topic: str, expected: bool) -> None:
    bus = Bus()
    sub = bus.subscribe(pattern)
    bus.publish(topic, 1)
    bus.deliver(1)
    assert topic_matches(pattern, topic) is expected
    assert len(sub.drain()) == int(expected)


@pytest.mark.parametrize("bad", ["", "a//b", "a/#/b", "a/b#", "a+/b", "/a"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(BusError):
        Bus().subscribe(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "a//b"])
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(BusError):
        Bus().publish(bad, 0)


def test_let_visibility_and_wire_format() -> None:
    bus = Bus(clock_ns=lambda: 42)
    sub = bus.subscribe("t")
    bus.publish("t", {"x": 1})
    assert sub.drain() == [] and bus.latest("t") is None     # not before the next tick
    bus.deliver(1)
    (msg,) = sub.drain()
    assert msgpack.unpackb(msg.to_wire()) == {"seq": 0, "tick": 0, "t_ns": 42, "data": {"x": 1}}
    assert bus.latest("t") == msg


def test_configured_order_ranks_topics_stably() -> None:
    bus = Bus(order=["safety/#", "state/+"])
    seen = []
    bus.subscribe("#", callback=lambda m: seen.append(m.topic))
    for topic in ["acq/a", "state/j", "safety/stop", "acq/b", "safety/wall", "state/c"]:
        bus.publish(topic, None)
    bus.deliver(1)
    assert seen == ["safety/stop", "safety/wall", "state/j", "state/c", "acq/a", "acq/b"]


@pytest.mark.parametrize("policy, kept", [("drop_oldest", [7, 8, 9]), ("drop_newest", [0, 1, 2])])
def test_overflow_is_counted_never_silent(policy: str, kept: list[int]) -> None:
    bus = Bus()
    sub = bus.subscribe("x", maxlen=3, overflow=policy)
    for i in range(10):
        bus.publish("x", i)
    bus.deliver(1)
    assert [m.data for m in sub.drain()] == kept
    assert sub.dropped == 7 and bus.stats()["dropped"] == 7


def test_a_failing_callback_does_not_starve_others() -> None:
    bus = Bus()
    bad = bus.subscribe("x", callback=lambda m: 1 / 0)
    good = bus.subscribe("x")
    bus.publish("x", 1)
    bus.deliver(1)
    assert bad.callback_errors == 1 and len(good.drain()) == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b/c", "b/d", "e/f/g"]), st.integers(0, 3)),
                max_size=200))
def test_seq_is_contiguous_per_topic_and_order_is_publish_order(plan) -> None:
    """Whatever the publishing pattern across ticks: per topic, seq runs 0, 1, 2, ... with
    no gap, and a '#' subscriber sees exactly the publish order."""
    bus = Bus()
    sub = bus.subscribe("#", maxlen=10_000)
    published = []
    tick = 0
    for topic, advance in plan:
        published.append(bus.publish(topic, len(published)))
        if advance:
            tick += advance
            bus.deliver(tick)
    bus.deliver(tick + 1)
    got = sub.drain()
    assert got == published
    for topic in {m.topic for m in got}:
        assert [m.seq for m in got if m.topic == topic] == list(range(bus.topics()[topic]))


BOARD = """
name: t
cycle: {period_us: 1000}
axes: [{name: a, max_velocity: 1, max_acceleration: 1},
       {name: b, max_velocity: 1, max_acceleration: 1}]
bus:
  order: ["safety/#"]
  queue: 4
  state: {topic: state/joints, every_ticks: 5}
"""


def test_state_frames_and_let_order_through_the_executor() -> None:
    rt = Runtime(parse_board(BOARD, "t.yaml"), virtual_time=True)
    frames = rt.bus.subscribe("state/joints", maxlen=1000)
    seen: list[tuple[int, str, int]] = []

    def producer(ctx) -> None:
        ctx.publish("acq/x", ctx.tick)
        ctx.publish("safety/y", ctx.tick)

    def consumer(ctx) -> None:
        for topic in ("acq/x", "safety/y"):
            msg = ctx.latest(topic)
            if msg is not None:
                seen.append((ctx.tick, topic, msg.data))

    rt.add_task(LetTask("producer", producer, period_ticks=10, deadline_ticks=1, priority=2))
    rt.add_task(LetTask("consumer", consumer, period_ticks=10, deadline_ticks=1, priority=1))
    rt.run_virtual(0.05)
    got = frames.drain()
    assert [m.data["first_tick"] for m in got] == list(range(0, 45, 5))
    assert all(m.data["ticks"] == 5 and len(m.data["q"]) == 5 and len(m.data["q"][0]) == 2
               for m in got)
    # released at the same tick, the consumer sees the producer's output of the previous release
    assert (10, "acq/x", 0) in seen and (20, "safety/y", 10) in seen
    assert all(value == tick - 10 for tick, _, value in seen)
    assert frames.maxlen == 1000 and rt.bus.default_maxlen == 4


def test_bus_section_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        parse_board(BOARD.replace('"safety/#"', '"safety/#/x"'), "t.yaml")
    assert err.value.line == 7 and "bus.order" in str(err.value)
    with pytest.raises(ConfigError, match="overflow"):
        parse_board(BOARD + "  overflow: block\n", "t.yaml")


def _message_log(virtual_seconds: float) -> list[tuple]:
    rt = Runtime(parse_board(BOARD, "t.yaml"), virtual_time=True)
    log = rt.bus.subscribe("#", maxlen=1_000_000)

    def rules(ctx) -> None:
        frame = ctx.latest("state/joints")
        if frame is not None:
            ctx.publish("events/sum", round(sum(frame.data["q"][-1]), 12))
            ctx.publish("safety/echo", frame.seq)

    rt.add_task(LetTask("rules", rules, period_ticks=7, deadline_ticks=3))
    rt.run_virtual(virtual_seconds)
    return [(m.topic, m.seq, m.tick, m.t_ns, m.data) for m in log.drain()]


def test_replay_gives_the_same_messages_bit_for_bit() -> None:
    first, second = _message_log(0.3), _message_log(0.3)
    assert len(first) > 100 and first == second

"""`edge bench bus`: the in-process bus and the MQTT bridge beside their anchors.

In one run:
- in-process: publish → deliver of N messages to a callback subscriber among unrelated
  wildcard subscriptions, vs an asyncio.Queue put/get of the same payloads (the standard
  in-process channel), per-message cost in ns;
- bridge: the same N wire payloads through a real mosquitto, via the bus and the bridge
  (write-ahead journal, QoS 1 window) vs a raw aiomqtt QoS 1 publisher with the same
  window, both timed until the broker confirmed the last message;
- outage: a steady stream through the bridge while the broker is stopped for a while; a
  persistent QoS 1 consumer counts lost, reordered and duplicate messages.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiomqtt
import msgpack

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError
from edge.rt.bus import Bus
from edge.rt.bus_config import JournalConfig, MqttConfig
from edge.rt.mqtt import MqttBridge, allow_window


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=20000,
                        help="messages per contender (default 20000)")
    parser.add_argument("--inflight", type=int, default=64,
                        help="QoS 1 window, both contenders (default 64)")
    parser.add_argument("--outage-s", type=float, default=5.0,
                        help="broker outage during the stream (default 5 s; 0 skips)")
    parser.add_argument("--rate", type=int, default=2000,
                        help="messages/s during the outage test (default 2000)")


def _payload(i: int) -> dict[str, Any]:
    return {"value": i * 0.5, "quality": "good", "unit": "degC"}


def measure_inprocess(n: int) -> dict[str, Any]:
    bus = Bus(clock_ns=lambda: 0)
    got = []
    for i in range(8):                               # unrelated subscriptions to route past
        bus.subscribe(f"other/{i}/#")
    bus.subscribe("acq/+", callback=got.append)
    payloads = [_payload(i) for i in range(n)]
    t0 = time.perf_counter_ns()
    for tick, p in enumerate(payloads):
        bus.publish("acq/temp", p)
        if tick % 10 == 9:                           # ten messages per tick
            bus.deliver(tick)
    bus.deliver(n)
    ours_ns = time.perf_counter_ns() - t0
    assert len(got) == n

    async def queue_anchor() -> int:
        q: asyncio.Queue = asyncio.Queue()
        out = []
        t = time.perf_counter_ns()
        for i, p in enumerate(payloads):
            q.put_nowait(("acq/temp", p))
            if i % 10 == 9:
                while not q.empty():
                    out.append(q.get_nowait())
        while not q.empty():
            out.append(q.get_nowait())
        assert len(out) == n
        return time.perf_counter_ns() - t

    anchor_ns = asyncio.run(queue_anchor())
    return {"messages": n, "ours_ns_per_msg": ours_ns / n, "ours_msgs_per_s": n / ours_ns * 1e9,
            "anchor": "asyncio.Queue put_nowait/get_nowait",
            "anchor_ns_per_msg": anchor_ns / n, "anchor_msgs_per_s": n / anchor_ns * 1e9,
            "ratio_cost": ours_ns / anchor_ns}


async def _raw_publisher(port: int, payloads: list[bytes], window: int) -> float:
    """The anchor: a bare aiomqtt QoS 1 publisher keeping `window` publishes in flight."""
    client = aiomqtt.Client("127.0.0.1", port, identifier="bench-raw",
                            max_inflight_messages=window)
    allow_window(client, window)
    async with client:
        room = asyncio.Semaphore(window)
        tasks = []
        t0 = time.perf_counter()
        for p in payloads:
            await room.acquire()
            task = asyncio.ensure_future(client.publish("edge/v1/raw/acq/temp", p, qos=1))
            task.add_done_callback(lambda _: room.release())
            tasks.append(task)
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0


def _bridge_config(port: int, window: int, state_dir: str, **over) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port, device_id="bench", inflight=window,
                      state_dir=state_dir, reconnect_min_s=0.05, reconnect_max_s=0.25,
                      journal=JournalConfig(fsync="interval"), **over)


async def _through_bridge(port: int, n: int, window: int, state_dir: str) -> float:
    bus = Bus()
    async with MqttBridge(bus, _bridge_config(port, window, state_dir), board_name="bench") as br:
        await asyncio.wait_for(br.connected.wait(), 10)
        t0 = time.perf_counter()
        for tick in range(n):
            bus.publish("acq/temp", _payload(tick))
            if tick % 10 == 9:
                bus.deliver(tick)
                if tick % 1000 == 999:
                    await asyncio.sleep(0)           # the executor yields between ticks
        bus.deliver(n)
        if not await br.drain(120):
            raise EdgeError("the bridge did not drain within 120 s")
        return time.perf_counter() - t0


async def _outage(broker, n_rate: int, outage_s: float, state_dir: str) -> dict[str, Any]:
    """Stream at `n_rate` msgs/s: 1 s up, `outage_s` down, then up until all arrive."""
    received: list[int] = []
    subscribed = asyncio.Event()

    async def consume() -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", broker.port, identifier="bench-consumer",
                                          clean_session=False) as c:
                    await c.subscribe("edge/v1/bench/acq/#", qos=1)
                    subscribed.set()
                    async for m in c.messages:
                        received.append(msgpack.unpackb(m.payload)["seq"])
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    consumer = asyncio.create_task(consume())
    await subscribed.wait()
    bus = Bus()
    total = int(n_rate * (2.0 + outage_s))
    async with MqttBridge(bus, _bridge_config(broker.port, 64, state_dir),
                          board_name="bench") as br:
        await asyncio.wait_for(br.connected.wait(), 10)
        start = time.monotonic()
        stopped = restarted = False
        for i in range(total):
            now = time.monotonic() - start
            if not stopped and now >= 1.0:
                broker.stop()
                stopped = True
            if stopped and not restarted and now >= 1.0 + outage_s:
                broker.start()
                restarted = True
            bus.publish("acq/temp", _payload(i))
            bus.deliver(i + 1)
            delay = start + (i + 1) / n_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not restarted:
            broker.start()
        await br.drain(60)
        async with asyncio.timeout(60):
            while len(set(received)) < total:
                await asyncio.sleep(0.05)
        stats = br.stats_dict()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    first_seen = list(dict.fromkeys(received))
    lost = total - len(first_seen)
    reordered = sum(1 for a, b in zip(first_seen, first_seen[1:], strict=False) if b < a)
    return {"messages": total, "outage_s": outage_s, "lost": lost, "reordered": reordered,
            "duplicates": len(received) - len(first_seen), "resent": stats["resent"],
            "journal_peak_pending_at_least": int(n_rate * outage_s * 0.9)}


def run(args: argparse.Namespace) -> BenchReport:
    import tempfile

    from hil.broker import Mosquitto

    if args.messages < 100 or args.inflight < 1:
        raise EdgeError("--messages must be at least 100 and --inflight at least 1")
    inproc = measure_inprocess(max(args.messages, 100_000))
    wire = [Bus(clock_ns=lambda: 0).publish("acq/temp", _payload(i)).to_wire()
            for i in range(args.messages)]
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as state:
        # the anchor runs before and after ours; its better time counts (no warm-up bias)
        raw_first = asyncio.run(_raw_publisher(broker.port, wire, args.inflight))
        ours_s = asyncio.run(_through_bridge(broker.port, args.messages, args.inflight, state))
        raw_s = min(raw_first, asyncio.run(_raw_publisher(broker.port, wire, args.inflight)))
        outage = (asyncio.run(_outage(broker, args.rate, args.outage_s, state + "/o"))
                  if args.outage_s > 0 else None)
    bridge = {"messages": args.messages, "inflight": args.inflight, "batching": "none "
              "(one MQTT message per bus message)",
              "ours_msgs_per_s": args.messages / ours_s, "raw_msgs_per_s": args.messages / raw_s,
              "ratio": raw_s / ours_s}
    data = {"machine": machine_facts(), "inprocess": inproc, "bridge": bridge, "outage": outage}
    lines = [
        "in-process bus (publish -> deliver, 10 messages per tick, 9 subscriptions)",
        f"  ours        {inproc['ours_ns_per_msg']:8.0f} ns/msg  "
        f"{inproc['ours_msgs_per_s']:12,.0f} msg/s",
        f"  asyncio.Queue {inproc['anchor_ns_per_msg']:6.0f} ns/msg  "
        f"{inproc['anchor_msgs_per_s']:12,.0f} msg/s   (cost ratio {inproc['ratio_cost']:.2f})",
        f"MQTT bridge via mosquitto, QoS 1, window {args.inflight}, {args.messages} messages",
        f"  ours (bus + journal + bridge) {bridge['ours_msgs_per_s']:10,.0f} msg/s",
        f"  raw aiomqtt publisher         {bridge['raw_msgs_per_s']:10,.0f} msg/s   "
        f"(ours/raw {bridge['ratio']:.2f}x, target >= 0.9x)",
    ]
    if outage:
        lines.append(f"broker outage {outage['outage_s']} s in a {args.rate} msg/s stream: "
                     f"{outage['messages']} sent, {outage['lost']} lost, {outage['reordered']} "
                     f"reordered, {outage['duplicates']} duplicates (QoS 1 resends)")
    return BenchReport("\n".join(lines), data)

"""A clean stop in real time delivers what the last tick published (nothing left staged)."""

import asyncio

from edge.config import parse_board
from edge.rt.runtime import Runtime

BOARD = """
name: shutdown
cycle: {period_us: 1000, busy_tail_us: 50, watchdog_ms: 200}
axes:
  - {name: a0, max_velocity: 1.0, max_acceleration: 5.0}
bus:
  state: {topic: state/joints, every_ticks: 1}
"""


def test_last_frame_of_a_realtime_run_reaches_subscribers():
    runtime = Runtime(parse_board(BOARD, "shutdown.yaml"))
    got: list[int] = []
    runtime.bus.subscribe("state/joints", callback=lambda m: got.append(m.seq))
    asyncio.run(runtime.run_realtime(0.2))
    published = runtime.bus.topics()["state/joints"]
    assert published > 50
    assert not runtime.bus.has_staged()
    # every frame the bus numbered reached the subscriber, the last one included
    assert got == list(range(published))

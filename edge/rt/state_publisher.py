"""Native state records on the bus: joint state in frames of N ticks, controller status
on change.

A frame published at tick k holds ticks k - N + 1 .. k (positions, velocities, torques,
commanded positions per axis); consumers get 1/N of the message rate at full resolution.
`state/controller` carries mode, fault code and stop category whenever one changes.
"""

from __future__ import annotations

import numpy as np


class StatePublisher:
    FIELDS = ("q", "qd", "tau", "q_cmd")

    def __init__(self, runtime, topic: str, every_ticks: int) -> None:
        self.runtime = runtime
        self.topic = topic
        self.status_topic = topic.rsplit("/", 1)[0] + "/controller" if "/" in topic \
            else "controller"
        self.every_ticks = every_ticks
        self.n_axes = len(runtime.board.axes)
        self.axes = [a.name for a in runtime.board.axes]
        self._status: tuple[int, int, int] | None = None
        self.frames = 0

    def attach(self) -> None:
        self.runtime.executor.add_state_listener(self.on_records, self.every_ticks)

    def on_records(self, tick: int, records: np.ndarray) -> None:
        bus = self.runtime.bus
        n = self.n_axes
        frame = {"first_tick": int(records["tick"][0]), "ticks": len(records), "axes": self.axes}
        for name in self.FIELDS:
            frame[name] = records[name][:, :n].tolist()
        bus.publish(self.topic, frame)
        self.frames += 1
        last = records[-1]
        status = (int(last["mode"]), int(last["fault_code"]), int(last["stop_category"]))
        if status != self._status:
            self._status = status
            bus.publish(self.status_topic, {"mode": status[0], "fault_code": status[1],
                                            "stop_category": status[2], "tick": int(last["tick"])})

"""The faults a scenario injects on a real-time rig (`edge hil run --realtime`): a device
line misbehaving (hil.rigs.DeviceFaults), a broker outage (hil.rigs.BrokerFaults) and a
power loss (SIGKILL of `edge run`, started again on the same state directory when the
fault ends). They need real sockets, a real broker and a separate process: in virtual
time binding one is an error naming the step's line.

    - at: 1 s
      fault: {kind: device, device: pump, fault: silent, for: 2 s}
    - at: 2 s
      fault: {kind: broker, fault: restart, for: 10 s}     # an outage of 10 s
    - at: 3 s
      fault: {kind: power, for: 0.5 s}                    # kill -9, restart 0.5 s later
"""

from __future__ import annotations

import abc
import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from edge.config import Board, Node
from edge.errors import EdgeError
from hil.plant_faults import PlantFault

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

RIG_BROKER_FAULTS = ("restart", "kill", "freeze")


class RigFault(PlantFault, abc.ABC):
    """A fault of the real-time rig: `begin(rig)` / `finish(rig)` act on it (awaited)."""

    realtime_only: ClassVar[bool] = True

    def bind(self, runtime: Runtime) -> None:
        raise EdgeError(f"a {self.kind} fault acts on a real-time rig: only with "
                        "`edge hil run --realtime`")

    @abc.abstractmethod
    async def begin(self, rig: Any) -> None:
        """The fault starts: act on the rig."""

    @abc.abstractmethod
    async def finish(self, rig: Any) -> None:
        """The fault ends: undo what begin did."""


class DeviceFault(RigFault):
    """A device of the scenario's `devices` silent, late, corrupt or hanging up."""

    kind = "device"
    fields = ("device", "fault", "delay_s", "index")

    def parse(self, node: Node, board: Board) -> None:
        from hil.rigs.faults import DEVICE_FAULTS  # the rigs' imports only when used

        self.device = node.get("device", str)
        self.fault = node.get("fault", str, choices=tuple(DEVICE_FAULTS))
        self.delay_s = node.get("delay_s", float, None, min=0.001, max=60.0)
        if self.fault == "late" and self.delay_s is None:
            raise node.error("a late device needs delay_s (seconds)", "delay_s")
        self.index = node.get("index", int, None, min=0, max=255)

    async def begin(self, rig: Any) -> None:
        await rig.device_faults(self.device).set(self.fault, True, delay_s=self.delay_s,
                                                  index=self.index)

    async def finish(self, rig: Any) -> None:
        if self.fault != "disconnect":
            await rig.device_faults(self.device).set(self.fault, False)

    def describe(self) -> str:
        return f"device {self.device} {self.fault}"


class BrokerFault(RigFault):
    """The broker stopped and started again (an outage), killed, or frozen."""

    kind = "broker"
    fields = ("fault",)

    def parse(self, node: Node, board: Board) -> None:
        self.fault = node.get("fault", str, "restart", choices=RIG_BROKER_FAULTS)

    async def begin(self, rig: Any) -> None:
        await asyncio.to_thread(rig.broker_faults.begin, self.fault)

    async def finish(self, rig: Any) -> None:
        await asyncio.to_thread(rig.broker_faults.end, self.fault)


class PowerFault(RigFault):
    """Power lost: `edge run` killed with SIGKILL; power back when the fault ends: started
    again on the same state directory (journal, session counter)."""

    kind = "power"

    async def begin(self, rig: Any) -> None:
        rig.edge.kill()

    async def finish(self, rig: Any) -> None:
        await rig.edge.start()


RIG_FAULT_KINDS: dict[str, type[PlantFault]] = {
    cls.kind: cls for cls in (DeviceFault, BrokerFault, PowerFault)}

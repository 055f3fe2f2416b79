"""The faults a HIL scenario injects in-process, in virtual time: one table of kinds
(FAULT_KINDS), each a class with its parameters, what it does when it starts and when it
ends. Plant faults go to the simulated arm as simulator inputs (native/arm_sim.h), at the
exact tick; the Python-side faults act on the executor.

Wire-level faults (a broker or a Modbus device misbehaving) are the rigs' (hil.faults,
hil.broker_faults): they need real time and real sockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from edge.config import Board, Node
from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

GRAVITY_M_S2 = 9.80665


class PlantFault:
    """One injected fault. `fields`: its parameters in the scenario step; `lasting`: it
    has an end (`for: D` in the step; without it, it lasts to the end of the run);
    `stalls`: while it is on, the runner steps the cycle alone (the Python side frozen)."""

    kind: ClassVar[str]
    fields: ClassVar[tuple[str, ...]] = ()
    lasting: ClassVar[bool] = True
    stalls: ClassVar[bool] = False

    def __init__(self, node: Node, board: Board) -> None:
        self.node = node
        self.parse(node, board)

    def parse(self, node: Node, board: Board) -> None:
        """Read the parameters; ConfigError naming file, line and field."""

    def bind(self, runtime: Runtime) -> None:
        """Find what the fault acts on in the built runtime; EdgeError when it lacks it."""

    def start(self, runtime: Runtime, tick: int) -> None:
        """Called before tick `tick` runs: the fault acts from that tick on."""

    def end(self, runtime: Runtime, tick: int) -> None:
        """Called before tick `tick` runs: the fault no longer acts in that tick."""

    def describe(self) -> str:
        return self.kind


class _ArmSimFault(PlantFault):
    """A simulator input of the arm_sim drive block."""

    def parse(self, node: Node, board: Board) -> None:
        motion = board.sections.get("motion")
        if motion is None or motion.drive.kind != "arm_sim":
            raise node.error(f"the {self.kind} fault acts on the simulated arm: the board's "
                             "motion section needs drive kind arm_sim", "kind")
        self.n = motion.arm.n

    def bind(self, runtime: Runtime) -> None:
        self.drive = runtime.lookup("motion").blocks.drive

    def push(self, runtime: Runtime, tick: int, kind: int, args: list[float]) -> None:
        if not runtime.cycle.push_command(tick, self.drive.index, kind, args):
            raise EdgeError(f"the command ring is full: the {self.kind} fault was not applied")


class Collision(_ArmSimFault):
    """An external torque on one joint, as a collision of the link it moves."""

    kind = "collision"
    fields = ("joint", "torque_nm")

    def parse(self, node: Node, board: Board) -> None:
        super().parse(node, board)
        self.joint = node.get("joint", int, min=0, max=self.n - 1)
        self.torque_nm = node.get("torque_nm", float)

    def _torques(self, on: bool) -> list[float]:
        return [self.torque_nm if on and i == self.joint else 0.0 for i in range(self.n)]

    def start(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_EXT_TORQUE

        self.push(runtime, tick, ARM_SIM_CMD_EXT_TORQUE, self._torques(True))

    def end(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_EXT_TORQUE

        self.push(runtime, tick, ARM_SIM_CMD_EXT_TORQUE, self._torques(False))

    def describe(self) -> str:
        return f"collision: {self.torque_nm:g} N·m on joint {self.joint}"


class Payload(_ArmSimFault):
    """An unexpected mass on the tool: its weight as a world-frame force on the tool point."""

    kind = "payload"
    fields = ("mass_kg",)

    def parse(self, node: Node, board: Board) -> None:
        super().parse(node, board)
        self.mass_kg = node.get("mass_kg", float, min=0.0)

    def start(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_EXT_WRENCH

        self.push(runtime, tick, ARM_SIM_CMD_EXT_WRENCH,
                  [0.0, 0.0, -self.mass_kg * GRAVITY_M_S2, 0.0, 0.0, 0.0])

    def end(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_EXT_WRENCH

        self.push(runtime, tick, ARM_SIM_CMD_EXT_WRENCH, [0.0] * 6)


class EStop(_ArmSimFault):
    """The emergency stop button: pressed at the start, released at the end."""

    kind = "estop"

    def start(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP

        self.push(runtime, tick, ARM_SIM_CMD_ESTOP, [1.0])

    def end(self, runtime: Runtime, tick: int) -> None:
        from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP

        self.push(runtime, tick, ARM_SIM_CMD_ESTOP, [0.0])


class Stall(PlantFault):
    """The Python side frozen: no task runs, nothing feeds the watchdog; the cycle goes on.
    When it ends, Python takes up the ticks it missed, in order, as a late process would."""

    kind = "stall"
    stalls = True
    MAX_TICKS = 4096          # the executor's state history: longer would lose records

    def describe(self) -> str:
        return "Python side stalled"


class DeadlineMiss(PlantFault):
    """The next releases of a task count as late (Executor.inject_deadline_miss): their
    outputs are dropped and the task's miss policy applies."""

    kind = "deadline_miss"
    fields = ("task", "releases")
    lasting = False

    def parse(self, node: Node, board: Board) -> None:
        self.task = node.get("task", str)
        self.releases = node.get("releases", int, 1, min=1, max=1_000_000)

    def bind(self, runtime: Runtime) -> None:
        names = [t.name for t in runtime.executor.tasks]
        if self.task not in names:
            raise EdgeError(f"no task named '{self.task}' (tasks: {', '.join(names)})")

    def start(self, runtime: Runtime, tick: int) -> None:
        runtime.executor.inject_deadline_miss(self.task, self.releases)

    def describe(self) -> str:
        return f"deadline miss: {self.releases} release(s) of task {self.task}"


from hil.sensor_faults import SENSOR_FAULTS  # noqa: E402 - its faults derive from PlantFault

FAULT_KINDS: dict[str, type[PlantFault]] = {
    cls.kind: cls for cls in (Collision, Payload, EStop, Stall, DeadlineMiss, *SENSOR_FAULTS)}

"""The closed-loop safety rig: simulated arm drive -> setpoint -> observer -> safety
monitor on one native cycle, stepped in virtual time. The motion safety tests and the
safety figures of `edge bench motion` (bench.safety) both drive it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.config import Board, load_board
from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP, ARM_SIM_CMD_EXT_TORQUE, arm_sim_block
from edge.motion.safety import SafetyConfig
from edge.motion.safety_monitor import SafetyMonitor
from edge.rt.contract import CycleCommand, SetpointCommand
from edge.rt.native import TARGET_CYCLE, Cycle, setpoint_block

SETPOINT_CMD_TARGET = SetpointCommand.TARGET
CYCLE_CMD_RESET = CycleCommand.RESET


class SafetyRig:
    """Simulated arm drive -> setpoint -> observer -> safety, stepped in virtual time."""

    def __init__(self, board: Board | None = None, cfg: SafetyConfig | None = None, *,
                 q0: Sequence[float] | None = None, estop_category: int | None = None,
                 period_ns: int = 1_000_000, watchdog_ticks: int = 0,
                 **drive_overrides) -> None:
        self.board = board or load_board("sim_arm")
        motion = self.board.sections["motion"]
        self.arm = motion.arm
        self.cfg = cfg or self.board.sections["safety"]
        self.q0 = np.array(q0 if q0 is not None else
                           [a.initial_position for a in self.board.axes], dtype=float)
        d = motion.drive
        drive = dict(viscous=d.viscous, coulomb=d.coulomb, torque_limit=d.torque_limit,
                     servo_bandwidth_hz=d.servo_bandwidth_hz, servo_damping=d.servo_damping,
                     servo_integral_hz=d.servo_integral_hz, substeps=d.substeps)
        drive.update(drive_overrides)
        cat = self.cfg.estop_category if estop_category is None else estop_category
        self.cycle = Cycle(period_ns, self.arm.n, estop_category=cat,
                           watchdog_ticks=watchdog_ticks)
        self.dt = period_ns * 1e-9
        self.drive = self.cycle.add_block(arm_sim_block(self.arm, self.q0, **drive))
        self.setpoint = self.cycle.add_block(setpoint_block(
            [a.max_velocity for a in self.board.axes],
            [a.max_acceleration for a in self.board.axes]))
        self.monitor = SafetyMonitor(self.arm, self.cfg)
        self.monitor.add_to(self.cycle.add_block)

    # -- commands (effective at the next tick) ---------------------------------------
    def move(self, target: Sequence[float]) -> None:
        self.cycle.push_command(self.cycle.tick, self.setpoint, SETPOINT_CMD_TARGET,
                                [float(v) for v in target])

    def inject(self, tau_ext: Sequence[float]) -> None:
        self.cycle.push_command(self.cycle.tick, self.drive, ARM_SIM_CMD_EXT_TORQUE,
                                [float(v) for v in tau_ext])

    def estop(self, pressed: bool) -> None:
        self.cycle.push_command(self.cycle.tick, self.drive, ARM_SIM_CMD_ESTOP,
                                [1.0 if pressed else 0.0])

    def reset(self) -> None:
        self.cycle.push_command(self.cycle.tick, TARGET_CYCLE, CYCLE_CMD_RESET)

    def command(self, kind: int, args: Sequence[float]) -> None:
        self.cycle.push_command(self.cycle.tick, self.monitor.index, kind, args)

    def run(self, ticks: int) -> np.ndarray:
        """Step `ticks` ticks; the state records of those ticks."""
        chunks = []
        left = ticks
        while left > 0:
            k = min(left, 1000)
            self.cycle.step(k)
            chunks.append(self.cycle.pop_states())
            left -= k
        return np.concatenate(chunks)

    def sphere_distance(self, q_rows: np.ndarray) -> np.ndarray:
        """Minimum sphere-to-wall distance (m) for each row of joint positions."""
        n = self.arm.n
        return np.array([self.monitor.sphere_distances(q[:n]).min() for q in q_rows])

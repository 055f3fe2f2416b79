"""The simulated arm drive (native/arm_sim.c) owned from Python: rigid-body dynamics of a
SerialArm with friction, torque limits and the drive's servo, behind the drive contract
(native/drive.h, CiA 402): it reports position, velocity and torque actual and its
statusword, and takes the controlword, modes of operation and targets. Its own commands
are simulator inputs (external torque or wrench, e-stop, teleport) and one vendor
parameter (gravity compensation in CST), never drive commands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.motion.arm_model import native_model
from edge.motion.drive import DriveMode
from edge.motion.kinematics import SerialArm
from edge.rt.native import Block, require_native

if TYPE_CHECKING:
    from edge.config import Node
    from edge.motion.config import MotionConfig

_, _lib = require_native()
# Command kinds (edge_command.kind for this block), from native/arm_sim.h.
ARM_SIM_CMD_EXT_TORQUE = _lib.ARM_SIM_CMD_EXT_TORQUE    # external joint torques (N·m), held
ARM_SIM_CMD_ESTOP = _lib.ARM_SIM_CMD_ESTOP              # args[0]: 1 pressed, 0 released
ARM_SIM_CMD_SET_STATE = _lib.ARM_SIM_CMD_SET_STATE      # joint positions (rad), at rest
ARM_SIM_CMD_EXT_WRENCH = _lib.ARM_SIM_CMD_EXT_WRENCH    # force (N), moment (N·m) on the tool
ARM_SIM_CMD_GRAVITY_COMP = _lib.ARM_SIM_CMD_GRAVITY_COMP  # args[0]: 1 CST adds g(q), 0 not

# the start-up modes of arm_sim_block: (modes of operation, gravity compensation in CST)
MODES = {"position": (DriveMode.CSP, True), "velocity": (DriveMode.CSV, True),
         "torque": (DriveMode.CST, True), "torque_raw": (DriveMode.CST, False)}


@dataclass
class ArmSimConfig:
    """The simulated arm drive (native arm_sim block); arrays have one entry per joint."""

    viscous: np.ndarray          # N·m·s/rad
    coulomb: np.ndarray          # N·m
    torque_limit: np.ndarray     # N·m
    servo_bandwidth_hz: float = 20.0
    servo_damping: float = 1.0
    servo_integral_hz: float = 2.0
    substeps: int = 4
    kind: str = "arm_sim"


def parse_arm_sim(node: Node | None, n: int, board=None) -> ArmSimConfig:
    """`drive: {kind: arm_sim, ...}`; None: no friction, no torque limits."""
    if node is None:
        return ArmSimConfig(np.zeros(n), np.zeros(n), np.full(n, np.inf))
    node.only("kind", "viscous", "coulomb", "torque_limit", "servo_bandwidth_hz",
              "servo_damping", "servo_integral_hz", "substeps")

    def per_joint(name: str, default: float, positive: bool = False) -> np.ndarray:
        values = np.array(node.floats(name, n, [default] * n))
        if np.any(values < 0) or (positive and np.any(values <= 0)):
            raise node.error("must be " + ("> 0" if positive else ">= 0") + " for every joint",
                             name)
        return values

    return ArmSimConfig(
        viscous=per_joint("viscous", 0.0), coulomb=per_joint("coulomb", 0.0),
        torque_limit=per_joint("torque_limit", math.inf, positive=True),
        servo_bandwidth_hz=node.get("servo_bandwidth_hz", float, 20.0, min=0.1, max=1000.0),
        servo_damping=node.get("servo_damping", float, 1.0, min=0.0),
        servo_integral_hz=node.get("servo_integral_hz", float, 2.0, min=0.0, max=1000.0),
        substeps=node.get("substeps", int, 4, min=1, max=64))


def arm_sim_block(arm: SerialArm, initial_position: Sequence[float], *,
                  viscous: Sequence[float] | None = None,
                  coulomb: Sequence[float] | None = None,
                  torque_limit: Sequence[float] | None = None,
                  servo_bandwidth_hz: float = 20.0, servo_damping: float = 1.0,
                  servo_integral_hz: float = 2.0, substeps: int = 4,
                  mode: str = "position", enabled: bool = True) -> Block:
    """A simulated arm drive block for `arm` starting at rest at initial_position (rad).

    viscous (N·m·s/rad), coulomb (N·m), torque_limit (N·m, default none): one per joint.
    The servo: inertia-scaled PID (bandwidth, damping ratio, integral corner frequency)
    with gravity, acceleration and nominal-friction feed-forward.
    mode: "position" (CSP: the servo tracks the target with its feed-forwards),
    "velocity" (CSV), "torque" (CST plus gravity compensation) or "torque_raw" (CST alone).
    enabled: the drive starts in operation enabled and its block keeps it there (a rig
    without a controller); False: it starts in switch on disabled and waits for
    DRIVE_CMD_POWER, as under the motion controller.
    Raises NativeError if the native side refuses the configuration.
    """
    ffi, lib = require_native()
    n = arm.n
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")

    def per_joint(name: str, values, default: float) -> list[float]:
        out = [default] * n if values is None else [float(v) for v in values]
        if len(out) != n:
            raise ValueError(f"{name}: expected {n} values, got {len(out)}")
        return out

    cfg = ffi.new("arm_sim_config *")
    q0 = per_joint("initial_position", initial_position, 0.0)
    b = per_joint("viscous", viscous, 0.0)
    c = per_joint("coulomb", coulomb, 0.0)
    lim = per_joint("torque_limit", torque_limit, math.inf)
    for i in range(n):
        cfg.initial_position[i], cfg.viscous[i], cfg.coulomb[i] = q0[i], b[i], c[i]
        cfg.torque_limit[i] = lim[i] if math.isfinite(lim[i]) else 1e300
    cfg.servo_bandwidth_hz = float(servo_bandwidth_hz)
    cfg.servo_damping = float(servo_damping)
    cfg.servo_integral_hz = float(servo_integral_hz)
    cfg.substeps = int(substeps)
    cfg.mode, cfg.gravity_compensation = int(MODES[mode][0]), int(MODES[mode][1])
    cfg.enabled = int(bool(enabled))
    return Block("arm_sim", lib.arm_sim_block_alloc(native_model(arm), cfg))


def arm_sim_block_from_config(motion: MotionConfig, initial_position: Sequence[float],
                              mode: str = "position", enabled: bool = True) -> Block:
    """The block the board's `motion:` section describes (arm and `drive:`); enabled as
    in arm_sim_block (the motion runtime passes False: its controller enables it)."""
    d: ArmSimConfig = motion.drive
    return arm_sim_block(motion.arm, initial_position, viscous=d.viscous, coulomb=d.coulomb,
                         torque_limit=np.where(np.isfinite(d.torque_limit), d.torque_limit,
                                               math.inf),
                         servo_bandwidth_hz=d.servo_bandwidth_hz,
                         servo_damping=d.servo_damping,
                         servo_integral_hz=d.servo_integral_hz, substeps=d.substeps, mode=mode,
                         enabled=enabled)

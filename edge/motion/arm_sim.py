"""The simulated arm drive (native/arm_sim.c) owned from Python: rigid-body dynamics of a
SerialArm with friction, torque limits and the drive's position servo, behind the same
drive interface a real drive has (reads q, qd, tau; takes q_cmd, qd_cmd, qdd_cmd, tau_cmd).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edge.motion.arm_model import native_model
from edge.motion.config import ArmSimConfig, MotionConfig
from edge.motion.kinematics import SerialArm
from edge.rt.native import Block, require_native

# Command kinds (edge_command.kind for this block), as in native/arm_sim.h.
ARM_SIM_CMD_EXT_TORQUE = 1     # args: external joint torques (N·m), held until changed
ARM_SIM_CMD_MODE = 2           # args[0]: one of the modes below
ARM_SIM_CMD_ESTOP = 3          # args[0]: 1 pressed, 0 released
ARM_SIM_CMD_SET_STATE = 4      # args: joint positions (rad); velocities become zero
ARM_SIM_CMD_EXT_WRENCH = 5     # args: force (N), moment (N·m) on the tool point, world axes

MODES = {"position": 0, "torque": 1, "torque_raw": 2}


def arm_sim_block(arm: SerialArm, initial_position: Sequence[float], *,
                  viscous: Sequence[float] | None = None,
                  coulomb: Sequence[float] | None = None,
                  torque_limit: Sequence[float] | None = None,
                  servo_bandwidth_hz: float = 20.0, servo_damping: float = 1.0,
                  servo_integral_hz: float = 2.0, substeps: int = 4,
                  mode: str = "position") -> Block:
    """A simulated arm drive block for `arm` starting at rest at initial_position (rad).

    viscous (N·m·s/rad), coulomb (N·m), torque_limit (N·m, default none): one per joint.
    The servo: inertia-scaled PID (bandwidth, damping ratio, integral corner frequency)
    with gravity, acceleration and nominal-friction feed-forward.
    mode: "position" (the drive's servo tracks q_cmd/qd_cmd/qdd_cmd, plus tau_cmd),
    "torque" (tau_cmd plus gravity compensation) or "torque_raw" (tau_cmd alone).
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
    cfg.mode = MODES[mode]
    return Block("arm_sim", lib.arm_sim_block_alloc(native_model(arm), cfg))


def arm_sim_block_from_config(motion: MotionConfig, initial_position: Sequence[float],
                              mode: str = "position") -> Block:
    """The block the board's `motion:` section describes (arm and `drive:`)."""
    d: ArmSimConfig = motion.drive
    return arm_sim_block(motion.arm, initial_position, viscous=d.viscous, coulomb=d.coulomb,
                         torque_limit=np.where(np.isfinite(d.torque_limit), d.torque_limit,
                                               math.inf),
                         servo_bandwidth_hz=d.servo_bandwidth_hz,
                         servo_damping=d.servo_damping,
                         servo_integral_hz=d.servo_integral_hz, substeps=d.substeps, mode=mode)

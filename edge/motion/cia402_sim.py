"""The simulated CiA 402 servo drive (native/cia402_sim.c) owned from Python: one power
state machine per axis with its delays, quick stop after its option code, a fault on a
following error that lasts, each axis a load of fixed inertia behind a velocity- and
torque-limited position loop. Board: `motion: drive: {kind: cia402_sim, ...}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.motion.drive import QuickStopOption
from edge.rt.native import Block, require_native

if TYPE_CHECKING:
    from edge.config import Node
    from edge.motion.config import MotionConfig

_, _lib = require_native()
CIA402_SIM_CMD_JAM = _lib.CIA402_SIM_CMD_JAM        # args: axis, 1 load blocked / 0 free
CIA402_SIM_CMD_FAULT = _lib.CIA402_SIM_CMD_FAULT    # args: axis, error code present / 0 gone
CIA402_SIM_CMD_STO = _lib.CIA402_SIM_CMD_STO        # args: axis, 1 safe torque off active

QUICK_STOP_OPTIONS = {int(o): o for o in QuickStopOption}
FIELDS = ("kind", "max_velocity", "torque_limit", "inertia", "position_gain_hz", "boot_ms",
          "switch_on_ms", "enable_ms", "following_error_window", "following_error_timeout_ms",
          "quick_stop_deceleration", "quick_stop_option")


@dataclass
class Cia402SimConfig:
    """Arrays have one entry per axis; SI units, delays in ms as the board gives them."""

    max_velocity: np.ndarray             # rad/s
    torque_limit: np.ndarray             # N·m (the drive's max torque, 0x6072)
    inertia: np.ndarray                  # kg·m² of the load
    position_gain_hz: float = 50.0
    boot_ms: float = 2.0                 # not ready to switch on → switch on disabled
    switch_on_ms: float = 5.0            # ready to switch on → switched on
    enable_ms: float = 10.0              # switched on → operation enabled (brake release)
    following_error_window: float = 0.05     # rad (0x6065)
    following_error_timeout_ms: float = 10.0  # (0x6066)
    quick_stop_deceleration: float = 20.0    # rad/s² (0x6085)
    quick_stop_option: int = int(QuickStopOption.QUICK_STOP_RAMP)   # 0x605A
    kind: str = "cia402_sim"

    @property
    def viscous(self) -> np.ndarray:     # what the safety section's observer starts from
        return np.zeros(len(self.inertia))

    @property
    def coulomb(self) -> np.ndarray:
        return np.zeros(len(self.inertia))


def parse_cia402_sim(node: Node | None, n: int, board=None) -> Cia402SimConfig:
    """`drive: {kind: cia402_sim, ...}` (docs/motion-drives.md); max_velocity defaults to
    1.5 × each axis' max_velocity; raises ConfigError naming file/line/field."""
    if node is None:
        raise ValueError("a cia402_sim drive needs its fields")
    node.only(*FIELDS)
    axes = getattr(board, "axes", None) or []
    v_default = [1.5 * a.max_velocity for a in axes] if len(axes) == n else [3.0] * n

    def per_axis(name: str, default: list[float]) -> np.ndarray:
        values = np.array(node.floats(name, n, default))
        if np.any(values <= 0):
            raise node.error("must be > 0 for every axis", name)
        return values

    def delay(name: str, default: float) -> float:
        return node.get(name, float, default, min=0.0, max=10_000.0)

    option = node.get("quick_stop_option", int, int(QuickStopOption.QUICK_STOP_RAMP),
                      choices=tuple(QUICK_STOP_OPTIONS))
    window = node.get("following_error_window", float, 0.05, min=1e-9)
    return Cia402SimConfig(
        max_velocity=per_axis("max_velocity", v_default),
        torque_limit=per_axis("torque_limit", [100.0] * n),
        inertia=per_axis("inertia", [0.1] * n),
        position_gain_hz=node.get("position_gain_hz", float, 50.0, min=0.1, max=1000.0),
        boot_ms=delay("boot_ms", 2.0), switch_on_ms=delay("switch_on_ms", 5.0),
        enable_ms=delay("enable_ms", 10.0), following_error_window=window,
        following_error_timeout_ms=delay("following_error_timeout_ms", 10.0),
        quick_stop_deceleration=node.get("quick_stop_deceleration", float, 20.0, min=1e-6),
        quick_stop_option=option)


def cia402_sim_block(cfg: Cia402SimConfig, initial_position: Sequence[float]) -> Block:
    """The native block for `cfg`, each axis at rest at initial_position (rad), in not
    ready to switch on. Raises NativeError if the native side refuses the values."""
    ffi, lib = require_native()
    q0 = [float(q) for q in initial_position]
    n = len(q0)
    if not (len(cfg.max_velocity) == len(cfg.torque_limit) == len(cfg.inertia) == n):
        raise ValueError(f"expected {n} values per axis")
    c = ffi.new("cia402_sim_config *")
    c.n_axes = n
    for i in range(n):
        c.initial_position[i], c.max_velocity[i] = q0[i], float(cfg.max_velocity[i])
        c.max_torque[i], c.inertia[i] = float(cfg.torque_limit[i]), float(cfg.inertia[i])
    c.position_gain_hz = cfg.position_gain_hz
    c.boot_s, c.switch_on_s = cfg.boot_ms * 1e-3, cfg.switch_on_ms * 1e-3
    c.enable_s = cfg.enable_ms * 1e-3
    c.following_error_window = cfg.following_error_window
    c.following_error_timeout_s = cfg.following_error_timeout_ms * 1e-3
    c.quick_stop_deceleration = cfg.quick_stop_deceleration
    c.quick_stop_option = int(cfg.quick_stop_option)
    return Block("cia402_sim", lib.cia402_sim_block_alloc(c))


def cia402_sim_block_from_config(motion: MotionConfig, initial_position: Sequence[float]
                                 ) -> Block:
    """The block the board's `motion: drive:` describes."""
    return cia402_sim_block(motion.drive, initial_position)

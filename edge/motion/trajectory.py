"""Time-optimal jerk-limited trajectories: the Python face of native/traj.c.

`plan` validates its inputs, asks the native planner for a time-synchronised profile
(all axes end together) and returns a `Trajectory` that samples (p, v, a) at any time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edge.errors import TrajectoryError
from edge.rt.contract import TrajCommand, TrajError
from edge.rt.native import Block, require_native

ArrayLike = Sequence[float] | np.ndarray

_ERRORS = {
    TrajError.INPUT: "invalid input (non-finite value, non-positive limit or bad axis count)",
    TrajError.TARGET: "a target velocity is beyond the velocity limit",
    TrajError.NO_SOLUTION: "no profile found (a planner bug; please report the inputs)",
}


class Trajectory:
    """A planned multi-axis trajectory; times in s, positions in the axis units."""

    def __init__(self, handle, n_axes: int) -> None:
        self._ffi, self._lib = require_native()
        self._handle = handle
        self.n_axes = n_axes
        self._out = None                 # sample buffers, made on first use

    def _buffers(self):
        if self._out is None:
            self._out = np.empty((3, self.n_axes))
            fb = self._ffi.from_buffer
            self._ptrs = tuple(fb("double[]", row) for row in self._out)
        return self._out, self._ptrs

    @property
    def duration(self) -> float:
        """Duration in s; every axis reaches its target state at this time."""
        return float(self._handle.duration)

    @property
    def axis_min_durations(self) -> np.ndarray:
        """Each axis' own time-optimal duration, s (the largest one is `duration`,
        unless a blocked interval forced a longer synchronised duration)."""
        return np.array([self._handle.axis[i].min_duration for i in range(self.n_axes)])

    def at_time(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, acceleration) at time t (s). Before 0 the start state;
        after `duration` the target state continued at the target velocity."""
        out, ptrs = self._buffers()
        self._lib.traj_at(self._handle, float(t), *ptrs)
        return out[0].copy(), out[1].copy(), out[2].copy()

    def sample(self, times: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrays of shape (len(times), n_axes) for position, velocity, acceleration."""
        times = np.ascontiguousarray(times, dtype=np.float64).ravel()
        out = np.empty((3, times.size, self.n_axes))
        fb = self._ffi.from_buffer
        self._lib.traj_sample(self._handle, fb("double[]", times), times.size,
                              fb("double[]", out[0]), fb("double[]", out[1]),
                              fb("double[]", out[2]))
        return out[0], out[1], out[2]


def _vector(name: str, value, n: int | None) -> list[float]:
    """A list of n finite floats (a scalar is repeated); TrajectoryError otherwise."""
    try:
        seq = [float(x) for x in value]
    except TypeError:
        try:
            seq = [float(value)] * (n or 1)
        except (TypeError, ValueError) as exc:
            raise TrajectoryError(f"{name} must be a number or a sequence of numbers") from exc
    except ValueError as exc:
        raise TrajectoryError(f"{name} must hold numbers: {exc}") from exc
    if n is not None and len(seq) != n:
        if len(seq) == 1:
            return seq * n
        raise TrajectoryError(f"{name} has {len(seq)} values, expected {n}")
    for x in seq:
        if not math.isfinite(x):
            raise TrajectoryError(f"{name} contains a non-finite value: {seq}")
    return seq


def _checked(current_position, target_position, max_velocity, max_acceleration, max_jerk,
             current_velocity, current_acceleration, target_velocity) -> list[list[float]]:
    """Full validation with a message naming the offending input; the slow path, run
    when the planner refused the packed inputs (or they could not be packed)."""
    p0 = _vector("current_position", current_position, None)
    n = len(p0)
    if not 1 <= n <= 16:
        raise TrajectoryError(f"a trajectory has 1 to 16 axes, got {n}")
    pf = _vector("target_position", target_position, n)
    vmax = _vector("max_velocity", max_velocity, n)
    amax = _vector("max_acceleration", max_acceleration, n)
    jmax = _vector("max_jerk", max_jerk, n)
    for name, lim in (("max_velocity", vmax), ("max_acceleration", amax), ("max_jerk", jmax)):
        if min(lim) <= 0:
            raise TrajectoryError(f"{name} must be positive, got {lim}")
    v0 = [0.0] * n if current_velocity is None else _vector("current_velocity",
                                                           current_velocity, n)
    a0 = [0.0] * n if current_acceleration is None else _vector("current_acceleration",
                                                               current_acceleration, n)
    vf = [0.0] * n if target_velocity is None else _vector("target_velocity",
                                                          target_velocity, n)
    if any(abs(x) > lim for x, lim in zip(vf, vmax, strict=True)):
        raise TrajectoryError(f"target_velocity {vf} exceeds max_velocity {vmax}")
    return [p0, v0, a0, pf, vf, vmax, amax, jmax]


def _packed(value, n: int) -> list:
    """value as n entries without validating them (the planner does); None -> zeros."""
    if value is None:
        return [0.0] * n
    if isinstance(value, (int, float)):
        return [value] * n
    seq = list(value)
    if len(seq) != n:
        if len(seq) != 1:
            raise ValueError("length")
        seq = seq * n
    return seq


def plan(current_position: ArrayLike, target_position: ArrayLike, max_velocity: ArrayLike,
         max_acceleration: ArrayLike, max_jerk: ArrayLike, current_velocity=None,
         current_acceleration=None, target_velocity=None) -> Trajectory:
    """Time-optimal, jerk-limited, time-synchronised trajectory to a target state.

    Positions in the axis units (rad or m), limits in units/s, /s^2, /s^3 (a scalar limit
    applies to every axis). The target acceleration is 0. States beyond the limits are
    first braked back into them. Raises TrajectoryError on invalid input.
    """
    ffi, lib = require_native()
    args = (current_position, target_position, max_velocity, max_acceleration, max_jerk,
            current_velocity, current_acceleration, target_velocity)
    handle = ffi.new("traj *")
    try:
        p0 = ([current_position] if isinstance(current_position, (int, float))
              else list(current_position))
        n = len(p0)
        flat = (p0 + _packed(current_velocity, n) + _packed(current_acceleration, n)
                + _packed(target_position, n) + _packed(target_velocity, n)
                + _packed(max_velocity, n) + _packed(max_acceleration, n)
                + _packed(max_jerk, n))
        err = lib.traj_plan_packed(handle, n, ffi.new("double[]", flat))
    except (TypeError, ValueError, OverflowError):
        err = -1
    if err:
        _checked(*args)         # raises with the offending input named
        raise TrajectoryError(_ERRORS.get(err, f"planner error {err}"))
    return Trajectory(handle, n)


def plan_stop(current_position: ArrayLike, max_acceleration: ArrayLike, max_jerk: ArrayLike,
              current_velocity=None, current_acceleration=None) -> Trajectory:
    """Time-optimal jerk-limited stop of each axis (velocity-interface stop): velocity and
    acceleration reach 0 as fast as the limits allow; axes stop independently."""
    ffi, lib = require_native()
    p0 = _vector("current_position", current_position, None)
    n = len(p0)
    amax = _vector("max_acceleration", max_acceleration, n)
    jmax = _vector("max_jerk", max_jerk, n)
    v0 = _vector("current_velocity", 0.0 if current_velocity is None else current_velocity, n)
    a0 = _vector("current_acceleration",
                 0.0 if current_acceleration is None else current_acceleration, n)
    if min(amax) <= 0 or min(jmax) <= 0:
        raise TrajectoryError("max_acceleration and max_jerk must be positive")
    handle = ffi.new("traj *")
    err = lib.traj_plan_stop(handle, n, *(ffi.new("double[]", x) for x in (p0, v0, a0, amax,
                                                                          jmax)))
    if err:
        raise TrajectoryError(_ERRORS.get(err, f"planner error {err}"))
    return Trajectory(handle, n)


TRAJ_CMD_TARGET, TRAJ_CMD_TARGET_VEL, TRAJ_CMD_STOP = (TrajCommand.TARGET, TrajCommand.TARGET_VEL,
                                                     TrajCommand.STOP)


def traj_block(max_velocity: ArrayLike, max_acceleration: ArrayLike,
               max_jerk: ArrayLike) -> Block:
    """The native trajectory block: samples the active trajectory into q_cmd, qd_cmd and
    qdd_cmd each tick. Commands: TRAJ_CMD_TARGET (args: n target positions),
    TRAJ_CMD_TARGET_VEL (n positions then n velocities, n <= 8) and TRAJ_CMD_STOP; a target
    replans from the current commanded state; a latched stop brakes jerk-limited."""
    _, lib = require_native()
    vmax = _vector("max_velocity", max_velocity, None)
    n = len(vmax)
    amax = _vector("max_acceleration", max_acceleration, n)
    jmax = _vector("max_jerk", max_jerk, n)
    return Block("traj", lib.traj_block_alloc(len(vmax), vmax, amax, jmax))

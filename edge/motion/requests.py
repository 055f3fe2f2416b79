"""Motion requests: the request record, the controller's states, and one handler per
request kind, gathered in one table (MOTION_REQUESTS) that every reader uses: the
controller (its handlers and the requests it takes from the bus), the MQTT command
checks (the arguments of the built-in commands) and the `program:` steps (their fields).
A handler runs in the controller's release, checks what it is asked against the state
and the limits (MotionError with the reason), and queues the native commands."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import EdgeError
from edge.motion.drive import DRIVE_CMD_MODE, DRIVE_CMD_POWER, POWER_OFF, POWER_ON, DriveMode
from edge.motion.paths import (
    JointPath,
    arc,
    cartesian_path,
    limit_ratio,
    line,
    native_ik_path,
    playback_path,
)
from edge.rt.commands import ArgSpec, CommandSpec
from edge.rt.contract import FaultCode, fault_label
from edge.rt.executor import TaskContext
from edge.rt.native import NO_STOP, TARGET_CYCLE, require_native

if TYPE_CHECKING:
    from edge.config import Node
    from edge.motion.controller import MotionController


# command kinds as the native headers define them (traj.h, path.h, drive.h, cycle.h)
_, _lib = require_native()
TRAJ_TARGET, TRAJ_TARGET_VEL, TRAJ_STOP = (_lib.TRAJ_CMD_TARGET, _lib.TRAJ_CMD_TARGET_VEL,
                                           _lib.TRAJ_CMD_STOP)
TRAJ_ADOPT, TRAJ_FOLLOW, TRAJ_TARGET_SCALED, TRAJ_VELOCITY = (
    _lib.TRAJ_CMD_ADOPT, _lib.TRAJ_CMD_FOLLOW, _lib.TRAJ_CMD_TARGET_SCALED,
    _lib.TRAJ_CMD_VELOCITY)
PATH_START, PATH_RELEASE = _lib.PATH_CMD_START, _lib.PATH_CMD_RELEASE
CYCLE_CMD_RESET = _lib.CYCLE_CMD_RESET
FAULT_FORCE_LIMIT = FaultCode.FORCE_LIMIT
EDGE_IN_ESTOP = _lib.EDGE_IN_ESTOP
JOG_DEADMAN_S = 0.25          # jog and velocity commands must be repeated this often


class State(enum.StrEnum):
    DISABLED = "disabled"
    IDLE = "idle"
    MOVING = "moving"
    STOPPING = "stopping"
    FAULTED = "faulted"
    TEACH = "teach"


class MotionError(EdgeError):
    """A motion request that cannot be carried out (wrong state, unreachable, limits)."""


@dataclass
class Request:
    """One queued request; `status` goes pending → (planning | resetting →) accepted or
    rejected. `id` is the sender's request id (bus commands); `reply` says whether the
    verdict goes to the bus topic `reply/<name>`."""

    name: str
    args: dict[str, Any]
    status: str = "pending"
    reason: str = ""
    tick: int | None = None           # tick at which it was taken
    id: Any = None
    reply: bool = False
    effective_tick: int | None = None   # when its commands took effect (reset)

    def reject(self, reason: str) -> None:
        self.status, self.reason = "rejected", reason

    @property
    def final(self) -> bool:
        return self.status in ("accepted", "rejected")


@dataclass
class Recording:
    """Waypoints recorded in teach mode, one every `period_s`."""

    period_s: float
    waypoints: list[np.ndarray] = field(default_factory=list)

    def array(self) -> np.ndarray:
        return np.array(self.waypoints)


@dataclass(frozen=True)
class ForceSettings:
    """Admittance: tool velocity = (wrench - target) / damping, zeroed below the deadband;
    above `force_limit_n` the arm stops (category 2)."""

    damping_n_s_m: float = 200.0
    damping_nm_s_rad: float = 20.0
    deadband_n: float = 3.0
    force_limit_n: float = 150.0
    target_wrench: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


# -- request handlers ----------------------------------------------------------------------
def _enable(c: MotionController, ctx: TaskContext) -> None:
    c._require(State.DISABLED, State.IDLE)
    rec = ctx.state
    if int(rec["inputs"]) & EDGE_IN_ESTOP:
        raise MotionError("the e-stop is pressed: release it, then reset")
    if int(rec["stop_category"]) != NO_STOP:
        raise MotionError(f"a stop is latched (fault {fault_label(int(rec['fault_code']))}): "
                          "reset first")
    safety = c.safety
    if safety is not None:
        safety.set_enabled(True, ctx.command)
    # the drive block runs the controlword sequence in C; what follows this request
    # waits until the statusword says operation enabled (controller._drive_enabling)
    ctx.command(c.drive_index, DRIVE_CMD_MODE, (DriveMode.CSP,))
    ctx.command(c.drive_index, DRIVE_CMD_POWER, (POWER_ON,))
    c._enabling_tick, c._enable_timed_out = ctx.effective_tick, False
    c._enter(ctx, State.IDLE)


def _disable(c: MotionController, ctx: TaskContext) -> None:
    c._require(State.IDLE, State.DISABLED)
    safety = c.safety
    if safety is not None:
        safety.set_enabled(False, ctx.command)
    ctx.command(c.drive_index, DRIVE_CMD_POWER, (POWER_OFF,))
    c._enter(ctx, State.DISABLED)


def _reset(c: MotionController, ctx: TaskContext) -> None:
    """Clear a latched stop (faulted, or disabled with nothing latched: nothing to do).
    The verdict waits for the record of the tick the reset takes effect (_judge_reset)."""
    c._require(State.FAULTED, State.DISABLED)
    if c._resetting is not None:
        raise MotionError("a reset is already under way")
    if int(ctx.state["stop_category"]) == NO_STOP:
        return
    # the drive stays off after the reset (enable again); a drive in fault gets the
    # rising edge of controlword bit 7 from its block in the tick the cycle accepts it
    ctx.command(c.drive_index, DRIVE_CMD_POWER, (POWER_OFF,))
    ctx.command(TARGET_CYCLE, CYCLE_CMD_RESET)
    c._current.status, c._current.effective_tick = "resetting", ctx.effective_tick
    c._resetting = c._current


def _stop(c: MotionController, ctx: TaskContext, category=None) -> None:
    """A jerk-limited motion stop; with a category (bus `cmd/stop`), a latched protective
    stop of the cycle instead (the bus path already requested it at once)."""
    if category is not None:
        if isinstance(category, bool) or category not in (0, 1, 2):
            raise MotionError(f"stop category must be 0, 1 or 2, got {category!r}")
        ctx.request_stop(int(category))
        return
    if c.state == State.TEACH:
        _teach(c, ctx, on=False)
        return
    c._require(State.MOVING, State.STOPPING, State.IDLE)
    c._pending_path = None
    c._target = None
    if c._path_end_tick is not None:
        c._hand_over(ctx)               # adopt brakes jerk-limited from the path's state
    else:
        ctx.command(c.traj_index, TRAJ_STOP)
    c._deadman_tick = None
    c._moved_tick = ctx.tick
    if c.state != State.IDLE:
        c._enter(ctx, State.STOPPING)


def _move_joint(c: MotionController, ctx: TaskContext, positions, speed_scale=1.0) -> None:
    c._require(State.IDLE, State.MOVING)
    if c._path_end_tick is not None:
        raise MotionError("a Cartesian move or playback is running: stop it first")
    q = c._check_joints(positions)
    if not 0.0 < float(speed_scale) <= 1.0:
        raise MotionError("speed_scale must be in (0, 1]")
    ctx.command(c.traj_index, TRAJ_TARGET_SCALED, (*q, float(speed_scale), 0.0))
    c._target = q
    c._moved_tick = ctx.tick
    c._enter(ctx, State.MOVING)


def _cartesian(c: MotionController, ctx: TaskContext, pose_at, length, rotation,
               speed_m_s) -> None:
    tcp = dict(c.tcp)
    if speed_m_s is not None:
        if not 0 < float(speed_m_s) <= c.tcp["speed_m_s"]:
            raise MotionError(f"speed must be in (0, {c.tcp['speed_m_s']}] m/s")
        tcp["speed_m_s"] = float(speed_m_s)
    def solve(poses, q0, max_step):
        return native_ik_path(c.native_arm, poses, q0, max_step)

    q0 = c.q_cmd.copy()
    c._plan_then_play(ctx, c._current, lambda: cartesian_path(
        solve, q0, pose_at, length, rotation, limits=c.limits, period_s=c.period_s,
        max_samples=c.path_capacity, **tcp))


def _move_linear(c: MotionController, ctx: TaskContext, xyz, rpy=None, speed_m_s=None) -> None:
    c._require(State.IDLE)
    pose_at, length, rotation = line(c.arm.fk(c.q_cmd), c._target_pose(xyz, rpy))
    _cartesian(c, ctx, pose_at, length, rotation, speed_m_s)


def _move_circular(c: MotionController, ctx: TaskContext, via, xyz, rpy=None,
                   speed_m_s=None) -> None:
    c._require(State.IDLE)
    pose_at, length, rotation = arc(c.arm.fk(c.q_cmd), via, c._target_pose(xyz, rpy))
    _cartesian(c, ctx, pose_at, length, rotation, speed_m_s)


def _jog(c: MotionController, ctx: TaskContext, axis, velocity) -> None:
    """Hold-to-run: move one joint toward its limit at |velocity| until the jog stops
    being repeated (JOG_DEADMAN_S) or a zero velocity arrives."""
    c._require(State.IDLE, State.MOVING)
    if c._path_end_tick is not None:
        raise MotionError("a Cartesian move or playback is running: stop it first")
    axis, velocity = int(axis), float(velocity)
    if not 0 <= axis < c.arm.n:
        raise MotionError(f"axis must be 0..{c.arm.n - 1}")
    if velocity == 0.0:
        _stop(c, ctx)
        return
    scale = abs(velocity) / c.limits.velocity[axis]
    if scale > 1.0:
        raise MotionError(f"jog velocity beyond the axis limit {c.limits.velocity[axis]} rad/s")
    target = c.q_cmd.copy()
    target[axis] = c.arm.q_max[axis] if velocity > 0 else c.arm.q_min[axis]
    ctx.command(c.traj_index, TRAJ_TARGET_SCALED, (*target, scale, 1.0))
    c._target = target
    c._deadman_tick = ctx.tick + int(round(JOG_DEADMAN_S / c.period_s))
    c._moved_tick = ctx.tick
    c._enter(ctx, State.MOVING)


def _move_velocity(c: MotionController, ctx: TaskContext, velocities) -> None:
    """Velocity interface: reach the joint velocities (jerk-limited) and hold them while
    the command is repeated; a jerk-limited stop when it is not (deadman)."""
    c._require(State.IDLE, State.MOVING)
    v = np.asarray(velocities, float)
    if v.shape != (c.arm.n,) or np.any(np.abs(v) > c.limits.velocity):
        raise MotionError("expected one velocity per joint within the velocity limits")
    ctx.command(c.traj_index, TRAJ_VELOCITY, tuple(v))
    c._target = None
    c._deadman_tick = ctx.tick + int(round(JOG_DEADMAN_S / c.period_s))
    c._moved_tick = ctx.tick
    c._enter(ctx, State.MOVING)


def _teach(c: MotionController, ctx: TaskContext, on, record_hz=50.0) -> None:
    if on:
        c._require(State.IDLE)
        ctx.command(c.drive_index, DRIVE_CMD_MODE, (DriveMode.CST,))
        ctx.command(c.traj_index, TRAJ_FOLLOW, (1,))
        c._record_every = max(1, int(round(1.0 / (float(record_hz) * c.period_s))))
        c.recording = Recording(c._record_every * c.period_s)
        c._enter(ctx, State.TEACH)
    else:
        c._require(State.TEACH)
        ctx.command(c.traj_index, TRAJ_FOLLOW, (0,))
        ctx.command(c.drive_index, DRIVE_CMD_MODE, (DriveMode.CSP,))
        c._moved_tick = ctx.tick
        c._enter(ctx, State.STOPPING)


def _playback(c: MotionController, ctx: TaskContext, recording=None, smoothing=1e-4) -> None:
    c._require(State.IDLE)
    rec = recording or c.recording
    if rec is None or len(rec.waypoints) < 4:
        raise MotionError("nothing recorded to play back")
    waypoints = rec.array()
    c._plan_then_play(ctx, c._current, lambda: playback_path(
        waypoints, rec.period_s, c.limits, c.period_s, c.path_capacity, smoothing))


def _set_mode(c: MotionController, ctx: TaskContext, mode, force=None) -> None:
    c._require(State.IDLE)
    if mode not in ("position", "velocity", "force"):
        raise MotionError("mode must be position, velocity or force")
    if mode == "force":
        safety = c.safety
        if safety is None or safety.observer is None:
            raise MotionError("force mode needs the safety section's momentum observer "
                              "(the wrench is estimated from its residual)")
        c.force = ForceSettings(**(force or {}))
    c.mode = mode


def _move_custom(c: MotionController, ctx: TaskContext, planner, goal) -> None:
    c._require(State.IDLE)
    if planner not in c.planners:
        raise MotionError(f"no planner named {planner!r} is registered")
    q0 = c.q_cmd.copy()

    def make() -> JointPath:
        path = c.planners[planner](q0.copy(), goal, c.limits, c.period_s)
        if not isinstance(path, JointPath) or path.q.ndim != 2 or path.q.shape[1] != c.arm.n:
            raise MotionError(f"planner {planner!r} must return a JointPath with {c.arm.n} "
                              "axes")
        if limit_ratio(path, c.limits) > 1.0 + 1e-9:
            raise MotionError(f"planner {planner!r} produced a path beyond the joint limits")
        if not np.all((path.q >= c.arm.q_min) & (path.q <= c.arm.q_max)):
            raise MotionError(f"planner {planner!r} left the joint limits")
        if np.max(np.abs(path.q[0] - q0)) > c.limits.velocity.max() * c.period_s * 1.01:
            raise MotionError(f"planner {planner!r} must start at the current position")
        path.start = q0
        return path

    c._plan_then_play(ctx, c._current, make)


# -- program steps: the fields a request takes as a `program:` step --------------------------
JOINTS, VECTOR, NUMBER = "joints", "vector", "number"   # n_axes floats, 3 floats, a float >= 0


def _joint_step(body: Node, args: dict[str, Any], limits: tuple | None) -> None:
    if "positions" not in args:
        raise body.error("required field is missing", "positions")
    if limits is not None:
        for i, (q, lo, hi) in enumerate(zip(args["positions"], *limits, strict=True)):
            if not lo <= q <= hi:
                raise body.error(f"joint {i} target {q:g} rad is outside its limits "
                                 f"[{lo:g}, {hi:g}]", "positions")


def _one_end(body: Node, args: dict[str, Any], limits: tuple | None) -> None:
    if ("xyz" in args) == ("offset" in args):
        raise body.error("give exactly one of xyz (absolute, m) or offset (from the "
                         "tool's position at the start of the step)")


def _one_end_one_via(body: Node, args: dict[str, Any], limits: tuple | None) -> None:
    _one_end(body, args, limits)
    if ("via" in args) == ("via_offset" in args):
        raise body.error("give exactly one of via or via_offset")


@dataclass(frozen=True)
class Step:
    """A request as a program step: its fields (JOINTS, VECTOR or NUMBER each; `offset`
    and `via_offset` are relative to the tool at the step's start, `after_s` is read by
    the program itself) and the check across fields, given the joint limits (or None)."""

    fields: dict[str, str]
    check: Callable[[Node, dict[str, Any], tuple | None], None] | None = None


# -- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionRequest:
    """One request the controller takes and every way it may be asked for. `handler`
    runs in the controller's release as handler(controller, ctx, **args); `bus`: taken
    from the bus topic `cmd/<name>`; `wire_args(n_axes)`: the arguments an MQTT command
    of this name is checked against (None: not offered over MQTT); `step`: how a
    `program:` step asks for it (None: not a step)."""

    name: str
    handler: Callable[..., None]
    bus: bool = False
    wire_args: Callable[[int], dict[str, ArgSpec]] | None = None
    step: Step | None = None


def _joints_args(n_axes: int) -> dict[str, ArgSpec]:
    return {"positions": ArgSpec("floats", length=n_axes),
            "speed_scale": ArgSpec("float", False, 0.0, 1.0)}


def _jog_args(n_axes: int) -> dict[str, ArgSpec]:
    return {"axis": ArgSpec("int", True, 0, n_axes - 1),
            "velocity": ArgSpec("float", True, -10.0, 10.0)}


_CARTESIAN = {"xyz": VECTOR, "rpy": VECTOR, "offset": VECTOR, "speed_m_s": NUMBER}
MOTION_REQUESTS: dict[str, MotionRequest] = {r.name: r for r in (
    MotionRequest("enable", _enable, bus=True, wire_args=lambda n: {}, step=Step({})),
    MotionRequest("disable", _disable, bus=True, wire_args=lambda n: {}, step=Step({})),
    MotionRequest("reset", _reset, bus=True, wire_args=lambda n: {}),
    MotionRequest("stop", _stop, bus=True,
                  wire_args=lambda n: {"category": ArgSpec("int", False, 0, 2)},
                  step=Step({"after_s": NUMBER})),
    MotionRequest("move_joint", _move_joint, bus=True, wire_args=_joints_args,
                  step=Step({"positions": JOINTS, "speed_scale": NUMBER}, _joint_step)),
    MotionRequest("move_linear", _move_linear, bus=True, step=Step(_CARTESIAN, _one_end)),
    MotionRequest("move_circular", _move_circular,
                  step=Step({"via": VECTOR, "via_offset": VECTOR, "xyz": VECTOR,
                             "offset": VECTOR, "rpy": VECTOR, "speed_m_s": NUMBER},
                            _one_end_one_via)),
    MotionRequest("jog", _jog, bus=True, wire_args=_jog_args),
    MotionRequest("move_velocity", _move_velocity),
    MotionRequest("teach", _teach),
    MotionRequest("playback", _playback),
    MotionRequest("set_mode", _set_mode),
    MotionRequest("move_custom", _move_custom),
)}


def mqtt_commands(n_axes: int) -> dict[str, CommandSpec]:
    """The controller's commands offered over MQTT, checked for an arm of n_axes: the
    built-ins a board may allow by name in `mqtt: commands:` (rt.commands.builtin_commands)."""
    return {r.name: CommandSpec(r.name, r.wire_args(n_axes))
            for r in MOTION_REQUESTS.values() if r.wire_args is not None}

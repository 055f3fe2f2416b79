"""The motion controller: a state machine over the native motion blocks, run as a LET task.

States: disabled → idle → moving → stopping → idle, faulted on any latched stop, and
teach (the arm held weightless and led by hand). Requests (move_joint, move_linear,
move_circular, jog, move_velocity, stop, enable, disable, reset, teach, playback,
force mode) come from Python or from bus topics `cmd/<name>`; they are queued and taken
in order at the task's next release, so what happens depends on requests and ticks only.
A request made by another LetTask is one of its outputs: it reaches the queue at that
release's deadline tick r + D (LET), and is taken at the first release at or after it.
The verdict on each request taken from the bus is published on `reply/<name>`. The
native blocks do the motion and the safety layer re-checks all of it every tick; this
task only decides what to ask for.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edge.motion.blocks import MotionBlocks, load_path
from edge.motion.drive import FAULT_DRIVE_ENABLE_TIMEOUT, FAULT_DRIVE_STATE, DriveState, state_of
from edge.motion.paths import JointLimits, JointPath, PathError
from edge.motion.requests import (
    EDGE_IN_ESTOP,
    FAULT_FORCE_LIMIT,
    MOTION_REQUESTS,
    PATH_RELEASE,
    PATH_START,
    TRAJ_ADOPT,
    TRAJ_STOP,
    TRAJ_TARGET,
    TRAJ_TARGET_VEL,
    ForceSettings,
    MotionError,
    Recording,
    Request,
    State,
)
from edge.rt.contract import fault_label
from edge.rt.executor import CYCLE_CMD_STOP, LetTask, TaskContext, current_release
from edge.rt.native import NO_STOP, TARGET_CYCLE

__all__ = ["ForceSettings", "MotionController", "MotionError", "Recording", "Request", "State"]

log = logging.getLogger(__name__)

STANDSTILL_RAD_S = 1e-6       # commanded joint velocity below which a stop has ended
# A move has ended once the arm has too: the measured joint velocities below this (the
# servo lags the command by a few periods)
SETTLED_RAD_S = 1e-3
TARGET_REACHED_RAD = 1e-9     # the trajectory ends exactly on its target; this is rounding
REQUEST_HISTORY = 256         # requests kept in `history` (the counts cover all of them)
MISS_STOP_CATEGORY = 1        # a late controller release: controlled stop, then power off
ENABLE_TIMEOUT_S = 1.0        # the drive must report operation enabled within this


class MotionController:
    """Owns the trajectory and path blocks and the drive's mode; see the module text."""

    def __init__(self, runtime, arm, native_arm, *, blocks: MotionBlocks,
                 limits: JointLimits, path_capacity: int,
                 tcp_speed_m_s: float = 0.25, tcp_accel_m_s2: float = 1.0,
                 tcp_jerk_m_s3: float = 10.0, angular_speed_rad_s: float = 1.0,
                 period_ticks: int = 10, planner_ticks: int = 50,
                 start_ticks: int = 100,
                 miss_stop_category: int = MISS_STOP_CATEGORY) -> None:
        self.runtime = runtime
        self.arm = arm
        self.native_arm = native_arm
        self.blocks = blocks
        self.safety = None          # the safety section's monitor, found at connect
        self.limits = limits
        self.path_capacity = path_capacity
        self.tcp = dict(speed_m_s=tcp_speed_m_s, accel_m_s2=tcp_accel_m_s2,
                        jerk_m_s3=tcp_jerk_m_s3, angular_speed=angular_speed_rad_s)
        self.period_s = runtime.period_ns * 1e-9
        self.state = State.DISABLED
        self.mode = "position"
        self.fault: dict[str, Any] | None = None
        self.requests: deque[Request] = deque()
        self.history: deque[Request] = deque(maxlen=REQUEST_HISTORY)
        self.verdicts = {"accepted": 0, "rejected": 0}
        self._target: np.ndarray | None = None     # where the running joint move ends
        self._resetting: Request | None = None
        self.planners: dict[str, Callable[..., JointPath]] = {}
        self.recording: Recording | None = None
        self.force = ForceSettings()
        self._next_buffer = 0
        self._path_end_tick: int | None = None
        self._pending_path: JointPath | None = None     # playback after the approach move
        self._deadman_tick: int | None = None
        self._record_every = 1
        self.moves_done = 0
        self._moved_tick = 0
        self._planning: np.ndarray | None = None     # q_cmd a queued plan starts from
        self._enabling_tick: int | None = None       # the drive was asked to enable then
        self._enable_timed_out = False
        # D = period: requests take effect within two periods; the native blocks, not this
        # task, keep the arm safe between releases. A miss latches a stop of the board's
        # category (motion: on_miss_stop_category), by default a controlled one.
        self.task = LetTask("motion_controller", self._scan, period_ticks=period_ticks,
                            priority=50, on_miss="stop", offset_ticks=start_ticks,
                            stop_category=miss_stop_category)
        runtime.add_task(self.task)
        # Paths (Cartesian moves, playback, integrators' planners) take milliseconds to
        # tens of milliseconds: they are planned by a slower LET task of their own, whose
        # result is handed over exactly PLANNER_TICKS after its release.
        self._to_plan: deque[tuple[Request, Callable[[], JointPath]]] = deque()
        self._planned: deque[tuple[int, Request, JointPath | Exception]] = deque()
        self.planner_task = LetTask("motion_planner", self._plan_scan,
                                    period_ticks=planner_ticks, priority=10, on_miss="log",
                                    offset_ticks=start_ticks)
        runtime.add_task(self.planner_task)
        runtime.bus.subscribe("cmd/+", callback=self._bus_command)

    def connect(self, safety) -> None:
        """Called at connect: the safety monitor (None without a safety section)."""
        self.safety = safety

    # the blocks' command targets: fixed once the runtime placed them in the tick
    @property
    def traj_index(self) -> int:
        return self.blocks.traj.index

    @property
    def path_index(self) -> int:
        return self.blocks.path.index

    @property
    def drive_index(self) -> int:
        return self.blocks.drive.index

    # -- the public API: every call queues a request ----------------------------------
    def request(self, name: str, **args: Any) -> Request:
        if name not in MOTION_REQUESTS:
            raise MotionError(f"unknown motion request {name!r}; known: "
                              f"{', '.join(MOTION_REQUESTS)}")
        req = Request(name, args)
        release = current_release()
        if release is None:                  # a test, a service: at the next release
            self.requests.append(req)
        else:                                # a task's output: visible at its deadline
            release.hand_over(lambda: self.requests.append(req), lambda: req.reject(
                f"the requesting task '{release.task.name}' missed its deadline"))
        return req

    def enable(self) -> Request:
        return self.request("enable")

    def disable(self) -> Request:
        return self.request("disable")

    def reset(self) -> Request:
        return self.request("reset")

    def stop(self) -> Request:
        return self.request("stop")

    def move_joint(self, positions: Sequence[float], speed_scale: float = 1.0) -> Request:
        return self.request("move_joint", positions=list(positions), speed_scale=speed_scale)

    def move_linear(self, xyz: Sequence[float], rpy: Sequence[float] | None = None,
                    speed_m_s: float | None = None) -> Request:
        return self.request("move_linear", xyz=list(xyz), rpy=rpy, speed_m_s=speed_m_s)

    def move_circular(self, via_xyz: Sequence[float], xyz: Sequence[float],
                      rpy: Sequence[float] | None = None,
                      speed_m_s: float | None = None) -> Request:
        return self.request("move_circular", via=list(via_xyz), xyz=list(xyz), rpy=rpy,
                            speed_m_s=speed_m_s)

    def jog(self, axis: int, velocity: float) -> Request:
        return self.request("jog", axis=axis, velocity=velocity)

    def move_velocity(self, velocities: Sequence[float]) -> Request:
        return self.request("move_velocity", velocities=list(velocities))

    def teach(self, on: bool, record_hz: float = 50.0) -> Request:
        return self.request("teach", on=on, record_hz=record_hz)

    def playback(self, recording: Recording | None = None, smoothing: float = 1e-4) -> Request:
        return self.request("playback", recording=recording, smoothing=smoothing)

    def set_mode(self, mode: str, **force: Any) -> Request:
        return self.request("set_mode", mode=mode, force=force)

    def register_planner(self, name: str,
                         planner: Callable[[np.ndarray, Any, JointLimits, float], JointPath]
                         ) -> None:
        """An integrator's planner: planner(q_start, goal, limits, period_s) -> JointPath
        sampled once per tick; run with `move_custom(name, goal)`. The path is checked
        against the joint limits before it plays, and the safety layer checks every tick."""
        if not name.isidentifier():
            raise MotionError(f"planner name {name!r} must be an identifier")
        self.planners[name] = planner

    def move_custom(self, planner: str, goal: Any) -> Request:
        return self.request("move_custom", planner=planner, goal=goal)

    def _bus_command(self, msg) -> None:
        """`cmd/<name>` from the bus (MQTT commands arrive here once validated), shaped
        {"id", "args"}. Each one the controller takes is answered on `reply/<name>` at the
        release that decides it. A stop with a category is a latched protective stop of
        the cycle, not a motion stop: requested at once, answered at the next release."""
        name = msg.topic.rsplit("/", 1)[-1]
        if name not in MOTION_REQUESTS or not MOTION_REQUESTS[name].bus:
            return                           # the board's own commands: someone else's
        data = msg.data if isinstance(msg.data, dict) else {}
        args = data.get("args", {})
        req = Request(name, dict(args) if isinstance(args, dict) else {}, id=data.get("id"),
                      reply=True)
        if not isinstance(msg.data, dict) or not isinstance(args, dict):
            req.reject("a command is a map {\"id\": .., \"args\": {..}}")
        elif name == "stop" and "category" in args:
            category = args["category"]
            if isinstance(category, int) and not isinstance(category, bool) and \
                    category in (0, 1, 2):
                self.runtime.request_stop(category)
        self.requests.append(req)

    # -- the planner: paths for requests the controller accepted -----------------------
    def _plan_scan(self, ctx: TaskContext) -> None:
        while self._to_plan:
            req, make = self._to_plan.popleft()
            try:
                result: JointPath | Exception = make()
            except (MotionError, PathError, ValueError) as exc:
                result = exc
            self._planned.append((ctx.effective_tick, req, result))

    def _plan_then_play(self, ctx: TaskContext, req: Request,
                        make: Callable[[], JointPath]) -> None:
        """Queue a path for the planner; the controller starts it when it is handed over
        (if the arm is still where the plan began)."""
        self._to_plan.append((req, make))
        req.status = "planning"
        self._planning = self.q_cmd.copy()

    def _take_planned(self, ctx: TaskContext) -> None:
        while self._planned and self._planned[0][0] <= ctx.tick:
            _, req, result = self._planned.popleft()
            start = self._planning
            self._planning = None
            if isinstance(result, Exception):
                req.reject(str(result))
            elif self.state != State.IDLE or start is None or \
                    np.max(np.abs(self.q_cmd - start)) > 1e-9:
                req.reject("the arm moved or left idle while the path was planned")
            else:
                req.status = "accepted"
                start = result.start if result.start is not None else self.q_cmd
                if np.max(np.abs(start - self.q_cmd)) > 1e-6:     # approach the start first
                    self._target = self.arm.clip(start)
                    ctx.command(self.traj_index, TRAJ_TARGET, tuple(self._target))
                    self._moved_tick = ctx.tick
                    self._pending_path = result
                    self._enter(ctx, State.MOVING)
                else:
                    self._play(ctx, result)
            self._publish_request(ctx, req)

    def _publish_request(self, ctx: TaskContext, req: Request) -> None:
        """`motion/requests` at every status change; once the status is final, the
        verdict on `reply/<name>` for a bus request (docs/motion-controller.md)."""
        ctx.publish("motion/requests", {"id": req.id, "name": req.name, "status": req.status,
                                        "reason": req.reason})
        if not req.final:
            return
        self.verdicts[req.status] += 1
        if req.status == "rejected":
            log.warning("motion request %s rejected: %s", req.name, req.reason)
        if req.reply:
            done = req.status == "accepted"
            verdict = {"id": req.id, "command": req.name, "ok": done,
                       "status": "done" if done else "refused", "final": True}
            if not done:
                verdict["error"] = req.reason
            ctx.publish(f"reply/{req.name}", verdict)

    # -- the scan: once per release ----------------------------------------------------
    def _scan(self, ctx: TaskContext) -> None:
        rec = ctx.state
        n = self.arm.n
        self.q, self.qd = rec["q"][:n].copy(), rec["qd"][:n].copy()
        self.q_cmd, self.qd_cmd = rec["q_cmd"][:n].copy(), rec["qd_cmd"][:n].copy()
        self._observe(ctx, rec)
        self._take_planned(ctx)
        while self.requests and not self._drive_enabling(ctx, rec):
            req = self.requests.popleft()
            req.tick = ctx.tick
            self._current = req
            if req.status == "pending":             # a malformed bus command is not
                try:
                    MOTION_REQUESTS[req.name].handler(self, ctx, **req.args)
                    if req.status == "pending":
                        req.status = "accepted"
                except (MotionError, PathError, TypeError, ValueError) as exc:
                    req.reject(str(exc))
            self.history.append(req)
            self._publish_request(ctx, req)
        # `tick`: the release whose state record this state was decided on
        ctx.publish("motion/state", {"state": self.state.value, "mode": self.mode,
                                     "fault": self.fault, "tick": ctx.tick})

    def _drive_enabling(self, ctx: TaskContext, rec) -> bool:
        """Whether an enable is still under way: requests behind it wait until every axis'
        statusword shows operation enabled (CiA 402), at most ENABLE_TIMEOUT_S; then a
        category 1 stop latches (fault DRIVE_FAULT_ENABLE_TIMEOUT)."""
        if self._enabling_tick is None:
            return False
        if self.state not in (State.IDLE, State.MOVING):
            self._enabling_tick, self._enable_timed_out = None, False
            return False
        n = self.arm.n
        if int(rec["tick"]) >= self._enabling_tick and all(
                state_of(sw) == DriveState.OPERATION_ENABLED for sw in rec["statusword"][:n]):
            self._enabling_tick = None
            return False
        if not self._enable_timed_out and \
                ctx.tick - self._enabling_tick > ENABLE_TIMEOUT_S / self.period_s:
            log.warning("motion: the drive did not reach operation enabled (statusword %s)",
                        [hex(int(sw)) for sw in rec["statusword"][:n]])
            ctx.command(TARGET_CYCLE, CYCLE_CMD_STOP, (1, FAULT_DRIVE_ENABLE_TIMEOUT))
            self._enable_timed_out = True      # the requests wait for the stop to show
        return True

    def _observe(self, ctx: TaskContext, rec) -> None:
        """Follow what the native side did since the last release."""
        stop = int(rec["stop_category"])
        if self._resetting is not None and ctx.tick >= self._resetting.effective_tick + \
                self._drive_faulted():       # a drive's own verdict shows one tick later
            self._judge_reset(ctx, rec)
        # A stop latched while disabled faults too: it is shown, reset clears it, and
        # enable is refused until then.
        if stop != NO_STOP and self.state != State.FAULTED:
            self.fault = self._latched(ctx, rec)
            log.warning("motion: stop category %d latched (fault %s)",
                        self.fault["category"], fault_label(self.fault["code"]))
            self._enter(ctx, State.FAULTED)
            self._pending_path = None
            self.recording = None if self.state == State.TEACH else self.recording
            return
        if stop == NO_STOP and self.state == State.FAULTED and self._resetting is None:
            self.fault = None
            self._enter(ctx, State.DISABLED)
        if self.state == State.MOVING and self._path_end_tick is not None:
            if ctx.tick >= self._path_end_tick:
                self._hand_over(ctx)
                if self._pending_path is not None:
                    self._play(ctx, self._pending_path)
                    self._pending_path = None
        elif self.state == State.MOVING and self._deadman_tick is not None:
            if ctx.tick >= self._deadman_tick:
                ctx.command(self.traj_index, TRAJ_STOP)
                self._deadman_tick = None
                self._enter(ctx, State.STOPPING)
        elif self.state in (State.MOVING, State.STOPPING) and self._settled() and \
                ctx.tick > self._moved_tick + 1:
            if self._pending_path is not None and self.state == State.MOVING:
                self._play(ctx, self._pending_path)
                self._pending_path = None
            else:
                self.moves_done += self.state == State.MOVING
                self._enter(ctx, State.IDLE)
        if self.state == State.TEACH and self.recording is not None and \
                ctx.tick % self._record_every == 0:
            self.recording.waypoints.append(self.q.copy())
        if self.mode == "force" and self.state in (State.IDLE, State.MOVING):
            self._admittance(ctx)

    def _settled(self) -> bool:
        """The move has ended: commanded and measured joint velocities at rest and a
        joint move's commanded position on its target. Velocities alone do not say it:
        a slow move's first ticks (speed_scale 0.1: jerk 1/1000 of the limit) command
        velocities below any threshold."""
        if np.any(np.abs(self.qd_cmd) >= STANDSTILL_RAD_S) or \
                np.any(np.abs(self.qd) >= SETTLED_RAD_S):
            return False
        return self._target is None or \
            float(np.max(np.abs(self.q_cmd - self._target))) <= TARGET_REACHED_RAD

    def _latched(self, ctx: TaskContext, rec) -> dict[str, Any]:
        """The latched stop as it began: its first fault code, the category that fault
        requested and the tick. A category 1 stop becomes 0 (power off) once the arm
        stands still, in the very tick it latches if the arm was still: the safety
        layer's fault history keeps the category asked for, else the first record of
        the latch since the last release says it."""
        recs = ctx.recent_states(self.task.period_ticks)
        first = rec
        for r in recs[::-1]:
            if int(r["stop_category"]) == NO_STOP:
                break
            first = r
        code, tick, category = int(rec["fault_code"]), int(first["tick"]), \
            int(first["stop_category"])
        drive_error = next((int(e) for e in first["drive_error"][:self.arm.n] if e), 0)
        safety = self.safety
        if safety is not None:
            category = next((f.category for f in safety.faults(rec=rec)
                             if f.code == code and f.tick == tick), category)
        if code == FAULT_DRIVE_STATE:          # the drive's own error code (0x603F)
            return {"code": code, "category": category, "tick": tick,
                    "drive_error": drive_error}
        return {"code": code, "category": category, "tick": tick}

    def _judge_reset(self, ctx: TaskContext, rec) -> None:
        """The verdict on a reset, from the record of the tick it took effect: the cycle
        refuses it while the e-stop is pressed, the safety layer while the arm brakes."""
        req, self._resetting = self._resetting, None
        recs = ctx.recent_states(ctx.tick - req.effective_tick + 1)
        at = recs[0] if len(recs) and int(recs[0]["tick"]) == req.effective_tick else rec
        after = recs[1] if len(recs) > 1 else at
        if self._drive_faulted() and int(after["fault_code"]) == FAULT_DRIVE_STATE:
            error = next((int(e) for e in after["drive_error"][:self.arm.n] if e), 0)
            req.reject(f"the drive is still in fault (error code 0x{error:04X}): its cause "
                       "remains")
        elif int(at["stop_category"]) == NO_STOP:
            req.status = "accepted"
        elif int(at["inputs"]) & EDGE_IN_ESTOP:
            req.reject("the cycle refused the reset: the e-stop is pressed")
        else:
            req.reject(f"the stop is still latched (fault {fault_label(int(at['fault_code']))}): "
                       "its cause remains or the arm was still braking")
        self._publish_request(ctx, req)

    def _drive_faulted(self) -> bool:
        """The latched stop is a drive's fault: its fault reset is judged from the record
        after the reset's tick, when the drive has answered the rising edge."""
        return self.fault is not None and self.fault["code"] == FAULT_DRIVE_STATE

    def _enter(self, ctx: TaskContext, state: State) -> None:
        if state != self.state:
            ctx.publish("motion/events", {"from": self.state.value, "to": state.value,
                                          "tick": ctx.tick})
            self.state = state
        if state in (State.IDLE, State.FAULTED, State.DISABLED):
            self._path_end_tick = None
            self._deadman_tick = None
        if state != State.MOVING:          # a stop brakes wherever the arm is
            self._target = None

    # -- helpers -----------------------------------------------------------------------
    def _require(self, *states: State) -> None:
        if self._planning is not None:
            raise MotionError("a path is being planned: wait for it or stop")
        if self.state not in states:
            raise MotionError(f"not possible while {self.state.value} "
                              f"(needs {' or '.join(s.value for s in states)})")

    def _check_joints(self, q: Sequence[float]) -> np.ndarray:
        q = np.asarray(q, float)
        if q.shape != (self.arm.n,) or not np.all(np.isfinite(q)):
            raise MotionError(f"expected {self.arm.n} finite joint positions")
        if not self.arm.within_limits(q):
            raise MotionError("target outside the joint limits")
        return q

    def _target_pose(self, xyz, rpy) -> np.ndarray:
        from edge.motion.kinematics import pose

        T = self.arm.fk(self.q_cmd)
        if rpy is None:
            T = T.copy()
            T[:3, 3] = np.asarray(xyz, float)
            return T
        return pose(xyz, rpy)

    def _play(self, ctx: TaskContext, path: JointPath) -> None:
        """Load the idle buffer and start it at the effective tick."""
        buffer = self._next_buffer
        load_path(self.blocks.path, buffer, path)
        self._next_buffer = 1 - buffer
        ctx.command(self.path_index, PATH_START, (buffer,))
        self._target = None
        self._path_end_tick = ctx.effective_tick + len(path.q)
        self._moved_tick = ctx.tick
        self._enter(ctx, State.MOVING)

    def _hand_over(self, ctx: TaskContext) -> None:
        """The path ended or is cut short: the trajectory block takes over from the path's
        commanded state (braking if it still moves) and the path player lets go."""
        ctx.command(self.traj_index, TRAJ_ADOPT, (0,))
        ctx.command(self.path_index, PATH_RELEASE)
        self._path_end_tick = None
        self._target = None
        self._moved_tick = ctx.tick

    def _admittance(self, ctx: TaskContext) -> None:
        safety = self.safety
        if safety is None or safety.observer is None:
            return
        residual = safety.residual(ctx.state)     # as of this release's tick (LET)
        J = self.native_arm.jacobian(self.q)
        wrench = np.linalg.pinv(J.T, rcond=1e-3) @ residual
        if np.linalg.norm(wrench[:3]) > self.force.force_limit_n:
            ctx.command(TARGET_CYCLE, CYCLE_CMD_STOP, (2, FAULT_FORCE_LIMIT))
            return
        f = wrench - np.asarray(self.force.target_wrench)
        f[np.abs(f) < self.force.deadband_n] = 0.0
        twist = np.concatenate([f[:3] / self.force.damping_n_s_m,
                                f[3:] / self.force.damping_nm_s_rad])
        qd = np.linalg.pinv(J, rcond=1e-3) @ twist
        qd = np.clip(qd, -self.limits.velocity * 0.5, self.limits.velocity * 0.5)
        horizon = self.task.period_ticks * self.period_s * 4
        target = self.arm.clip(self.q_cmd + qd * horizon)
        ctx.command(self.traj_index, TRAJ_TARGET_VEL, (*target, *np.zeros(self.arm.n)))
        self._target = target
        self._moved_tick = ctx.tick
        if np.any(qd != 0):
            self._enter(ctx, State.MOVING)

    def status(self) -> dict[str, Any]:
        return {"state": self.state.value, "mode": self.mode, "fault": self.fault,
                "moves_done": self.moves_done, "requests": dict(self.verdicts),
                "tool_xyz_m": [round(float(x), 6) for x in self.arm.fk(self.q_cmd)[:3, 3]]
                if hasattr(self, "q_cmd") else None}

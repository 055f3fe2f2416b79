"""The native safety and observer blocks (native/safety.h, native/observer.h) owned from
Python: built from a SafetyConfig, added to the cycle after the motion blocks, their
status and fault history read back, and the runtime wiring (checksum report, fault
publishing)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import ConfigError, NativeError
from edge.motion.arm_model import native_model
from edge.motion.kinematics import SerialArm
from edge.motion.safety import (
    CONFIG_TOPIC,
    FAULT_TOPIC,
    SAFETY_CMD_ENABLE,
    STOP_PROFILES,
    WALL_KINDS,
    FaultRecord,
    ObserverConfig,
    SafetyConfig,
    SafetyConfigLocked,
    parse_safety,
)
from edge.rt.contract import fault_message, fault_name
from edge.rt.native import NO_STOP, Block, require_native
from edge.sections import Section

if TYPE_CHECKING:
    from edge.rt.runtime import Runtime

log = logging.getLogger(__name__)


def native_config(cfg: SafetyConfig):
    """A `safety_config *` (cffi) for cfg, checksum included."""
    ffi, _ = require_native()
    c = ffi.new("safety_config *")
    c.n = cfg.n
    big = 1e300
    for i in range(cfg.n):
        c.q_min[i] = max(cfg.q_min[i], -big)
        c.q_max[i] = min(cfg.q_max[i], big)
        c.v_max[i], c.a_max[i] = cfg.v_max[i], cfg.a_max[i]
        c.a_stop[i], c.j_stop[i], c.tau_max[i] = cfg.a_stop[i], cfg.j_stop[i], cfg.tau_max[i]
    for name in ("tcp_speed_max", "tcp_speed_reduced", "reduced_transition_s",
                 "position_tolerance", "velocity_tolerance", "acceleration_tolerance",
                 "tcp_speed_tolerance", "following_error_max", "wall_margin",
                 "fault_category", "following_category"):
        setattr(c, name, getattr(cfg, name))
    c.stop_profile = STOP_PROFILES[cfg.stop_profile]
    c.n_walls = len(cfg.walls)
    for k, w in enumerate(cfg.walls):
        cw = c.walls[k]
        cw.kind = WALL_KINDS[w.kind]
        cw.offset = w.offset
        for j in range(3):
            cw.normal[j], cw.lo[j], cw.hi[j] = w.normal[j], w.lo[j], w.hi[j]
    c.n_spheres = len(cfg.spheres)
    for k, s in enumerate(cfg.spheres):
        c.spheres[k].frame = s.frame
        c.spheres[k].radius = s.radius
        for j in range(3):
            c.spheres[k].center[j] = s.center[j]
    for j, b in enumerate(bytes.fromhex(cfg.checksum)):
        c.checksum[j] = b
    return c


def safety_block(arm: SerialArm, cfg: SafetyConfig) -> Block:
    """The native safety monitor for arm under cfg; NativeError if C refuses it."""
    ffi, lib = require_native()
    model, c = native_model(arm), native_config(cfg)
    problem = lib.safety_config_check(model, c)
    if problem:
        raise NativeError(f"the native safety block refused its configuration ({problem})")
    return Block("safety", lib.safety_block_alloc(model, c))


def native_observer_config(arm: SerialArm, cfg: ObserverConfig):
    """cfg as the C struct observer_config."""
    ffi, _ = require_native()
    c = ffi.new("observer_config *")
    c.n = arm.n
    for i in range(arm.n):
        c.gain[i], c.viscous[i], c.coulomb[i] = cfg.gain[i], cfg.viscous[i], cfg.coulomb[i]
        c.contact_threshold[i] = cfg.contact_threshold[i]
        c.collision_threshold[i] = cfg.collision_threshold[i]
    c.coulomb_velocity = cfg.coulomb_velocity
    c.category = cfg.category
    return c


def observer_block(arm: SerialArm, cfg: ObserverConfig) -> Block:
    """The momentum observer for arm; NativeError if C refuses the configuration."""
    _, lib = require_native()
    return Block("observer", lib.observer_block_alloc(native_model(arm),
                                                       native_observer_config(arm, cfg)))


class SafetyMonitor:
    """The safety (and observer) blocks of one arm, owned from Python."""

    def __init__(self, arm: SerialArm, cfg: SafetyConfig) -> None:
        self.ffi, self.lib = require_native()
        self.arm = arm
        self.config = cfg
        self.observer = observer_block(arm, cfg.observer) if cfg.observer else None
        self.block = safety_block(arm, cfg)
        if self.observer is not None:     # a reconfiguration applies to both at once
            self.lib.safety_link_observer(self.block.handle, self.observer.handle)
        self.enabled = True
        self._seen_faults = 0
        self.fault_count_slot: int | None = None     # signals slot of n_faults
        self.residual_slots: range | None = None     # signals slots of the residual

    def assign_signals(self, assign) -> None:
        """Have the blocks write, every tick, the state-record signals the tasks read
        (LET: from the record of their release tick): the fault count and the
        observer's residual. `assign(name, count)` reserves slots (Cycle.assign_signals)."""
        self.fault_count_slot = assign("safety.n_faults", 1).start
        if self.lib.safety_set_signals(self.block.handle, self.fault_count_slot):
            raise NativeError("the safety block refused its signal slot")
        if self.observer is not None:
            self.residual_slots = assign("observer.residual", self.arm.n)
            if self.lib.observer_set_signals(self.observer.handle, self.residual_slots.start):
                raise NativeError("the observer refused its signal slots")

    def residual(self, rec) -> np.ndarray:
        """The observer's residual (N·m, estimated external joint torque) in the state
        record `rec`, as the observer computed it in that tick."""
        if self.residual_slots is None:
            raise NativeError("the observer writes no signals (assign_signals)")
        return rec["signals"][self.residual_slots.start:self.residual_slots.stop].copy()

    def fault_count(self, rec) -> int:
        """How many faults had been recorded by the end of the tick of state record rec."""
        if self.fault_count_slot is None:
            raise NativeError("the safety block writes no signals (assign_signals)")
        return int(rec["signals"][self.fault_count_slot])

    def add_to(self, add_block) -> int:
        """Add observer then safety to a cycle (`add_block` returns an index); call after
        the trajectory/setpoint blocks. Returns the safety block's command index."""
        if self.observer is not None:
            add_block(self.observer)
        return add_block(self.block)

    @property
    def index(self) -> int:
        if self.block.index is None:
            raise NativeError("the safety block is not in a cycle yet")
        return self.block.index

    def status(self) -> dict[str, Any]:
        st = self.ffi.new("safety_status *")
        self.lib.safety_get_status(self.block.handle, st)
        out = {f: getattr(st, f) for f in (
            "tick", "fault_code", "fault_tick", "stop_category", "enabled", "reduced",
            "stopping", "standstill", "limiting", "speed_scale", "tcp_speed_cmd",
            "tcp_speed", "min_wall_distance", "min_wall_distance_cmd", "n_faults",
            "resets_refused")}
        out["checksum"] = bytes(st.checksum).hex()
        return out

    def observer_status(self) -> dict[str, Any]:
        if self.observer is None:
            raise NativeError("this safety configuration has no observer")
        st = self.ffi.new("observer_status *")
        self.lib.observer_get_status(self.observer.handle, st)
        out = {f: getattr(st, f) for f in ("tick", "active", "contact", "collision",
                                            "collision_axis", "contact_tick",
                                            "collision_tick", "peak_ratio")}
        out["residual"] = np.array([st.residual[i] for i in range(self.arm.n)])
        return out

    def faults(self, max_records: int = 64, rec=None) -> list[FaultRecord]:
        """The fault history, oldest first (at most the 64 most recent); with a state
        record `rec`, as it stood at the end of that record's tick."""
        buf = self.ffi.new("safety_fault[]", max_records)
        if rec is None:
            count = self.lib.safety_fault_history(self.block.handle, buf, max_records)
        else:
            count = self.lib.safety_fault_history_until(self.block.handle,
                                                        self.fault_count(rec), buf, max_records)
        return [FaultRecord(int(f.code), fault_name(f.code),
                            fault_message(f.code), int(f.tick), int(f.category), int(f.axis),
                            float(f.value)) for f in buf[0:count]]

    def new_faults(self, rec=None) -> list[FaultRecord]:
        """Faults recorded since the last call (never more than the ring holds): up to
        now, or with a state record `rec`, up to the end of its tick (what a task
        released at that tick may see)."""
        total = self.status()["n_faults"] if rec is None else self.fault_count(rec)
        fresh = total - self._seen_faults
        self._seen_faults = max(self._seen_faults, total)
        if fresh <= 0:
            return []
        got = self.faults(rec=rec)[-fresh:]
        if len(got) < fresh:        # the 64-record ring wrapped before they were read
            log.warning("%d fault records were overwritten before they were published",
                        fresh - len(got))
        return got

    def sphere_distances(self, q) -> np.ndarray:
        """Distance (m) of each sphere's surface to its nearest wall at q (not while the
        cycle thread runs)."""
        out = np.empty(len(self.config.spheres))
        qa = np.ascontiguousarray(q, dtype=float)
        self.lib.safety_sphere_distances(self.block.handle, self.ffi.from_buffer("double[]", qa),
                                         self.ffi.from_buffer("double[]", out))
        return out

    def reconfigure(self, cfg: SafetyConfig) -> None:
        """Queue a new configuration; the native block applies it at the next tick
        boundary if it is still disabled then (see config_state()). Raises
        SafetyConfigLocked while the arm is enabled, ConfigError if C refuses cfg."""
        if self.enabled:
            raise SafetyConfigLocked("the safety configuration cannot change while the arm "
                                     "is enabled; disable it first")
        observer = None
        if cfg.observer != self.config.observer:
            if (cfg.observer is None) != (self.observer is None):
                # the cycle's blocks are fixed once it is built
                raise ConfigError("adding or removing the collision observer changes the "
                                  "cycle's blocks: restart the runtime with the new board")
            observer = native_observer_config(self.arm, cfg.observer)
            if not self.lib.observer_config_valid(native_model(self.arm), observer):
                raise ConfigError("the native observer refused the configuration")
        rc = self.lib.safety_set_config(self.block.handle, native_config(cfg))
        if rc == -1:
            raise SafetyConfigLocked("the native safety block is enabled; configuration "
                                     "refused")
        if rc == -3:
            raise SafetyConfigLocked("a configuration change is already queued")
        if rc:
            raise ConfigError(f"the native safety block refused the configuration ({rc})")
        # the safety block applies (or refuses) both at one tick boundary
        if observer is not None and self.lib.observer_set_config(self.observer.handle,
                                                                 observer):
            raise SafetyConfigLocked("an observer configuration change is already queued")
        self.config = cfg
        log.info("safety configuration queued, checksum %s", cfg.checksum)

    def config_state(self) -> str:
        """What became of the last queued configuration: none, queued, applied, refused."""
        return {0: "none", 1: "queued", 2: "applied", -1: "refused"}[
            self.lib.safety_config_state(self.block.handle)]

    def set_enabled(self, enabled: bool, push_command) -> None:
        """Record the intent and send SAFETY_CMD_ENABLE through `push_command(target,
        kind, args)` (the block refuses to disable while moving)."""
        push_command(self.index, SAFETY_CMD_ENABLE, (1.0 if enabled else 0.0,))
        self.enabled = enabled


def attach(runtime: Runtime, cfg: SafetyConfig) -> SafetyMonitor:
    """Add the observer and safety blocks to the `safety` stage (after the motion and the
    integrators' blocks), offer the monitor as `safety`, report and publish the checksum,
    and publish new faults every 10 ms."""
    from edge.rt.executor import LetTask

    monitor = SafetyMonitor(runtime.board.sections["motion"].arm, cfg)   # Section.needs
    monitor.add_to(lambda block: runtime.add_block(block, "safety"))
    monitor.assign_signals(runtime.cycle.assign_signals)
    log.info("safety configuration checksum %s", cfg.checksum)
    runtime.bus.publish(CONFIG_TOPIC, {"checksum": cfg.checksum, "walls": len(cfg.walls),
                                       "spheres": len(cfg.spheres)})
    period = max(1, int(round(10e6 / runtime.period_ns)))

    def publish(ctx) -> None:
        for f in monitor.new_faults(ctx.state):
            ctx.publish(FAULT_TOPIC, f.to_bus())

    runtime.add_task(LetTask("safety_faults", publish, period_ticks=period))
    runtime.add_component("safety", monitor)
    runtime.add_topics(CONFIG_TOPIC, FAULT_TOPIC)

    def summary() -> dict[str, Any]:
        st = monitor.status()
        return {"checksum": cfg.checksum, "fault_code": st["fault_code"],
                "stop_category": None if st["stop_category"] == NO_STOP else
                st["stop_category"], "faults": [f.name for f in monitor.faults()]}

    runtime.add_summary("safety", summary)
    return monitor


SECTIONS = (Section("safety", parse_safety, attach, needs=("motion",),
                    core_options=lambda cfg: {"estop_category": cfg.estop_category}),)

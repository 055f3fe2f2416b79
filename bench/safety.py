"""Safety figures for `edge bench motion`: collision detection latency (ticks from an
injected external torque above the collision threshold to the latched stop) and the
minimum wall distance kept over a randomized campaign of targets beyond a wall, both on
the simulated arm in virtual time, through the closed loop of hil.arm_rig.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edge.motion.arm_sim import arm_sim_block
from edge.motion.safety import SafetyConfig, SafetyWall
from edge.rt.contract import FaultCode
from edge.rt.native import NO_STOP, Cycle, setpoint_block
from hil.arm_rig import SafetyRig


@dataclass
class SafetyBenchReport:
    collision_cases: int
    detection_latency_ticks_p50: float
    detection_latency_ticks_max: int
    observer_detections: int            # stops latched by the observer (code 300)
    observer_latency_ticks_max: int
    missed_collisions: int
    wall_cases: int
    min_wall_distance_m: float          # measured, over every tick of every case
    min_wall_distance_cmd_m: float      # commanded
    wall_margin_m: float
    wall_faults: int
    tick_us: dict                       # loop tick time with and without safety blocks

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def with_wall(cfg: SafetyConfig, wall: SafetyWall) -> SafetyConfig:
    return dataclasses.replace(cfg, walls=[*cfg.walls, wall])


def floor_wall_under(rig: SafetyRig, normal: np.ndarray, clearance: float) -> SafetyWall:
    """A plane with the given normal placed `clearance` m from the rig's arm at q0."""
    probe = SafetyRig(rig.board, dataclasses.replace(
        rig.cfg, walls=[SafetyWall("probe", "plane", tuple(normal), 0.0)]), q0=rig.q0)
    d0 = probe.monitor.sphere_distances(rig.q0).min()
    return SafetyWall("campaign", "plane", tuple(float(x) for x in normal), d0 - clearance)


def collision_campaign(n_cases: int, seed: int, ticks_before: int = 300,
                       factor: tuple[float, float] = (1.2, 3.0)
                       ) -> list[tuple[int, int] | None]:
    """External torques `factor` x the collision threshold, injected on a random joint
    while the arm moves to a random target: (ticks from injection to the latched stop,
    fault code that latched it) per case, None if nothing stopped the arm in 200 ticks.
    A light wrist may hit its velocity limit (code 2) before the observer's residual
    crosses the threshold; either way the arm is stopped."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int] | None] = []
    for _ in range(n_cases):
        rig = SafetyRig()
        thr = np.array(rig.cfg.observer.collision_threshold)
        rig.move(rig.q0 + rng.uniform(-0.8, 0.8, rig.arm.n))
        rig.run(int(rng.integers(50, ticks_before)))
        joint = int(rng.integers(0, rig.arm.n))
        tau = np.zeros(rig.arm.n)
        tau[joint] = rng.choice([-1, 1]) * rng.uniform(*factor) * thr[joint]
        rig.inject(tau)
        injected_at = rig.cycle.tick
        states = rig.run(200)
        hit = np.nonzero(states["stop_category"] != NO_STOP)[0]
        out.append((int(states["tick"][hit[0]] - injected_at), int(states["fault_code"][hit[0]]))
                   if hit.size else None)
    return out


def wall_campaign(n_cases: int, seed: int, ticks: int = 2500) -> tuple[float, float, int, float]:
    """Random plane walls near the arm and random targets (many beyond the wall): the
    minimum measured and commanded sphere distance over every tick, and wall faults."""
    rng = np.random.default_rng(seed)
    base = SafetyRig()
    worst, worst_cmd, faults = np.inf, np.inf, 0
    for _ in range(n_cases):
        normal = rng.normal(size=3)
        normal /= np.linalg.norm(normal)
        wall = floor_wall_under(base, normal, float(rng.uniform(0.02, 0.15)))
        cfg = dataclasses.replace(base.cfg, walls=[wall], observer=None)
        rig = SafetyRig(base.board, cfg)
        for _ in range(2):
            rig.move(rig.q0 + rng.uniform(-1.5, 1.5, rig.arm.n))
            states = rig.run(ticks // 2)
            n = rig.arm.n
            worst = min(worst, rig.sphere_distance(states["q"][::2, :n]).min())
            worst_cmd = min(worst_cmd, rig.sphere_distance(states["q_cmd"][::2, :n]).min())
            faults += int(np.any(states["fault_code"] == FaultCode.SAFETY_WALL))
            if np.any(states["stop_category"] != NO_STOP):
                break
    return float(worst), float(worst_cmd), faults, base.cfg.wall_margin


def tick_cost_us(ticks: int = 5000, seed: int = 3) -> dict[str, float]:
    """Tick execution time (p50/p99, µs) of the loop with and without the observer and
    safety blocks (walls on), moving between random targets in virtual time."""
    rng = np.random.default_rng(seed)
    targets = [rng.uniform(-1, 1, 6) for _ in range(ticks // 1000 + 1)]
    out = {}
    for label, with_safety in (("without", False), ("with", True)):
        rig = SafetyRig()
        if not with_safety:
            rig = _plain_loop(rig)
        for k in range(0, ticks, 1000):
            rig.move(rig.q0 + targets[k // 1000])
            rig.run(1000)
        out[f"{label}_p50_us"] = rig.cycle.exec_us(0.5)
        out[f"{label}_p99_us"] = rig.cycle.exec_us(0.99)
    return out


def _plain_loop(rig: SafetyRig) -> SafetyRig:
    """The same drive and setpoint without the safety blocks (the cost reference)."""
    plain = SafetyRig.__new__(SafetyRig)
    plain.__dict__.update(rig.__dict__)
    motion = rig.board.sections["motion"]
    d = motion.drive
    plain.cycle = Cycle(1_000_000, rig.arm.n)
    plain.drive = plain.cycle.add_block(arm_sim_block(
        rig.arm, rig.q0, viscous=d.viscous, coulomb=d.coulomb, torque_limit=d.torque_limit,
        substeps=d.substeps))
    plain.setpoint = plain.cycle.add_block(setpoint_block(
        [a.max_velocity for a in rig.board.axes], [a.max_acceleration for a in rig.board.axes]))
    return plain


def run_safety_bench(collision_cases: int = 50, wall_cases: int = 30, seed: int = 1
                     ) -> SafetyBenchReport:
    """The safety figures of `edge bench motion` (virtual time, deterministic per seed)."""
    cases = collision_campaign(collision_cases, seed)
    hits = [c[0] for c in cases if c is not None]
    by_observer = [c[0] for c in cases if c is not None and c[1] == 300]
    worst, worst_cmd, faults, margin = wall_campaign(wall_cases, seed + 1)
    return SafetyBenchReport(
        collision_cases=collision_cases,
        detection_latency_ticks_p50=float(np.median(hits)) if hits else float("nan"),
        detection_latency_ticks_max=max(hits) if hits else -1,
        observer_detections=len(by_observer),
        observer_latency_ticks_max=max(by_observer) if by_observer else -1,
        missed_collisions=len(cases) - len(hits),
        wall_cases=wall_cases, min_wall_distance_m=worst, min_wall_distance_cmd_m=worst_cmd,
        wall_margin_m=margin, wall_faults=faults, tick_us=tick_cost_us())


def report_lines(r: SafetyBenchReport) -> list[str]:
    """The safety rows of the `edge bench motion` table (ours, and what stands beside)."""
    t = r.tick_us
    return [
        f"collision detection: {r.collision_cases} injected contacts 1.2-3x threshold, "
        f"latency p50 {r.detection_latency_ticks_p50:g} ticks, max "
        f"{r.detection_latency_ticks_max} ticks, missed {r.missed_collisions} "
        f"(observer {r.observer_detections}, max {r.observer_latency_ticks_max} ticks; "
        "anchor UR e-Series/libfranka: not measurable without the hardware)",
        f"safety walls: {r.wall_cases} random walls, min distance measured "
        f"{r.min_wall_distance_m * 1e3:.2f} mm, commanded {r.min_wall_distance_cmd_m * 1e3:.2f}"
        f" mm (margin {r.wall_margin_m * 1e3:g} mm), wall faults {r.wall_faults}",
        f"tick time without/with safety blocks: p50 {t['without_p50_us']:.1f}/"
        f"{t['with_p50_us']:.1f} us, p99 {t['without_p99_us']:.1f}/{t['with_p99_us']:.1f} us",
    ]

"""`edge bench motion`: our trajectories beside Ruckig's, in one run.

Three figures: (1) duration ratio ours / Ruckig over random multi-axis cases from arbitrary
states (max ratio, cases slower than 1 + 1e-6, limit violations beyond 1e-9 on a dense
grid, end-state errors); (2) planning time per plan, p50/p99, our native planner (cffi
call, and the Python `plan()` API) against Ruckig's Python binding `calculate`; (3) the
per-tick cost of the traj block in the native cycle (execution time with and without it,
and on ticks that replan).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError
from edge.rt.native import Cycle, drive_sim_block, require_native

DURATION_TOL = 1e-6
LIMIT_TOL = 1e-9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=int, default=2000, help="random cases (2000)")
    parser.add_argument("--axes", type=int, default=6, help="axes per case (6)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--collisions", type=int, default=50,
                        help="injected contacts in the collision campaign (50)")
    parser.add_argument("--walls", type=int, default=30,
                        help="random walls in the wall campaign (30)")
    parser.add_argument("--grid", type=int, default=2000,
                        help="samples per case for the limit check (2000)")
    parser.add_argument("--ticks", type=int, default=200_000,
                        help="cycle ticks for the sampling cost (200000)")


def random_case(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A state inside the limits (acceleration toward the velocity limit included), a
    random target and, for about half the axes, a non-zero target velocity."""
    vmax, amax, jmax = rng.uniform(0.2, 3.0, n), rng.uniform(0.2, 5.0, n), rng.uniform(0.5, 20, n)
    v0 = rng.uniform(-1, 1, n) * vmax
    a0 = rng.uniform(-1, 1, n) * amax
    for _ in range(80):
        over = np.abs(v0 + a0 * np.abs(a0) / (2 * jmax)) > vmax
        if not over.any():
            break
        a0 = np.where(over, 0.8 * a0, a0)
    return dict(current_position=rng.uniform(-3, 3, n), target_position=rng.uniform(-3, 3, n),
                max_velocity=vmax, max_acceleration=amax, max_jerk=jmax, current_velocity=v0,
                current_acceleration=a0,
                target_velocity=rng.uniform(-1, 1, n) * vmax * rng.integers(0, 2, n))


def _ruckig_input(ruckig, case: dict[str, np.ndarray]):
    n = case["current_position"].size
    inp = ruckig.InputParameter(n)
    inp.current_position = case["current_position"].tolist()
    inp.current_velocity = case["current_velocity"].tolist()
    inp.current_acceleration = case["current_acceleration"].tolist()
    inp.target_position = case["target_position"].tolist()
    inp.target_velocity = case["target_velocity"].tolist()
    inp.target_acceleration = [0.0] * n
    inp.max_velocity = case["max_velocity"].tolist()
    inp.max_acceleration = case["max_acceleration"].tolist()
    inp.max_jerk = case["max_jerk"].tolist()
    return inp


def _quantiles_us(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1e3
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99)),
            "max_us": float(a.max())}


def measure_durations(cases, grid: int) -> dict[str, Any]:
    import ruckig

    from edge.motion.trajectory import plan

    ratios, violations, end_errors = [], 0, 0
    worst_violation = 0.0
    for case in cases:
        n = case["current_position"].size
        traj = ruckig.Trajectory(n)
        ruckig.Ruckig(n).calculate(_ruckig_input(ruckig, case), traj)
        ours = plan(**case)
        ratios.append(ours.duration / traj.duration if traj.duration > 0 else 1.0)
        _, v, a = ours.sample(np.linspace(0, ours.duration, grid))
        over = max(float((np.abs(v) - case["max_velocity"]).max()),
                   float((np.abs(a) - case["max_acceleration"]).max()))
        worst_violation = max(worst_violation, over)
        violations += over > LIMIT_TOL
        pe, ve, ae = ours.at_time(ours.duration)
        err = max(np.abs(pe - case["target_position"]).max(),
                  np.abs(ve - case["target_velocity"]).max(), np.abs(ae).max())
        end_errors += err > 1e-9
    r = np.array(ratios)
    return {"cases": len(cases), "ratio_max": float(r.max()), "ratio_min": float(r.min()),
            "ratio_mean": float(r.mean()), "slower_than_ruckig": int((r > 1 + DURATION_TOL).sum()),
            "limit_violations": int(violations), "worst_violation": worst_violation,
            "end_state_errors": int(end_errors)}


def measure_planning(cases) -> dict[str, Any]:
    import ruckig

    from edge.motion.trajectory import plan

    ffi, lib = require_native()
    n = cases[0]["current_position"].size
    handle = ffi.new("traj *")
    keys = ("current_position", "current_velocity", "current_acceleration", "target_position",
            "target_velocity", "max_velocity", "max_acceleration", "max_jerk")
    native_args = [[ffi.new("double[]", c[k].tolist()) for k in keys] for c in cases]
    inputs = [_ruckig_input(ruckig, c) for c in cases]
    otg, out = ruckig.Ruckig(n), ruckig.Trajectory(n)
    ours_native, ours_api, theirs = [], [], []
    clock = time.perf_counter_ns
    for _rep in range(2):              # the first pass warms caches; the second is measured
        ours_native.clear(), ours_api.clear(), theirs.clear()
        for args, case, inp in zip(native_args, cases, inputs, strict=True):
            t0 = clock()
            lib.traj_plan(handle, n, args[0], args[1], args[2], args[3], args[4], args[5],
                          args[6], args[7])
            t1 = clock()
            otg.calculate(inp, out)
            t2 = clock()
            plan(**case)
            t3 = clock()
            ours_native.append(t1 - t0), theirs.append(t2 - t1), ours_api.append(t3 - t2)
    return {"axes": n, "plans": len(cases), "ours_native": _quantiles_us(ours_native),
            "ours_python_api": _quantiles_us(ours_api), "ruckig_python": _quantiles_us(theirs)}


def measure_sampling(ticks: int) -> dict[str, Any]:
    from edge.motion.trajectory import TRAJ_CMD_TARGET, traj_block

    n, period_ns = 6, 1_000_000
    vmax, amax, jmax = [2.0] * n, [5.0] * n, [50.0] * n
    targets = [[50.0 * (-1) ** i] * n for i in range(1000)]

    def run(with_traj: bool, replan_every: int = 0) -> tuple[dict[str, float], np.ndarray]:
        c = Cycle(period_ns, n, state_capacity=1 << 12)
        tb = c.add_block(traj_block(vmax, amax, jmax)) if with_traj else None
        c.add_block(drive_sim_block([0.0] * n))
        if tb is not None:
            c.push_command(0, tb, TRAJ_CMD_TARGET, targets[0])   # a long move: always active
        exec_ns: list[np.ndarray] = []
        done, chunk, k = 0, 2000, 1
        while done < ticks:
            if replan_every and tb is not None:
                for t in range(done + replan_every, done + chunk, replan_every):
                    c.push_command(t, tb, TRAJ_CMD_TARGET, targets[k % len(targets)])
                    k += 1
            c.step(chunk)
            done += chunk
            exec_ns.append(c.pop_states()["exec_ns"].copy())
        return ({"p50_us": c.exec_us(0.5), "p99_us": c.exec_us(0.99)},
                np.concatenate(exec_ns))

    base, _ = run(False)
    sampled, _ = run(True)
    _, replan_ns = run(True, replan_every=100)
    replan_ticks = replan_ns[100::100][: ticks // 100 - 1]
    return {"ticks": ticks, "cycle_without_traj": base, "cycle_with_traj": sampled,
            "sampling_cost_p50_us": sampled["p50_us"] - base["p50_us"],
            "replan_tick": _quantiles_us(list(replan_ticks))}


def run(args: argparse.Namespace) -> BenchReport:
    if not 1 <= args.axes <= 16 or args.cases < 10:
        raise EdgeError("--axes must be 1..16 and --cases at least 10")
    try:
        import ruckig  # noqa: F401
    except ImportError:
        raise EdgeError("the motion benchmark needs its anchor ruckig: "
                        "pip install 'edge[bench]'") from None
    rng = np.random.default_rng(args.seed)
    cases = [random_case(rng, args.axes) for _ in range(args.cases)]
    dur = measure_durations(cases, args.grid)
    plan_t = measure_planning(cases)
    samp = measure_sampling(args.ticks)
    from dataclasses import asdict

    from bench.safety import report_lines, run_safety_bench

    safety = run_safety_bench(args.collisions, args.walls, args.seed)
    data = {"durations": dur, "planning": plan_t, "sampling": samp, "seed": args.seed,
            "safety": asdict(safety), "machine": machine_facts()}
    p = plan_t
    lines = [
        f"trajectories: {dur['cases']} random {args.axes}-axis cases from arbitrary states "
        f"(seed {args.seed}), anchor: ruckig (same cases, same run)",
        f"  duration ours/ruckig: max {dur['ratio_max']:.12f}  min {dur['ratio_min']:.12f}  "
        f"mean {dur['ratio_mean']:.12f}",
        f"  cases slower than ruckig*(1+1e-6): {dur['slower_than_ruckig']}   "
        f"limit violations > 1e-9 ({args.grid}-point grid): {dur['limit_violations']} "
        f"(worst {dur['worst_violation']:.2e})   end-state errors > 1e-9: "
        f"{dur['end_state_errors']}",
        f"planning time per {p['axes']}-axis plan{'':<14}{'p50 us':>10}{'p99 us':>10}"
        f"{'max us':>10}",
    ]
    for name, key in (("ours (native call)", "ours_native"),
                      ("ours (edge.motion.plan)", "ours_python_api"),
                      ("ruckig (python calculate)", "ruckig_python")):
        q = p[key]
        lines.append(f"  {name:<40}{q['p50_us']:>10.2f}{q['p99_us']:>10.2f}{q['max_us']:>10.2f}")
    ours, theirs = p["ours_native"], p["ruckig_python"]
    lines.append(f"  ratio native/ruckig: p50 {ours['p50_us'] / theirs['p50_us']:.2f}, "
                 f"p99 {ours['p99_us'] / theirs['p99_us']:.2f}")
    lines.append(f"cycle tick execution, {samp['ticks']} ticks, 6 axes (virtual time): "
                 f"without traj p50 {samp['cycle_without_traj']['p50_us']:.3f} us, with traj "
                 f"p50 {samp['cycle_with_traj']['p50_us']:.3f} us / p99 "
                 f"{samp['cycle_with_traj']['p99_us']:.3f} us; replanning tick p50 "
                 f"{samp['replan_tick']['p50_us']:.2f} us / p99 "
                 f"{samp['replan_tick']['p99_us']:.2f} us")
    lines += report_lines(safety)
    return BenchReport("\n".join(lines), data)

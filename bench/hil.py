"""`edge bench hil`: how fast HIL scenarios run in virtual time.

(a) the full sim_arm board (demo program, acquisition, logic) stepped by the scenario
runner with trace recording on, in simulated seconds per wall second, beside the anchor
measured in the same rounds: `Runtime(board, virtual_time=True).run_virtual(T)` of the
same board, nothing recorded; (b) campaign throughput, scenario runs per minute through
`edge hil run --jobs 1` and `--jobs 2`; (c) what recording costs per tick, us (runner
minus anchor, best CPU times: the machine's other load does not count). Rounds
interleave the contenders; figures are the best round's, medians beside them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

# Signals a bench records: the joints, the stop and fault, the tool position (forward
# kinematics per tick), the motion controller, a logic output and a task counter.
RECORDED = "".join(
    [f"  {field}{i}: {{state: {field}.{i}}}\n" for field, n in (("q", 6), ("qd", 3), ("tau", 3))
     for i in range(n)]) + """\
  latched: {stop: latched}
  category: {stop: category}
  code: {fault: code}
  drive_off: {input: drive_off}
  x: {tcp: x}
  y: {tcp: y}
  z: {tcp: z}
  moving: {motion: moving}
  done: {motion: moves_done}
  base_moving: {logic: base_moving}
  scans: {task: logic.releases}
"""
# ... and with the safety block's status, read after every tick
STATUS = """\
  scale: {safety: speed_scale}
  wall: {safety: min_wall_distance}
"""
VARIANTS = {"recording": RECORDED, "recording_status": RECORDED + STATUS}


def scenario_text(name: str, duration_s: float, signals: str, runs: int = 1) -> str:
    params = f"parameters: {{draw: {{integers: [0, 1000000], count: {runs}}}}}\n" \
        if runs > 1 else ""
    return (f"name: {name}\nboard: sim_arm\nduration: {duration_s:g} s\n{params}"
            f"signals:\n{signals}assert:\n  - always: z > 0.0\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="simulated seconds per speed round (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--runs", type=int, default=8,
                        help="runs of the campaign (default 8, each --campaign-seconds long)")
    parser.add_argument("--campaign-seconds", type=float, default=1.0,
                        help="simulated seconds per campaign run (default 1)")


def _speed_round(files: dict[str, Path], seconds: float, anchor_first: bool
                 ) -> dict[str, tuple[float, float]]:
    """One round: the anchor and each recording variant (the anchor first or last, by
    turns, so warm-up favours neither); (wall s, CPU s) of stepping each."""
    from edge.rt.runtime import Runtime
    from hil.runner import Bench
    from hil.scenario import load_scenario

    def timed(fn) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w0, time.process_time() - c0

    board = load_scenario(next(iter(files.values()))).run(0).board
    order = ["anchor", *files] if anchor_first else [*files, "anchor"]
    out: dict[str, tuple[float, float]] = {}
    for name in order:
        if name == "anchor":
            runtime = Runtime(board, virtual_time=True)
            out[name] = timed(lambda runtime=runtime: runtime.run_virtual(seconds))
        else:
            bench = Bench(load_scenario(files[name]).run(0))
            out[name] = timed(bench.go)
    return out


def _campaign(path: Path, jobs: int) -> float:
    """Wall seconds of `edge hil run FILE --jobs N` (start-up and checks included)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "hil", "run", str(path),
                           "--jobs", str(jobs)], capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EdgeError(f"edge hil run --jobs {jobs} failed: {tail[0]}")
    return took


def run(args: argparse.Namespace) -> BenchReport:
    if not 0.01 <= args.seconds <= 60 or not 0.01 <= args.campaign_seconds <= 60:
        raise EdgeError("--seconds and --campaign-seconds must be between 0.01 and 60")
    if args.rounds < 1 or not 1 <= args.runs <= 1000:
        raise EdgeError("--rounds must be >= 1 and --runs between 1 and 1000")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, signals in VARIANTS.items():
            files[name] = Path(tmp, f"{name}.yaml")
            files[name].write_text(scenario_text(name, args.seconds, signals))
        campaign = Path(tmp, "campaign.yaml")
        campaign.write_text(scenario_text("campaign", args.campaign_seconds, RECORDED,
                                          args.runs))
        rounds: list[dict[str, tuple[float, float]]] = []
        jobs: dict[int, list[float]] = {1: [], 2: []}
        for i in range(args.rounds):
            rounds.append(_speed_round(files, args.seconds, i % 2 == 0))
            if len(jobs[1]) < 3:             # campaigns are long: at most 3 rounds each
                for n in jobs:
                    jobs[n].append(_campaign(campaign, n))
    ticks = round(args.seconds * 1000)         # sim_arm: 1 ms a tick
    # best of the rounds, as timeit recommends (other processes only ever add time), and
    # the medians beside them; CPU time too: what other processes take does not count
    speed = {k: args.seconds / min(r[k][0] for r in rounds) for k in rounds[0]}
    median_speed = {k: args.seconds / statistics.median(r[k][0] for r in rounds)
                    for k in rounds[0]}
    cpu_speed = {k: args.seconds / min(r[k][1] for r in rounds) for k in rounds[0]}
    cost_us = {k: (min(r[k][1] for r in rounds) - min(r["anchor"][1] for r in rounds))
               / ticks * 1e6 for k in VARIANTS}
    per_min = {n: args.runs / statistics.median(t) * 60 for n, t in jobs.items()}
    data: dict[str, Any] = {
        "machine": machine_facts(), "seconds": args.seconds, "rounds": args.rounds,
        "ticks": ticks,
        "speed_x": speed, "median_speed_x": median_speed, "cpu_speed_x": cpu_speed,
        "recording_cost_us_per_tick": cost_us,
        "campaign": {"runs": args.runs, "run_seconds": args.campaign_seconds,
                     "wall_s": {str(n): t for n, t in jobs.items()},
                     "runs_per_minute": {str(n): v for n, v in per_min.items()},
                     "jobs2_vs_jobs1": per_min[2] / per_min[1]},
        "target": {"speed_x_recording_min": 50.0},
    }
    labels = {"anchor": "anchor run_virtual, nothing recorded",
              "recording": f"runner, {len(RECORDED.splitlines())} signals recorded",
              "recording_status": "runner, + safety status every tick"}
    lines = [f"virtual-time speed, full sim_arm board, {args.seconds:g} simulated s, "
             f"best of {args.rounds} interleaved rounds (simulated s per wall s; median; per "
             "CPU s)"]
    for key, label in labels.items():
        cost = "" if key == "anchor" else f"   recording {cost_us[key]:6.2f} us/tick"
        lines.append(f"  {label:<38} {speed[key]:6.1f}x  (median {median_speed[key]:5.1f}x, "
                     f"CPU {cpu_speed[key]:5.1f}x){cost}")
    lines += [f"campaign: {args.runs} runs of {args.campaign_seconds:g} s through edge hil run "
              "(start-up included)",
              f"  --jobs 1  {per_min[1]:7.1f} runs/min",
              f"  --jobs 2  {per_min[2]:7.1f} runs/min   ({per_min[2] / per_min[1]:.2f}x)"]
    return BenchReport("\n".join(lines), data)

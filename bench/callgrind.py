"""`edge bench callgrind`: instructions per call of the C hot paths, beside wall time.

On a shared, noisy machine wall-clock figures wander; the instruction count of the same
code under `valgrind --tool=callgrind` is repeatable, so both are given. Two paths:
the planner (`traj_plan_packed` over a fixed set of seeded 6-axis cases) and tick
execution (`cycle_step` of a cycle with the sim_arm board's traj and arm sim blocks,
stepped in virtual time through a move). Only instructions inside the named C function
(and what it calls) are counted: Python and cffi overhead stay out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

ROOT = Path(__file__).resolve().parents[1]
# workload -> the C function whose inclusive instructions are counted
MEASURED = {"plan": "traj_plan_packed", "tick": "cycle_step"}
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.M)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plans", type=int, default=200, help="planning calls (200)")
    parser.add_argument("--ticks", type=int, default=5000, help="cycle ticks (5000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the cases (1)")


def _plan_workload(n_calls: int, seed: int) -> float:
    """Plan n_calls seeded cases (inputs packed beforehand); seconds per call."""
    from bench.motion import random_case
    from edge.rt.native import require_native

    ffi, lib = require_native()
    rng = np.random.default_rng(seed)
    keys = ("current_position", "current_velocity", "current_acceleration", "target_position",
            "target_velocity", "max_velocity", "max_acceleration", "max_jerk")
    packed = []
    for _ in range(n_calls):
        case = random_case(rng, 6)
        packed.append(ffi.new("double[]", np.concatenate([case[k] for k in keys]).tolist()))
    out = ffi.new("traj *")
    start = time.perf_counter()
    for x in packed:
        if lib.traj_plan_packed(out, 6, x) != 0:
            raise EdgeError("the planner refused a benchmark case")
    return (time.perf_counter() - start) / n_calls


def _tick_workload(n_ticks: int) -> float:
    """Step the sim_arm traj + arm sim blocks n_ticks through a move; seconds per tick."""
    from edge.config import load_board
    from edge.motion.arm_sim import arm_sim_block_from_config
    from edge.motion.trajectory import TRAJ_CMD_TARGET, traj_block
    from edge.rt.native import Cycle

    board = load_board("sim_arm")
    motion = board.sections["motion"]
    home = [a.initial_position for a in board.axes]
    n = motion.arm.n
    c = Cycle(1_000_000, n, state_capacity=1 << 12)
    traj = c.add_block(traj_block([a.max_velocity for a in board.axes],
                                  [a.max_acceleration for a in board.axes],
                                  [a.max_jerk for a in board.axes]))
    c.add_block(arm_sim_block_from_config(motion, home))
    target = [q + (0.5 if i % 2 else -0.5) for i, q in enumerate(home)]
    c.push_command(0, traj, TRAJ_CMD_TARGET, target)
    chunk, done, elapsed = 1000, 0, 0.0
    while done < n_ticks:
        k = min(chunk, n_ticks - done)
        start = time.perf_counter()
        c.step(k)
        elapsed += time.perf_counter() - start
        c.pop_states()                 # keep the ring from filling (outside the timing)
        done += k
    return elapsed / n_ticks


def _workload(name: str, count: int, seed: int) -> float:
    return _plan_workload(count, seed) if name == "plan" else _tick_workload(count)


def instructions(name: str, count: int, seed: int) -> int:
    """Instructions executed inside MEASURED[name] over `count` calls or ticks."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise EdgeError("valgrind is needed (apt-get install valgrind; ./dev bench does it)")
    with tempfile.TemporaryDirectory(prefix="edge-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no",
               f"--toggle-collect={MEASURED[name]}", f"--callgrind-out-file={out}",
               sys.executable, "-m", "bench.callgrind", name, str(count), str(seed)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise EdgeError(f"callgrind run of {name} failed: {done.stderr.strip()[-1500:]}")
        m = _TOTALS.search(out.read_text())
        if m is None:
            raise EdgeError(f"no instruction total in the callgrind output of {name}")
        return int(m.group(1))


def run(args: argparse.Namespace) -> BenchReport:
    rows, data = [], {"machine": machine_facts()}
    for name, count in (("plan", args.plans), ("tick", args.ticks)):
        # wall time: best of three runs of the same loop, outside valgrind
        wall = min(_workload(name, count, args.seed) for _ in range(3))
        ir = instructions(name, count, args.seed) / count
        unit = "planning call" if name == "plan" else "tick"
        rows.append(f"{unit:<14} {MEASURED[name]:<17} {ir:>12,.0f} {wall * 1e6:>10.2f}")
        data[name] = {"function": MEASURED[name], "count": count,
                      "instructions_per_call": ir, "wall_us_per_call": wall * 1e6}
    header = f"{'per':<14} {'C function':<17} {'instructions':>12} {'wall us':>10}"
    return BenchReport("\n".join([header, *rows]), data)


if __name__ == "__main__":           # the measured child: NAME COUNT SEED
    _workload(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

"""`edge bench fuzz`: every fuzz target under atheris, one process each, with inputs
tried, crashes, hangs (an input over 1 s), executions per second and corpus size, and
beside each the rate of the trivial json.loads target under the same harness in the
same run (the anchor: what the harness itself costs on this machine today).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.fuzz import BASELINE, TARGETS
from bench.fuzz.targets_files import SCRATCH_ENV
from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

BASELINE_MAX_S = 30.0      # the anchor needs a rate, not a million inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = [n for n in TARGETS if n != BASELINE]
    parser.add_argument("--target", default="all", metavar="NAMES|all",
                        help=f"comma-separated targets, or all ({', '.join(names)})")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target (1e6)")
    parser.add_argument("--max-time", type=float, default=0.0, metavar="S",
                        help="stop each target after S seconds (0: no limit)")
    parser.add_argument("--hang-s", type=float, default=1.0, help="an input slower is a hang")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="targets fuzzed side by side (default 1; at most the CPU count "
                             "is useful: each target is one process)")
    parser.add_argument("--artifacts", default="fuzz-artifacts", metavar="DIR",
                        help="where crash and hang inputs and the fuzzer logs go")


def _fuzz_one(name: str, runs: int, max_time: float, hang_s: float,
              artifacts: Path) -> dict[str, Any]:
    """Run one target in a child process; its outcome plus what libFuzzer reported."""
    # the corpus and the targets' scratch files: tmpfs when there is one (the journal
    # target fsyncs at every input)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix=f"edge-fuzz-{name}-", dir=shm))
    stats, log = artifacts / f"{name}.stats.json", artifacts / f"{name}.log"
    stats.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.fuzz.child", name, "--work", str(work / "corpus"),
           "--stats", str(stats), "--artifacts", str(artifacts), "--runs", str(runs),
           "--max-time", str(max_time), "--hang-s", str(hang_s)]
    env = {**os.environ, SCRATCH_ENV: str(work)}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    limit = (max_time + 120) if max_time else None
    with open(log, "wb") as out:
        try:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = "killed (stuck past --max-time)"
    ended = time.time()
    shutil.rmtree(work, ignore_errors=True)
    data = json.loads(stats.read_text()) if stats.exists() else {
        "target": name, "executed": 0, "crashes": 0, "hangs": 0, "slow": 0, "findings": []}
    text = log.read_text(errors="replace")
    done = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    if done:
        data["executed"] = max(data["executed"], int(done[-1]))
    corp = re.findall(r"corp: (\d+)/", text)
    data["corpus"] = int(corp[-1]) if corp else None
    first = data.get("first_t")
    data["exec_per_s"] = data["executed"] / (ended - first) if first and ended > first else 0.0
    data["rc"] = rc
    if rc not in (0, "0"):
        # libFuzzer ended the process itself (out of memory, a native crash): one more
        # finding, with the artifact libFuzzer saved
        kind = "hang" if isinstance(rc, str) else "crash"
        data["hangs" if kind == "hang" else "crashes"] += 1
        tail = " | ".join(text.strip().splitlines()[-3:])[-300:]
        data["findings"].append({"kind": kind, "signature": f"process ended: rc {rc}",
                                 "summary": tail, "count": 1, "artifact": None})
    return data


def run(args: argparse.Namespace) -> BenchReport:
    try:
        import atheris  # noqa: F401
    except ImportError:
        raise EdgeError("the fuzz bench needs atheris: pip install 'edge[fuzz]'") from None
    if args.runs < 1:
        raise EdgeError("--runs must be at least 1")
    if args.jobs < 1:
        raise EdgeError("--jobs must be at least 1")
    artifacts = Path(args.artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    every = [n for n in TARGETS if n != BASELINE]
    names = every if args.target == "all" else [n.strip() for n in args.target.split(",")
                                                 if n.strip()]
    unknown = [n for n in names if n not in every]
    if unknown or not names:
        raise EdgeError(f"--target: unknown {', '.join(unknown) or '(none)'}; "
                        f"choose from {', '.join(every)} or all")
    t_base = min(args.max_time, BASELINE_MAX_S) if args.max_time else BASELINE_MAX_S
    base = _fuzz_one(BASELINE, args.runs, t_base, args.hang_s, artifacts)
    # the anchor runs alone first; the targets then share the machine args.jobs at a time
    # (threads only wait on their child processes)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda n: _fuzz_one(n, args.runs, args.max_time, args.hang_s,
                                                 artifacts), names))
    lines = [f"fuzzing, atheris (libFuzzer), hang = one input over {args.hang_s:g} s; "
             f"anchor: {BASELINE} under the same harness, {base['exec_per_s']:,.0f} exec/s "
             f"({base['executed']:,} inputs, run alone); targets {args.jobs} at a time",
             f"{'target':<17}{'inputs':>11}{'crashes':>9}{'hangs':>7}{'exec/s':>9}"
             f"{'json exec/s':>13}{'corpus':>8}"]
    for r in rows:
        lines.append(f"{r['target']:<17}{r['executed']:>11,}{r['crashes']:>9}{r['hangs']:>7}"
                     f"{r['exec_per_s']:>9,.0f}{base['exec_per_s']:>13,.0f}"
                     f"{r['corpus'] if r['corpus'] is not None else '-':>8}")
    for r in rows:
        for f in r["findings"]:
            lines.append(f"  {r['target']}: {f['kind']} x{f['count']}: {f['signature']}"
                         f"{' -> ' + f['artifact'] if f.get('artifact') else ''}")
    lines.append(f"artifacts and fuzzer logs: {artifacts}")
    return BenchReport("\n".join(lines), {
        "machine": machine_facts(), "hang_s": args.hang_s, "runs_asked": args.runs,
        "max_time_s": args.max_time, "jobs": args.jobs, "baseline": base, "targets": rows})

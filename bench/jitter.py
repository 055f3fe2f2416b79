"""`edge bench jitter`: wake-up latency of the native cycle beside its anchors.

In one run, one after the other at the same period: the native cycle (configured
busy-wait tail), the native cycle sleeping only (tail 0, what the tail buys), an
equivalent uvloop timer loop, and cyclictest when it is installed (the kernel's own
figure). All latencies go through the same native histogram, so percentiles are computed
the same way for every contender.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import time
from typing import Any

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError, SchedulingError
from edge.rt.native import Cycle, histogram_summary_us, require_native

MIN_PERIOD_US = 50
MAX_PERIOD_US = 1_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period-us", type=int, default=1000, help="period (default 1000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measurement time per contender (default 10)")
    parser.add_argument("--busy-tail-us", type=float, default=100.0,
                        help="native busy-wait tail (default 100)")
    parser.add_argument("--priority", type=int, default=90, help="SCHED_FIFO priority (90)")
    parser.add_argument("--cpu", type=int, default=None,
                        help="CPU for the native loop and cyclictest (default: the last)")


def _check(args: argparse.Namespace) -> None:
    if not MIN_PERIOD_US <= args.period_us <= MAX_PERIOD_US:
        raise SchedulingError(f"impossible period {args.period_us} us: the cycle runs between "
                              f"{MIN_PERIOD_US} us and {MAX_PERIOD_US} us")
    if not 0 < args.seconds <= 3600:
        raise SchedulingError(f"--seconds must be in (0, 3600], got {args.seconds}")
    if not 0 <= args.busy_tail_us * 1000 <= args.period_us * 1000:
        raise SchedulingError(f"--busy-tail-us must be between 0 and the period, "
                              f"got {args.busy_tail_us}")


def measure_native(period_ns: int, seconds: float, busy_tail_ns: int, priority: int,
                   cpu: int) -> dict[str, Any]:
    """Run an empty native cycle on its real-time thread; latency figures in µs."""
    cycle = Cycle(period_ns, 0, busy_tail_ns=busy_tail_ns, cpu=cpu, priority=priority,
                  lock_memory=True, state_capacity=1 << 16)
    cycle.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:     # keep the state ring drained, like the executor
        time.sleep(0.05)
        cycle.pop_states()
    cycle.stop()
    _, lib = require_native()
    out = histogram_summary_us(lib.cycle_latency_hist(cycle._handle))
    st = cycle.stats()
    out.update(busy_tail_us=busy_tail_ns / 1e3, busy_tail_cpu_fraction=st.spin_cpu_fraction,
               overruns=st.overruns, realtime_refused=st.realtime_report())
    return out


def measure_uvloop(period_ns: int, seconds: float) -> dict[str, Any]:
    """An asyncio timer loop on uvloop with absolute deadlines, as Python would write it."""
    import uvloop

    ffi, lib = require_native()
    h = ffi.gc(lib.hist_alloc(), lib.hist_free)
    n = int(seconds * 1e9 / period_ns)

    async def loop() -> None:
        deadline = time.monotonic_ns() + period_ns
        for _ in range(n):
            await asyncio.sleep(max(0, deadline - time.monotonic_ns()) / 1e9)
            lib.hist_record(h, time.monotonic_ns() - deadline)
            deadline += period_ns

    uvloop.run(loop())
    return histogram_summary_us(h)


_HIST_LINE = re.compile(r"^(\d+)\s+(\d+)\s*$")


def measure_cyclictest(period_us: int, seconds: float, priority: int,
                       cpu: int) -> dict[str, Any] | None:
    """cyclictest -m -p PRIO -i PERIOD on the same CPU; None when it is not installed."""
    exe = shutil.which("cyclictest") or ("/usr/bin/cyclictest"
                                         if os.path.exists("/usr/bin/cyclictest") else None)
    if exe is None:
        return None
    loops = int(seconds * 1e6 / period_us)
    cmd = [exe, "-m", "-p", str(priority), "-i", str(period_us), "-l", str(loops), "-t", "1",
           "-q", "-h", "20000"]
    if cpu >= 0:
        cmd += ["-a", str(cpu)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 30)
    except subprocess.TimeoutExpired:
        raise EdgeError("cyclictest did not finish in time") from None
    if proc.returncode != 0:
        raise EdgeError(f"cyclictest failed: {proc.stderr.strip() or proc.returncode}")
    ffi, lib = require_native()
    h = ffi.gc(lib.hist_alloc(), lib.hist_free)
    max_us = 0
    for line in proc.stdout.splitlines():
        m = _HIST_LINE.match(line)
        if m:    # histogram rows: latency in µs, count; recorded at the bucket's middle
            us, count = int(m.group(1)), int(m.group(2))
            for _ in range(count):
                lib.hist_record(h, us * 1000 + 500)
        elif line.startswith("# Max Latencies:"):
            max_us = int(line.split(":")[1].split()[0])
    out = histogram_summary_us(h)
    out["max_us"] = float(max_us) if max_us else out["max_us"]
    out["resolution_us"] = 1.0
    return out


def _row(name: str, r: dict[str, Any] | None) -> str:
    if r is None:
        return f"{name:<22}{'not installed':>12}"
    return (f"{name:<22}{r['p50_us']:>10.2f}{r['p99_us']:>10.2f}{r['p999_us']:>10.2f}"
            f"{r['max_us']:>10.2f}{r['samples']:>10}")


def run(args: argparse.Namespace) -> BenchReport:
    _check(args)
    period_ns = args.period_us * 1000
    cpu = args.cpu if args.cpu is not None else sorted(os.sched_getaffinity(0))[-1]
    tail_ns = int(args.busy_tail_us * 1000)
    native = measure_native(period_ns, args.seconds, tail_ns, args.priority, cpu)
    native_sleep = measure_native(period_ns, args.seconds, 0, args.priority, cpu)
    uv = measure_uvloop(period_ns, args.seconds)
    ct = measure_cyclictest(args.period_us, args.seconds, args.priority, cpu)

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
        return a["p99_us"] / b["p99_us"] if a and b and b["p99_us"] > 0 else None

    data = {
        "period_us": args.period_us, "seconds": args.seconds, "cpu": cpu,
        "native": native, "native_sleep_only": native_sleep, "uvloop": uv, "cyclictest": ct,
        "ratios": {"native_p99_over_cyclictest_p99": ratio(native, ct),
                   "native_p99_over_uvloop_p99": ratio(native, uv),
                   "native_sleep_only_p99_over_cyclictest_p99": ratio(native_sleep, ct)},
        "machine": machine_facts(),
    }
    lines = [f"wake-up latency at {args.period_us} us, {args.seconds:g} s each, CPU {cpu} "
             f"({data['machine']['cpus']} CPUs, kernel {data['machine']['kernel']})",
             f"{'':<22}{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>10}{'max us':>10}{'samples':>10}",
             _row(f"native (tail {args.busy_tail_us:g} us)", native),
             _row("native (sleep only)", native_sleep), _row("uvloop timer loop", uv),
             _row("cyclictest", ct)]
    r = data["ratios"]
    if r["native_p99_over_cyclictest_p99"] is not None:
        lines.append(f"native p99 / cyclictest p99 = {r['native_p99_over_cyclictest_p99']:.3f}")
    lines.append(f"native p99 / uvloop p99 = {r['native_p99_over_uvloop_p99']:.4f}")
    lines.append(f"busy-wait tail costs {100 * native['busy_tail_cpu_fraction']:.1f}% of one CPU "
                 f"(set with --busy-tail-us or the board's cycle.busy_tail_us)")
    lines += [f"note: {x}" for x in native["realtime_refused"]]
    return BenchReport("\n".join(lines), data)

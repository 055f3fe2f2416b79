"""`edge bench soak`: the full simulated arm for a long time (an hour by default) with
faults cycling; memory, descriptors, journal size and deadline misses sampled each
minute (hil.soak). The anchor is the same process at the start of the run: the verdict
is whether the figures at the end stay where they were after warm-up."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile

from edge.bench import BenchReport, machine_facts
from edge.errors import EXIT_FAULTED, EXIT_OK, EdgeError

# what 'flat' allows between the first and last third of the samples
MAX_RSS_GROWTH_KB = 20 * 1024
MAX_FD_GROWTH = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration-s", type=float, default=3600.0,
                        help="how long to soak (default 3600 s)")
    parser.add_argument("--sample-s", type=float, default=60.0,
                        help="sampling interval (default 60 s)")
    parser.add_argument("--phase-s", type=float, default=10.0,
                        help="length of each fault phase (default 10 s)")
    parser.add_argument("--workdir", metavar="DIR",
                        help="keep the board, broker, state and edge's log here (default: "
                             "a temporary directory, removed unless the run is not flat)")


def verdict(growth: dict[str, float], edge_rc: int) -> list[str]:
    """The reasons the run was not flat (empty: flat)."""
    bad = []
    # 3: the run ended with a stop latched, which the rig's own stop and wall phases
    # cause; anything else but 0 is a bug or an error
    if edge_rc not in (EXIT_OK, EXIT_FAULTED):
        bad.append(f"edge exited with {edge_rc}")
    if growth["rss_kb"] > MAX_RSS_GROWTH_KB:
        bad.append(f"RSS grew {growth['rss_kb'] / 1024:.1f} MiB")
    if growth["fds"] > MAX_FD_GROWTH:
        bad.append(f"open descriptors grew by {growth['fds']:.1f}")
    if growth["journal_bytes"] > 1024 * 1024:
        bad.append(f"journal grew {growth['journal_bytes'] / 1024:.0f} KiB")
    first, second = growth["misses_per_s_first_half"], growth["misses_per_s_second_half"]
    if second > 2 * first + 1:
        bad.append(f"deadline misses rose from {first:.2f}/s to {second:.2f}/s")
    return bad


def run(args: argparse.Namespace) -> BenchReport:
    from hil.soak import soak

    if args.duration_s < 3 * args.sample_s or args.sample_s <= 0 or args.phase_s <= 0:
        raise EdgeError("--duration-s must hold at least three samples; intervals positive")
    work = args.workdir or tempfile.mkdtemp(prefix="edge-soak-")
    keep = bool(args.workdir)      # and a run that is not flat, to look into; not a ^C'd one
    try:
        report = asyncio.run(soak(args.duration_s, sample_s=args.sample_s,
                                  phase_s=args.phase_s, workdir=work))
        growth = report.growth()
        bad = verdict(growth, report.edge_rc)
        keep = keep or bool(bad)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    lines = [f"soak {args.duration_s:g} s, samples every {args.sample_s:g} s, faults cycling "
             f"({', '.join(f'{k} x{v}' for k, v in report.phases.items())})",
             f"{'t_s':>7} {'rss_MiB':>8} {'fds':>4} {'journal_KiB':>11} {'misses':>7}  phase"]
    for s in report.samples:
        lines.append(f"{s.t_s:7.0f} {s.rss_kb / 1024:8.1f} {s.fds:4d} "
                     f"{s.journal_bytes / 1024:11.0f} {s.deadline_misses:7d}  {s.phase}")
    lines.append(f"growth, last third vs first third: RSS {growth['rss_kb'] / 1024:+.1f} MiB, "
                 f"fds {growth['fds']:+.1f}, journal {growth['journal_bytes'] / 1024:+.0f} KiB; "
                 f"misses {growth['misses_per_s_first_half']:.2f}/s then "
                 f"{growth['misses_per_s_second_half']:.2f}/s")
    lines.append("verdict: flat" if not bad else "verdict: NOT flat: " + "; ".join(bad))
    if keep:
        lines.append(f"board, state and edge's log kept in {work}")
    data = {"machine": machine_facts(), **report.as_dict(), "verdict": bad}
    return BenchReport("\n".join(lines), data)

"""`edge bench crash`: kill -9 campaigns (hil.crash for the journal, hil.crash_state for
the usage counters, summary, session counter and journal of a real `edge run`, with the
broker up and down). A campaign is judged by its violations, which must be none."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError

POLICIES = ("always", "interval", "never")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=200,
                        help="kills of `edge run` for the state files (default 200)")
    parser.add_argument("--journal-kills", type=int, default=200,
                        help="kills of a journal writer per fsync policy (default 200; 0 skips)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> BenchReport:
    from hil.crash import run_campaign
    from hil.crash_state import run_state_campaign

    if args.kills < 0 or args.journal_kills < 0 or args.kills + args.journal_kills == 0:
        raise EdgeError("--kills and --journal-kills must be >= 0, not both 0")
    lines, data = [], {"machine": machine_facts(), "journal": {}, "state_files": None}
    for policy in POLICIES if args.journal_kills else ():
        with tempfile.TemporaryDirectory() as tmp:
            r = run_campaign(tmp, kills=args.journal_kills, seed=args.seed, policy=policy)
        lines += [r.line(), *(f"  {v}" for v in r.violations)]
        data["journal"][policy] = dataclasses.asdict(r)
    if args.kills:
        with tempfile.TemporaryDirectory() as tmp:
            s = run_state_campaign(tmp, kills=args.kills, seed=args.seed)
        lines += [s.line(), *(f"  {v}" for v in s.violations)]
        data["state_files"] = s.as_dict()
    bad = sum(len(r["violations"]) for r in data["journal"].values()) + \
        (len(data["state_files"]["violations"]) if data["state_files"] else 0)
    lines.append("verdict: 0 violations" if not bad else f"verdict: {bad} VIOLATIONS")
    return BenchReport("\n".join(lines), data)

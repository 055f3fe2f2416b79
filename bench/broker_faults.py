"""`edge bench faults`: broker faults end to end during a steady stream.

For each fault (broker restart, broker frozen with SIGSTOP, link cut at a proxy) a real
`edge run` streams one state frame per tick through a real mosquitto while an independent
paho consumer with a persistent session audits the seq numbers (hil.broker_faults). The
anchor is the same stream with no fault, in the same run: a fault must leave the stream
as whole as the anchor's (0 lost, 0 reordered, nothing left in the journal; duplicates
only as QoS 1 allows).
"""

from __future__ import annotations

import argparse

from edge.bench import BenchReport, machine_facts
from edge.errors import EdgeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hil.broker_faults import FAULTS

    known = ", ".join(f for f in FAULTS if f != "none")
    parser.add_argument("--faults", default="restart,freeze,cut",
                        help=f"comma-separated, from: {known}")
    parser.add_argument("--rate", type=int, default=2000, help="messages/s (default 2000)")
    parser.add_argument("--fault-s", type=float, default=5.0,
                        help="how long each fault lasts (default 5 s)")
    parser.add_argument("--after-s", type=float, default=8.0,
                        help="streaming after the fault ends, at least; the rig also waits "
                             "for the bridge to catch up (default 8 s)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every fault (default 1)")


def run(args: argparse.Namespace) -> BenchReport:
    from hil.broker_faults import FAULTS, run_fault

    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise EdgeError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    if args.rate < 1 or args.rate > 10_000 or args.fault_s <= 0 or args.rounds < 1:
        raise EdgeError("--rate must be 1..10000 msg/s, --fault-s positive, --rounds >= 1")
    rows = []
    for _ in range(args.rounds):
        for fault in ["none", *faults]:          # the anchor in every round, interleaved
            rows.append(run_fault(fault, rate_hz=args.rate, fault_s=args.fault_s,
                                  after_s=args.after_s).as_dict())
    head = (f"{'fault':8} {'published':>9} {'received':>8} {'lost':>5} {'reordered':>9} "
            f"{'dup':>5} {'pending':>7} {'reconnects':>10} {'catch_up_s':>10}  verdict")
    lines = [f"broker faults at {args.rate} msg/s, each fault {args.fault_s:g} s "
             f"(anchor: the same stream, no fault)", head]
    for r in rows:
        lines.append(f"{r['fault']:8} {r['published']:9d} {r['received']:8d} {r['lost']:5d} "
                     f"{r['reordered']:9d} {r['duplicates']:5d} {r['journal_pending']:7d} "
                     f"{r['bridge'].get('connections', 0) - 1:10d} "
                     f"{'-' if r['catch_up_s'] is None else r['catch_up_s']:>10}  "
                     f"{'ok' if r['ok'] else 'FAILED'}")
    return BenchReport("\n".join(lines), {"machine": machine_facts(), "rate_hz": args.rate,
                                          "fault_s": args.fault_s, "runs": rows})

"""One target under atheris, in a process of its own (atheris.Fuzz never returns:
libFuzzer exits the process when the runs or the time are used up).

    python -m bench.fuzz.child TARGET --work DIR --stats FILE --artifacts DIR
        [--runs N] [--max-time S] [--hang-s S]

Crashes and hangs are caught by the harness, counted and saved, so libFuzzer goes on
after them; the outcome is rewritten to --stats every second and at every finding.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from bench.fuzz import CORPUS_DIR, TARGETS
from bench.fuzz.harness import Runner, write_outcome

INSTRUMENTED = ["edge", "bench", "yaml", "msgpack", "pymodbus", "serial", "json", "urllib"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench.fuzz.child")
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--work", type=Path, required=True, help="corpus folder libFuzzer grows")
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--max-time", type=float, default=0.0)
    p.add_argument("--hang-s", type=float, default=1.0)
    args = p.parse_args(argv)

    import atheris

    logging.disable(logging.CRITICAL)     # a log line per bad input would be the run
    target = TARGETS[args.target]
    # coverage of the code that parses: edge, and the libraries edge hands bytes to
    # (numpy and scipy stay plain: instrumenting all of them takes minutes)
    with atheris.instrument_imports(include=INSTRUMENTED):
        fn = target.build()
    state = {"written": 0.0}

    def flush(outcome) -> None:
        write_outcome(outcome, args.stats)
        state["written"] = time.monotonic()

    runner = Runner(args.target, fn, hang_s=args.hang_s, artifacts=args.artifacts,
                    on_finding=flush)

    def one(data: bytes) -> None:
        runner(data)
        if time.monotonic() - state["written"] > 1.0 or runner.outcome.executed >= args.runs:
            flush(runner.outcome)

    args.work.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS_DIR / args.target
    flags = [f"-runs={args.runs}", f"-max_len={target.max_len}", "-timeout=0",
             "-rss_limit_mb=1536", "-print_final_stats=1", "-print_pcs=0",
             f"-artifact_prefix={args.artifacts}/"]
    if args.max_time:
        flags.append(f"-max_total_time={max(1, int(args.max_time))}")
    corpora = [str(args.work)] + ([str(seeds)] if seeds.is_dir() else [])
    atheris.Setup([sys.argv[0], *flags, *corpora], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

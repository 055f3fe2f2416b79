"""`edge hil run SCENARIO|DIR...`: every run of every scenario (one per combination of
its parameters) in virtual time (with --realtime: against a separate `edge run`, see
hil.realtime), a line per run, a summary table, JUnit XML and Parquet
traces on request; exit 0 only if every run passed.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from edge.errors import EXIT_FAULTED, EXIT_OK, EdgeError

HELP = ("run scenarios in virtual time (or --realtime against edge run): verdicts, summary, "
        "JUnit XML, Parquet traces, an HTML report")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO|DIR",
                        help="scenario files, directories of them, or shipped scenario names")
    parser.add_argument("--seed", type=int, metavar="S",
                        help="the seed of the random parameter draws (default: the file's)")
    parser.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                        help="runs at once, each in its own process (default 1)")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML, one testcase per run")
    parser.add_argument("--realtime", action="store_true",
                        help="run each scenario against a separate `edge run` in real time "
                             "over real protocols (mosquitto, Modbus TCP)")
    parser.add_argument("--trace", metavar="DIR",
                        help="write each run's trace as a Parquet file into DIR (pyarrow)")
    parser.add_argument("--report", metavar="DIR",
                        help="write an HTML report with plots: DIR/index.html (matplotlib)")


def _one(path: str, index: int, seed: int | None, trace_dir: str | None,
         report_dir: str | None = None, position: int = 0, realtime: bool = False):
    """One run, from its file (what a worker process is given: plain, picklable data);
    its plots go into a folder of report_dir named by its position in the campaign."""
    from hil.runner import RunResult, execute
    from hil.scenario import load_scenario

    scenario = load_scenario(path, seed)
    try:
        run = scenario.run(index)
    except EdgeError as exc:                 # checked before, so only a changed file
        return RunResult(f"{scenario.name}#{index}", scenario.name, path, index, {},
                         scenario.seed, error=exc.one_line())
    if report_dir is not None:
        from hil.report import run_dir_name

        report_dir = str(Path(report_dir) / run_dir_name(position, run.id))
    if realtime:
        from hil.realtime import execute_realtime

        return execute_realtime(run, trace_dir, report_dir)
    return execute(run, trace_dir, report_dir)


def run(args: argparse.Namespace) -> int:
    from hil.check_command import check_file
    from hil.cli import scenario_files
    from hil.reports import Progress, summary_table, write_junit

    files = scenario_files(args.scenarios)
    if args.junit:
        from edge.cli import check_output_file

        check_output_file(args.junit)
    if args.trace:
        _trace_dir(Path(args.trace))
    if args.report:
        from hil.report import need_matplotlib

        need_matplotlib()
        _output_dir(Path(args.report))
    work: list[tuple[str, int]] = []
    for path in files:                       # every file checked before any run
        _, runs = check_file(path, args.seed, realtime=args.realtime)
        work += [(str(path), i) for i in range(runs)]
    per_file = Counter(path for path, _ in work)
    results = []
    with Progress(len(work), per_file) as progress:
        if args.jobs == 1 or len(work) == 1:
            for k, (path, i) in enumerate(work):
                results.append(_one(path, i, args.seed, args.trace, args.report, k,
                                    args.realtime))
                progress.show(results[-1], path)
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=min(args.jobs, len(work))) as pool:
                futures = [pool.submit(_one, path, i, args.seed, args.trace, args.report, k,
                                       args.realtime)
                           for k, (path, i) in enumerate(work)]
                for (path, _), future in zip(work, futures, strict=True):   # in order
                    results.append(future.result())
                    progress.show(results[-1], path)
    text = summary_table(results)
    if text is not None:
        print(text)
    if args.junit:
        write_junit(results, Path(args.junit))
    if args.report:
        from hil.report_page import write_report

        print(f"report: {write_report(results, Path(args.report))}")
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAULTED


def _trace_dir(path: Path) -> None:
    """The trace directory, before any run; pyarrow must be there too."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise EdgeError("--trace writes Parquet files with pyarrow, which is not installed: "
                        "pip install 'edge[hil]'") from None
    _output_dir(path)


def _output_dir(path: Path) -> None:
    """Create a directory of outputs (and refuse one that cannot be written)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeError(f"cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise EdgeError(f"cannot write into {path}: permission denied")

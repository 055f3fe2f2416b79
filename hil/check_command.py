"""`edge hil check FILE...`: validate scenario files without running them: every run's
board (with its overrides), signals, steps, faults and assertion expressions, and what
the controller built from the board must offer them; errors name file, line and field.
"""

from __future__ import annotations

import argparse

from edge.errors import EXIT_OK

HELP = "validate scenario files: board, signals, steps, faults, assertions; run nothing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO|DIR",
                        help="scenario files, directories of them, or shipped scenario names")
    parser.add_argument("--seed", type=int, metavar="S",
                        help="the seed of the random parameter draws (default: the file's)")


def check_file(path, seed: int | None = None, *, realtime: bool = False) -> tuple[str, int]:
    """Check one scenario file: the line saying it is valid and its number of runs.
    Raises ConfigError naming file, line and field. `realtime`: checked for a run
    against a separate `edge run` (hil.realtime) instead of one in virtual time."""
    from hil.runner import Bench
    from hil.scenario import load_scenario

    scenario = load_scenario(path, seed)
    for i in range(len(scenario)):
        run = scenario.run(i)
        if realtime:
            from hil.realtime import check_realtime

            check_realtime(run)
        else:
            Bench(run, check=True)
    return (f"{path}: scenario '{scenario.name}' is valid ({len(scenario)} "
            f"run{'s' if len(scenario) != 1 else ''}, {len(run.signals)} signals, "
            f"{len(run.steps)} steps, {len(run.assertions)} assertions)"), len(scenario)


def run(args: argparse.Namespace) -> int:
    from hil.cli import scenario_files

    for path in scenario_files(args.scenarios):
        print(check_file(path, args.seed)[0])
    return EXIT_OK

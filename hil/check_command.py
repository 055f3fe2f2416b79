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


def check_file(path, seed: int | None = None, *,
               realtime: bool | None = None) -> tuple[str, int]:
    """Check one scenario file: the line saying it is valid and its number of runs.
    Raises ConfigError naming file, line and field. `realtime`: True checks it for a run
    against a separate `edge run` (hil.realtime), False for one in virtual time (a
    scenario that needs real time is an error), None as the scenario needs."""
    from edge.errors import ConfigError
    from hil.realtime import check_realtime, needs_realtime
    from hil.runner import Bench
    from hil.scenario import load_scenario

    scenario = load_scenario(path, seed)
    for i in range(len(scenario)):
        run = scenario.run(i)
        needs = needs_realtime(run)
        if needs is not None and realtime is False:
            raise ConfigError(f"{needs} needs real time: run it with --realtime",
                              file=run.file, line=needs.line)
        if realtime or needs is not None:
            check_realtime(run)
        else:
            Bench(run, check=True)
    mode = " in real time" if realtime or needs is not None else ""
    return (f"{path}: scenario '{scenario.name}' is valid{mode} ({len(scenario)} "
            f"run{'s' if len(scenario) != 1 else ''}, {len(run.signals)} signals, "
            f"{len(run.steps)} steps, {len(run.assertions)} assertions)"), len(scenario)


def run(args: argparse.Namespace) -> int:
    from hil.cli import scenario_files

    for path in scenario_files(args.scenarios):
        print(check_file(path, args.seed)[0])
    return EXIT_OK

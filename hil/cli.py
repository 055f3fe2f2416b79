"""HIL scenarios: check them, run them in virtual time, get verdicts, traces and JUnit.

`edge hil` (entry point `edge.commands`): COMMANDS is the one table of its subcommands,
each a module with add_arguments(parser) and run(args) -> exit code, imported when
`edge` builds its parser.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from edge.errors import ConfigError, EdgeError

COMMANDS: dict[str, str] = {
    "check": "hil.check_command",
    "run": "hil.run_command",
    "replay": "hil.replay",
}
SHIPPED = Path(__file__).resolve().parent / "scenarios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hil_command", metavar="COMMAND",
                                parser_class=type(parser))
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP)
        p.set_defaults(hil_module=module_name)
        module.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "hil_command", None):
        raise EdgeError(f"name a hil command: {', '.join(COMMANDS)} (see edge hil --help)")
    edge_log = logging.getLogger("edge")
    level = edge_log.level
    if getattr(args, "log_level", "info") == "info":
        # every run (and every check) builds a controller, which says so at info level:
        # the report is the runs' lines; warnings (a stop latched, a request rejected)
        # still show, and --log-level debug shows everything
        edge_log.setLevel(logging.WARNING)
    try:
        return importlib.import_module(args.hil_module).run(args)
    finally:
        edge_log.setLevel(level)


def scenario_files(items: list[str]) -> list[Path]:
    """The scenario files named on the command line: files, directories (their *.yaml,
    sorted) or names of the scenarios shipped in hil/scenarios/."""
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ConfigError(f"no scenario files (*.yaml) in {path}")
            out += found
        elif path.is_file():
            out.append(path)
        elif path.suffix not in (".yaml", ".yml") and (SHIPPED / f"{item}.yaml").is_file():
            out.append(SHIPPED / f"{item}.yaml")
        else:
            shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml"))) or "none"
            raise ConfigError(f"scenario file not found: {item} (shipped scenarios: {shipped})")
    return out

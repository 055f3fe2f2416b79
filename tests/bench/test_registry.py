"""`edge bench` offers exactly the benchmarks pyproject.toml declares as entry points
(so an installed edge is in step with its source), and each names a module with the
two functions the command calls."""

import importlib
import tomllib
from pathlib import Path

from edge.bench import ENTRY_POINT_GROUP, benchmarks

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["entry-points"][ENTRY_POINT_GROUP]


def test_the_installed_entry_points_are_the_declared_ones():
    assert benchmarks() == declared()


def test_each_benchmark_module_has_add_arguments_and_run():
    for name, module in declared().items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:      # an optional extra (atheris for fuzz)
            assert exc.name and not exc.name.startswith(("edge", "hil", "bench")), name
            continue
        assert callable(mod.add_arguments) and callable(mod.run), name

"""Commands other packages add to `edge` (entry-point group `edge.commands`): `edge hil`
comes that way, and a command whose module needs a missing optional dependency says in
one line what to install."""

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from edge import cli

EDGE = Path(sys.executable).with_name("edge")


def test_edge_lists_hil_from_its_entry_point():
    names = [ep.name for ep in cli.plugin_commands()]
    assert "hil" in names
    out = subprocess.run([str(EDGE), "--help"], capture_output=True, text=True, check=True).stdout
    assert "hil" in out
    out = subprocess.run([str(EDGE), "hil", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "check" in out and "run" in out


def test_hil_without_a_subcommand_is_one_line(capsys):
    assert cli.main(["hil"]) == 2
    assert capsys.readouterr().err.strip() == \
        "edge: error: name a hil command: check, run, replay (see edge hil --help)"


class _Dist:
    requires = ['pyarrow>=14; extra == "hil"', 'pyarrow>=14; extra == "test"',
                "numpy>=1.26"]


def test_a_missing_optional_dependency_names_the_extra(tmp_path, monkeypatch, capsys):
    (tmp_path / "ghost_cmd.py").write_text(
        '"""A command needing a library that is not installed."""\n'
        "import pyarrow_not_installed_anywhere  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint("ghost", "ghost_cmd", "edge.commands")
    monkeypatch.setattr(cli, "plugin_commands", lambda: [ep])
    assert cli.main(["ghost"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("edge: error: `edge ghost` needs pyarrow_not_installed_anywhere, which is "
                   "not installed: pip install pyarrow_not_installed_anywhere")


def test_the_extra_comes_from_the_distribution_metadata():
    ep = EntryPoint("hil", "hil.cli", "edge.commands")
    with_dist = type("EP", (), {"name": "hil", "value": "hil.cli", "dist": _Dist()})()
    assert cli._extra_for(with_dist, "pyarrow.parquet") == "hil"       # not "test"
    assert cli._extra_for(ep, "pyarrow") is None                      # no metadata at hand


@pytest.mark.parametrize("argv", [["hil", "run", "--jobs", "0", "x.yaml"],
                                  ["hil", "run"]])
def test_usage_errors_are_one_line(argv):
    proc = subprocess.run([str(EDGE), *argv], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr

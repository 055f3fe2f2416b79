"""Shared fixtures: edge installed from a wheel. The rigs (mosquitto, Modbus and serial
devices on ptys, `edge run`) come from the edge_hil pytest plugin (hil/pytest_plugin.py)."""

import dataclasses
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest


@dataclasses.dataclass
class InstalledEdge:
    """edge installed from a wheel in a fresh virtual environment (see installed_edge)."""

    venv: Path
    python: Path

    def run(self, *args: str, cwd: Path) -> str:
        """Run a command of the venv (python, edge, ...) in cwd, without this checkout or
        PYTHONPATH on its path; its stdout."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="session")
def installed_edge(tmp_path_factory) -> InstalledEdge:
    """A wheel built from a copy of this checkout, installed with --no-deps in a fresh venv.
    The venv sees the test venv's site-packages for the dependencies (numpy, cffi, ...)
    through a .pth added after the install, so pip never touches the test venv; the test
    venv's editable edge is not activated there (.pth files of added paths do not run)."""
    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("wheel")
    src, wheels, venv = work / "src", work / "wheels", work / "venv"
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.o", "_native.c", "*.egg-info")
    for name in ("edge", "native", "hil", "bench"):
        shutil.copytree(root / name, src / name, ignore=skip)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(src)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("edge-*.whl")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    site_dir = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                    "get_path('purelib'))"], check=True, capture_output=True,
                                   text=True).stdout.strip())
    (site_dir / "test-venv-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return InstalledEdge(venv, python)

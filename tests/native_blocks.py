"""Compiling a native block the way an integrator does (gcc against edge's headers), for
the tests that load one into the cycle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edge.rt.native import include_dir


def compile_block(out_dir: Path, source: Path) -> Path:
    """Build SOURCE into a shared library in OUT_DIR; the library's path."""
    # gcc builds edge's own extension at install, so it is there wherever edge is
    assert shutil.which("gcc"), "gcc is needed to build integrators' native blocks"
    out = out_dir / f"lib{source.stem}.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-I", include_dir(),
                    str(source), "-o", str(out)], check=True)
    return out

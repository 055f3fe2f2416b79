"""The secondary-development interface: the worked examples of docs/motion-extending.md
(an integrator's C block compiled here with gcc, and a Python planner) run for real."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_board
from edge.errors import NativeError
from edge.rt.native import include_dir, load_block
from edge.rt.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIGNATURE = "edge_block *velocity_clamp_alloc(int axis, double limit);"


@pytest.fixture(scope="module")
def clamp_library(tmp_path_factory) -> Path:
    # gcc builds edge's own extension at install, so it is there wherever edge is
    assert shutil.which("gcc"), "gcc is needed to build integrators' native blocks"
    out = tmp_path_factory.mktemp("blocks") / "libvelocity_clamp.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-I", include_dir(),
                    str(EXAMPLES / "native_block" / "velocity_clamp.c"), "-o", str(out)],
                   check=True)
    return out


def test_an_integrators_native_block_runs_in_the_cycle_before_safety(clamp_library) -> None:
    clamp = load_block(clamp_library, "velocity_clamp_alloc", SIGNATURE, 0, 0.3)
    board = load_board("sim_arm")
    board.sections.pop("program")
    rt = Runtime(board, virtual_time=True, user_blocks=[clamp])
    rt.motion.enable()
    rt.executor.step(150)
    target = rt.executor.history(1)["q"][0][:6].copy()
    target[0] += 0.6
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    rt.motion.move_joint(target)
    rt.executor.step(4000)
    states = np.concatenate(seen)
    assert np.abs(states["qd_cmd"][:, 0]).max() <= 0.3 + 1e-9      # the clamp acted ...
    assert np.abs(np.diff(states["q_cmd"][:, 0])).max() <= 0.3 * 1e-3 + 1e-12
    assert abs(states["q"][-1, 0] - target[0]) < 1e-3               # ... and the move ended
    assert rt.summary()["safety"]["fault_code"] == 0


def test_a_bad_library_or_refused_input_is_a_clear_error(clamp_library, tmp_path) -> None:
    with pytest.raises(NativeError, match="cannot load"):
        load_block(tmp_path / "missing.so", "velocity_clamp_alloc", SIGNATURE, 0, 0.3)
    with pytest.raises(NativeError, match="refused"):
        load_block(clamp_library, "velocity_clamp_alloc", SIGNATURE, 0, -1.0)


def test_the_worked_planner_example() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("quintic", EXAMPLES / "planner" / "quintic.py")
    quintic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quintic)
    board = load_board("sim_arm")
    board.sections.pop("program")
    rt = Runtime(board, virtual_time=True)
    rt.motion.enable()
    rt.executor.step(150)
    rt.motion.register_planner("quintic", quintic.quintic_planner)
    goal = rt.executor.history(1)["q"][0][:6] + 0.2
    r = rt.motion.move_custom("quintic", goal)
    rt.executor.step(4000)
    assert r.status == "accepted"
    assert np.max(np.abs(rt.executor.history(1)["q"][0][:6] - goal)) < 1e-3

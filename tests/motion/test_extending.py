"""The secondary-development interface: the worked examples of docs/motion-extending.md
(an integrator's C block compiled here with gcc, against the source tree and against an
installed wheel, and a Python planner) run for real."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_board
from edge.errors import NativeError
from edge.rt.native import load_block
from edge.rt.runtime import Runtime
from tests.native_blocks import compile_block

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIGNATURE = "edge_block *velocity_clamp_alloc(int axis, double limit);"


@pytest.fixture(scope="module")
def clamp_library(tmp_path_factory) -> Path:
    return compile_block(tmp_path_factory.mktemp("blocks"),
                         EXAMPLES / "native_block" / "velocity_clamp.c")


def test_an_integrators_native_block_runs_in_the_cycle_before_safety(clamp_library) -> None:
    clamp = load_block(clamp_library, "velocity_clamp_alloc", SIGNATURE, 0, 0.3)
    board = load_board("sim_arm")
    board.sections.pop("program")
    rt = Runtime(board, virtual_time=True, user_blocks=[clamp])
    rt.lookup("motion").enable()
    rt.executor.step(150)
    target = rt.executor.history(1)["q"][0][:6].copy()
    target[0] += 0.6
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    rt.lookup("motion").move_joint(target)
    rt.executor.step(4000)
    states = np.concatenate(seen)
    assert np.abs(states["qd_cmd"][:, 0]).max() <= 0.3 + 1e-9      # the clamp acted ...
    assert np.abs(np.diff(states["q_cmd"][:, 0])).max() <= 0.3 * 1e-3 + 1e-12
    assert abs(states["q"][-1, 0] - target[0]) < 1e-3               # ... and the move ended
    assert rt.summary()["safety"]["fault_code"] == 0


# Runs in the fresh venv: the example block behind a setpoint block that would move axis 0
# at 2 rad/s; the clamp holds it to 0.3 rad/s, then to 0.5 after its set-limit command.
RUN_CLAMP = """
import json, sys
import numpy as np
import edge
from edge.rt.native import Cycle, load_block, require_native, setpoint_block
_, lib = require_native()
clamp = load_block(sys.argv[1], "velocity_clamp_alloc", sys.argv[2], 0, 0.3)
cycle = Cycle(1_000_000, 1)
setpoint = cycle.add_block(setpoint_block([2.0], [20.0]))
index = cycle.add_block(clamp)
cycle.push_command(cycle.tick, setpoint, lib.SETPOINT_CMD_TARGET, [1.0])
cycle.step(1000)
first = cycle.pop_states()
cycle.push_command(cycle.tick, index, 1, [0.5])      # CLAMP_CMD_SET_LIMIT
cycle.step(1000)
second = cycle.pop_states()
print(json.dumps({"edge": edge.__file__, "native": sys.modules["edge._native"].__file__,
                  "qd_max": [float(np.abs(s["qd_cmd"][:, 0]).max()) for s in (first, second)],
                  "step_max": float(np.abs(np.diff(first["q_cmd"][:, 0])).max()),
                  "q_end": float(second["q_cmd"][-1, 0])}))
"""


@pytest.mark.slow
def test_the_example_block_builds_against_an_installed_wheel(installed_edge, tmp_path) -> None:
    venv = installed_edge.venv.resolve()
    include = Path(installed_edge.run("edge", "native", "--include", cwd=tmp_path).strip())
    assert include.resolve().is_relative_to(venv)          # the wheel's headers, not native/
    assert installed_edge.run("python", "-I", "-c", "import edge; print(edge.get_include())",
                              cwd=tmp_path).strip() == str(include)
    library = tmp_path / "libvelocity_clamp.so"
    subprocess.run([shutil.which("cc") or "gcc", "-O2", "-shared", "-fPIC", "-Wall", "-Werror",
                    f"-I{include}", str(EXAMPLES / "native_block" / "velocity_clamp.c"),
                    "-o", str(library)], check=True, cwd=tmp_path)
    script = tmp_path / "run_clamp.py"
    script.write_text(RUN_CLAMP)
    out = json.loads(installed_edge.run("python", "-I", str(script), str(library), SIGNATURE,
                                        cwd=tmp_path))
    assert Path(out["edge"]).resolve().is_relative_to(venv)
    assert Path(out["native"]).resolve().is_relative_to(venv)
    assert out["qd_max"] == pytest.approx([0.3, 0.5], abs=1e-12)   # the limits it was given
    assert out["step_max"] <= 0.3 * 1e-3 + 1e-12                    # 0.3 rad/s x 1 ms
    # 1 s at 0.3 then 1 s at 0.5 rad/s, less what the setpoint's start at 20 rad/s^2 loses
    # on the way to 0.3 rad/s (v^2 / 2a): short of the 1.0 target; within a tick at 0.5
    assert out["q_end"] == pytest.approx(0.3 + 0.5 - 0.3**2 / (2 * 20.0), abs=0.5e-3)


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
    rt.lookup("motion").enable()
    rt.executor.step(150)
    rt.lookup("motion").register_planner("quintic", quintic.quintic_planner)
    goal = rt.executor.history(1)["q"][0][:6] + 0.2
    r = rt.lookup("motion").move_custom("quintic", goal)
    rt.executor.step(4000)
    assert r.status == "accepted"
    assert np.max(np.abs(rt.executor.history(1)["q"][0][:6] - goal)) < 1e-3

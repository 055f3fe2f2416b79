"""How a board becomes a controller (docs/composition.md): the section registry, the tick
stages, components looked up by name at connect, and `edge run --explain`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from edge import cli, sections
from edge.config import load_board, parse_board
from edge.errors import ConfigError, EdgeError
from edge.rt.native import NO_STOP, load_block
from edge.rt.runtime import STAGE_NAMES, Runtime
from tests.native_blocks import compile_block

ROOT = Path(__file__).resolve().parents[2]

# A block whose effect on the state record needs nothing else in the cycle: it writes the
# tick number (the oracle) into the commanded position of axis 0.
TICK_MARKER_C = r"""
#include <stdlib.h>
#include "block.h"
static void marker_step(void *self, edge_image *img)
{
    (void)self;
    img->q_cmd[0] = (double)img->tick * 1e-3;
}
edge_block *tick_marker_alloc(void)
{
    edge_block *b = calloc(1, sizeof(*b));
    if (b) { b->name = "tick_marker"; b->step = marker_step; }
    return b;
}
"""

NO_MOTION = """
name: bare
cycle: {period_us: 1000}
axes: [{name: a, max_velocity: 1, max_acceleration: 10}]
"""


@pytest.fixture(scope="module")
def marker_library(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("src") / "tick_marker.c"
    source.write_text(TICK_MARKER_C)
    return compile_block(tmp_path_factory.mktemp("blocks"), source)


@pytest.fixture(scope="module")
def clamp_library(tmp_path_factory) -> Path:
    return compile_block(tmp_path_factory.mktemp("blocks"),
                         ROOT / "examples" / "native_block" / "velocity_clamp.c")


def _states(rt: Runtime, ticks: int) -> np.ndarray:
    seen = []
    rt.executor.add_state_listener(lambda tick, recs: seen.append(recs.copy()), 10)
    rt.executor.step(ticks)
    return np.concatenate(seen)


# -- integrators' blocks: their own stage, with or without motion -------------------------
def test_integrators_blocks_run_on_a_board_without_motion(marker_library) -> None:
    marker = load_block(marker_library, "tick_marker_alloc", "edge_block *tick_marker_alloc(void);")
    rt = Runtime(parse_board(NO_MOTION, "bare.yaml"), virtual_time=True, user_blocks=[marker])
    states = _states(rt, 100)
    assert len(states) == 100
    np.testing.assert_array_equal(states["q_cmd"][:, 0], states["tick"] * 1e-3)
    assert [b.name for b in rt.cycle.blocks] == ["tick_marker_alloc"]


def test_the_example_clamp_acts_on_the_demo_motion_board(clamp_library) -> None:
    # demo_axes: both axes move 0.5 rad at up to 1 rad/s; the clamp holds axis 0 to 0.3
    clamp = load_block(clamp_library, "velocity_clamp_alloc",
                       "edge_block *velocity_clamp_alloc(int axis, double limit);", 0, 0.3)
    rt = Runtime(load_board("demo_axes"), virtual_time=True, user_blocks=[clamp])
    states = _states(rt, 3990)     # the move at 2 s takes 0.5 / 0.3 = 1.7 s on axis 0, then holds
    assert np.abs(states["qd_cmd"][:, 0]).max() <= 0.3 + 1e-9
    assert np.abs(states["qd_cmd"][:, 1]).max() == pytest.approx(1.0)
    assert states["q_cmd"][-1, 0] == pytest.approx(0.5)          # the clamped move ended
    assert [b.name for b in rt.cycle.blocks] == ["drive_sim", "setpoint", "velocity_clamp_alloc"]


# -- the tick order, as `edge run --explain` prints it ---------------------------------
def _explain(capsys, *args: str) -> list[str]:
    assert cli.main(["run", "--explain", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_explain_prints_the_blocks_in_the_declared_stage_order(capsys) -> None:
    out = _explain(capsys, "--virtual-time")
    assert f"stages: {' -> '.join(STAGE_NAMES)}" in out
    assert STAGE_NAMES == ("drive", "motion", "integrators", "safety")
    blocks = [re.fullmatch(r"block (\d+): (\w+) \(stage (\w+)\)", line) for line in out
              if line.startswith("block ")]
    assert [int(m[1]) for m in blocks] == list(range(len(blocks)))
    # DESIGN's tick: drive inputs -> trajectory, path player -> observer -> safety monitor
    assert [(m[2], m[3]) for m in blocks] == [
        ("arm_sim", "drive"), ("traj", "motion"), ("path", "motion"),
        ("observer", "safety"), ("safety", "safety")]
    task = next(line for line in out if line.startswith("task motion_controller:"))
    assert "period 10 ticks, deadline 10 ticks" in task and "on miss stop" in task
    assert "bus subscribed: cmd/+" in out
    publishes = next(line for line in out if line.startswith("bus publishes: "))
    assert {"safety/faults", "state/joints", "reply/+"} <= set(publishes[15:].split(", "))
    assert not any(line.startswith(("board sim_arm (virtual", "tick execution")) for line in out)


def test_explain_on_another_board_and_with_mqtt(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    out = _explain(capsys, "--board", "demo_axes", "--mqtt", "mqtt://127.0.0.1:1")
    assert "block 0: drive_sim (stage drive)" in out and "block 1: setpoint (stage motion)" in out
    assert "service mqtt bridge" in out


# -- components and the registry ----------------------------------------------------------
def test_a_missing_component_names_what_and_who_asked() -> None:
    rt = Runtime(parse_board(NO_MOTION, "bare.yaml"), virtual_time=True)
    assert rt.lookup("motion", None) is None
    with pytest.raises(EdgeError, match=r"the caller needs the component 'motion', which no "
                                        r"section of board 'bare' offers"):
        rt.lookup("motion")
    with pytest.raises(EdgeError, match="unknown tick stage 'late'"):
        rt.add_block(object(), "late")


def test_blocks_are_placed_once_at_connect(marker_library) -> None:
    rt = Runtime(parse_board(NO_MOTION, "bare.yaml"), virtual_time=True)
    marker = load_block(marker_library, "tick_marker_alloc", "edge_block *tick_marker_alloc(void);")
    with pytest.raises(EdgeError, match="the runtime is connected"):
        rt.add_block(marker, "integrators")


def test_a_section_that_needs_another_says_so_at_its_line() -> None:
    text = NO_MOTION + "program:\n  - enable: {}\n"
    with pytest.raises(ConfigError) as err:
        parse_board(text, "p.yaml")
    assert (err.value.line, err.value.field) == (6, "program")
    assert "the program section needs a motion section" in str(err.value)


def test_demo_motion_is_for_a_board_without_motion() -> None:
    text = (ROOT / "edge" / "boards" / "sim_arm.yaml").read_text() + "demo_motion: {}\n"
    with pytest.raises(ConfigError, match="a motion or a demo_motion section, not both") \
            as err:
        parse_board(text, "sim_arm.yaml")
    assert err.value.field == "demo_motion"


def test_every_declared_section_is_found_where_the_registry_says() -> None:
    names = list(sections.DECLARED_IN)
    for name in names:
        section = sections.declaration(name)
        assert section.name == name
        assert all(names.index(need) < names.index(name) for need in section.needs)


def test_a_section_left_out_of_the_build_is_not_supported(monkeypatch) -> None:
    monkeypatch.setitem(sections.DECLARED_IN, "logic", "edge.logic_left_out.runtime")
    with pytest.raises(ConfigError, match="section 'logic' is not supported by this build") \
            as err:
        parse_board(NO_MOTION + "logic: {}\n", "l.yaml")
    assert (err.value.line, err.value.field) == (5, "logic")


def test_no_section_reads_another_through_the_runtime() -> None:
    components = "|".join(Runtime(load_board("sim_arm"), virtual_time=True).explain()["components"])
    read_as_attribute = re.compile(rf"getattr\((self\.|c\.)?runtime\b|"
                                   rf"runtime\.({components}|path_block)\b")
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "edge").rglob("*.py")
                 if read_as_attribute.search(path.read_text())]
    assert offenders == []


def test_the_motion_controller_does_not_import_the_section_that_builds_it() -> None:
    tree = ast.parse((ROOT / "edge" / "motion" / "controller.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert "edge.motion.runtime" not in imported


@pytest.mark.parametrize("with_safety,expected", [(True, 2), (False, 0)])
def test_the_safety_sections_estop_category_reaches_the_cycle(with_safety, expected) -> None:
    # the board's estop_category (2: power kept), else the cycle's default: power off (0)
    from edge.motion.arm_sim import ARM_SIM_CMD_ESTOP

    text = (ROOT / "edge" / "boards" / "sim_arm.yaml").read_text().replace(
        "estop_category: 1}", "estop_category: 2}")
    board = parse_board(text, "sim_arm.yaml")
    board.sections.pop("program")
    if not with_safety:
        board.sections.pop("safety")
    rt = Runtime(board, virtual_time=True)
    rt.executor.step(10)
    rt.cycle.push_command(-1, rt.lookup("motion").drive_index, ARM_SIM_CMD_ESTOP, [1.0])
    latched = _states(rt, 20)["stop_category"]
    assert latched[latched != NO_STOP][0] == expected     # the first tick of the stop


def test_explain_writes_nothing_durable(capsys, tmp_path) -> None:
    usage = tmp_path / "usage.json"
    board = tmp_path / "b.yaml"
    board.write_text(NO_MOTION + "acquisition:\n  devices:\n    - {name: d, kind: simulated}\n"
                     "  channels:\n    - {name: c, device: d}\n"
                     f"  usage: {{file: {usage}}}\n")
    out = _explain(capsys, "--board", str(board))
    assert "task acquisition: period 100 ticks, deadline 100 ticks, offset 0, priority 0, " \
           "on miss log" in out
    assert not usage.exists()             # a run would count a power cycle in it


# a section of this test module's own, registered for one test: adding a section is one
# declaration beside its code and one registry entry
def _probe_build(runtime: Runtime, settings) -> None:
    runtime.add_component("probe", settings)
    runtime.on_connect(lambda: runtime.lookup(settings["wants"]))


SECTIONS = (sections.Section("probe", lambda node, board: node.plain(), _probe_build),)


def test_a_section_added_to_the_registry_is_parsed_built_and_connected(monkeypatch) -> None:
    monkeypatch.setitem(sections.DECLARED_IN, "probe", __name__)
    rt = Runtime(parse_board(NO_MOTION + "probe: {wants: probe}\n", "p.yaml"))
    assert rt.lookup("probe") == {"wants": "probe"}
    with pytest.raises(ConfigError) as err:      # asked at connect: the error says who
        Runtime(parse_board(NO_MOTION + "probe: {wants: motion}\n", "p.yaml"))
    assert (err.value.file, err.value.line, err.value.field) == ("p.yaml", 5, "probe")
    assert "the probe section needs the component 'motion', which no section of board " \
           "'bare' offers (offered: probe)" in err.value.message

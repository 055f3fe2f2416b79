"""Motion requests are one table (MOTION_REQUESTS): the controller's handlers and bus
commands, the MQTT built-in commands and the program steps are all read from it, so a
request added to the table is known to every reader and the docs name exactly its rows."""

import re
from pathlib import Path

import pytest
import yaml

from edge.config import parse_board
from edge.errors import ConfigError
from edge.motion.program import STEPS
from edge.motion.requests import MOTION_REQUESTS, MotionRequest, State
from edge.rt.commands import ArgSpec, builtin_commands, parse_commands
from tests.import_graph import imports

ROOT = Path(__file__).resolve().parents[2]


def _doc(page: str) -> str:
    """The page with its line breaks and indentation as single spaces."""
    return " ".join((ROOT / "docs" / page).read_text(encoding="utf-8").split())


def _names(text: str) -> list[str]:
    return re.findall(r"`(\w+)`", text)


def test_the_mqtt_built_ins_are_the_table_s_wire_requests():
    wire = {r.name for r in MOTION_REQUESTS.values() if r.wire_args is not None}
    assert set(builtin_commands(6)) == wire
    # an MQTT command reaches the controller as the bus topic cmd/<name>
    assert all(MOTION_REQUESTS[name].bus for name in wire)
    with pytest.raises(ConfigError, match="unknown built-in command 'teach'"):
        parse_commands(_node("commands: [teach]\n"), 6)


def test_the_command_checks_do_not_import_the_motion_package():
    """The table uses rt/commands.py's argument specs: one way, rt/commands.py reaches
    the built-ins by name only (edge.rt imports no section package)."""
    graph = imports("edge")
    assert not any(m.startswith("edge.motion") for m in graph["edge.rt.commands"])
    assert "edge.rt.commands" in graph["edge.motion.requests"]


def _node(text: str):
    from edge.config import load_yaml

    return load_yaml(text, "c.yaml").child("commands")


def test_the_program_steps_are_the_table_s_steps_and_wait():
    assert set(STEPS) == {r.name for r in MOTION_REQUESTS.values() if r.step} | {"wait"}
    board = yaml.safe_load((ROOT / "edge/boards/sim_arm.yaml").read_text())
    board["program"] = [{"jog": {"axis": 0}}]
    with pytest.raises(ConfigError) as info:
        parse_board(yaml.safe_dump(board), "p.yaml")
    listed = re.search(r"unknown step 'jog' \(steps: ([^)]*)\)", info.value.message)[1]
    assert listed.split(", ") == list(STEPS)
    for name, step in STEPS.items():
        if step is not None:
            assert step.fields == MOTION_REQUESTS[name].step.fields


def test_the_docs_name_the_table():
    bus = _doc("bus.md")
    built_ins = bus[bus.index("Built-ins: "):bus.index("a board can define its own")]
    documented = [n for n in _names(built_ins) if n in MOTION_REQUESTS]
    assert set(documented) == set(builtin_commands(6))
    for name, spec in builtin_commands(6).items():
        assert set(spec.args) <= set(_names(built_ins)), name
    controller = _doc("motion-controller.md")
    takes = controller[controller.index("The controller takes `cmd/<name>`"):]
    takes = takes[:takes.index("(MQTT commands")]
    assert set(_names(takes)) - {"cmd"} == {r.name for r in MOTION_REQUESTS.values() if r.bus}
    demo = controller[controller.index("## The demo program"):]
    demo = demo[:demo.index("<!-- doc-test")]
    words = {w for span in re.findall(r"`([^`]+)`", demo) for w in re.findall(r"\w+", span)}
    assert set(STEPS) <= words
    assert {f for s in STEPS.values() if s for f in s.fields} <= words


# -- a request added to the table is taken everywhere --------------------------------------
@pytest.fixture
def wave(monkeypatch):
    """A request `wave`, offered from Python, on the bus and over MQTT."""
    seen = []

    def handler(c, ctx, height=1.0):
        c._require(State.IDLE)
        seen.append((ctx.tick, height))

    monkeypatch.setitem(MOTION_REQUESTS, "wave", MotionRequest(
        "wave", handler, bus=True, wire_args=lambda n: {"height": ArgSpec("float", False, 0, 2)}))
    return seen


def test_a_new_request_is_one_table_entry(rt, wave):
    assert builtin_commands(6)["wave"].validate(b'{"args": {"height": 1.5}}')["args"] == \
        {"height": 1.5}
    r = rt.lookup("motion").request("wave", height=0.5)
    rt.bus.publish("cmd/wave", {"id": 3, "args": {"height": 2.0}})
    rt.executor.step(20)
    assert r.status == "accepted" and [h for _, h in wave] == [0.5, 2.0]
    last = rt.lookup("motion").history[-1]
    assert last.name == "wave" and last.id == 3


def test_a_request_not_on_the_bus_is_ignored_there(rt):
    assert not MOTION_REQUESTS["teach"].bus
    before = len(rt.lookup("motion").history)
    rt.bus.publish("cmd/teach", {"id": 4, "args": {"on": True}})
    rt.executor.step(20)
    assert len(rt.lookup("motion").history) == before and rt.lookup("motion").state == State.IDLE

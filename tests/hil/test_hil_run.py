"""`edge hil run` on the real controller in virtual time: the shipped scenarios pass, a
deliberately wrong variant of each fails at the tick its own definition gives, the same
scenario and seed give the same trace bit for bit (in one process or a pool of them),
and the JUnit and Parquet outputs are read back with tools that are not ours: an XSD
validator against Jenkins' published JUnit schema, and pyarrow."""

from pathlib import Path

import pytest

from edge.cli import main
from hil.cli import SHIPPED
from hil.runner import execute
from hil.scenario import load_scenario

DATA = Path(__file__).resolve().parent / "data"


def runs(path, seed=None):
    scenario = load_scenario(path, seed)
    return [execute(scenario.run(i)) for i in range(len(scenario))]


@pytest.mark.parametrize("name", ["collision_link3", "estop_during_move", "watchdog_stall",
                                  "logic_interlock", "wall_approach"])
def test_shipped_scenario_passes(name):
    results = runs(SHIPPED / f"{name}.yaml")
    assert results
    for r in results:
        assert r.error is None and r.passed, "\n".join(r.failures() + r.notes)
        assert not r.notes                  # no step of the timeline was rejected


def variant(tmp_path, name, old, new):
    text = (SHIPPED / f"{name}.yaml").read_text()
    assert old in text
    path = tmp_path / f"{name}_wrong.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


# (scenario, text replaced, replacement, the tick the definition gives for the failure)
WRONG = [
    # the observer's category is 1: a category 2 expected 10 ticks after the hit at 600
    ("collision_link3", "expect: latched AND collision AND category = 1",
     "expect: latched AND collision AND category = 2", 610),
    # the stall starts at 600: a watchdog trip expected within 100 ticks cannot be seen
    ("watchdog_stall", "within: 260 ticks", "within: 100 ticks", 700),
    # the door opens at 600; a category 1 stop expected within 20 ms (the rule asks for 2)
    ("logic_interlock", "expect: latched AND requested AND category = 2",
     "expect: latched AND requested AND category = 1", 620),
    # the wall margin is 0.01 m: ending 0.02 m from the wall fails at the last tick (3.5 s)
    ("wall_approach", "ABS(distance - 0.01)", "ABS(distance - 0.02)", 3499),
]


@pytest.mark.parametrize("name,old,new,tick", WRONG, ids=[w[0] for w in WRONG])
def test_a_wrong_variant_fails_at_the_tick_of_its_window(tmp_path, name, old, new, tick):
    for r in runs(variant(tmp_path, name, old, new)):
        assert not r.passed and r.error is None
        failed = [v for v in r.verdicts if not v.passed]
        assert len(failed) == 1 and failed[0].tick == tick
        assert f"failed at tick {tick}" in r.failures()[0]


def test_a_wrong_estop_variant_fails_two_ticks_after_each_press(tmp_path):
    path = variant(tmp_path, "estop_during_move", "category = 1 AND stopping",
                   "category = 0 AND stopping")
    scenario = load_scenario(path)
    for i, r in enumerate(runs(path)):
        press = scenario.param_sets[i]["press_tick"]
        failed = [v for v in r.verdicts if not v.passed]
        assert [v.tick for v in failed] == [press + 2]
        assert "category = 1" in failed[0].message()      # what it was instead


def test_same_scenario_and_seed_same_trace_other_seed_other_draws():
    path = SHIPPED / "estop_during_move.yaml"
    first, again = runs(path), runs(path)
    assert [r.sha256 for r in first] == [r.sha256 for r in again]
    assert len({r.sha256 for r in first}) == len(first)   # two press ticks, two traces
    other = load_scenario(path, seed=8).param_sets
    assert other != load_scenario(path).param_sets


def test_run_command_junit_validates_against_the_published_schema(tmp_path, capsys):
    xmlschema = pytest.importorskip("xmlschema")
    wrong = variant(tmp_path, "collision_link3", "category = 1", "category = 2")
    junit = tmp_path / "out.xml"
    rc = main(["hil", "run", str(SHIPPED / "logic_interlock.yaml"), str(wrong),
               "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 3 and "FAIL collision_link3[torque_nm=30]" in out
    schema = xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))
    schema.validate(str(junit))                     # raises on any departure
    broken = junit.read_text().replace("<testcase name=", "<testcase label=", 1)
    assert not schema.is_valid(broken)              # the schema does look: name is required
    import xml.etree.ElementTree as ET

    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["logic_interlock", "collision_link3[torque_nm=30]",
                                              "collision_link3[torque_nm=60]"]
    assert cases[0].find("failure") is None
    for case in cases[1:]:
        assert "failed at tick 610" in case.find("failure").get("message")
    assert root.get("tests") == "3" and root.get("failures") == "2"


def test_run_command_traces_are_parquet_files(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    trace_dir = tmp_path / "traces"
    rc = main(["hil", "run", str(SHIPPED / "collision_link3.yaml"), "--trace", str(trace_dir)])
    out = capsys.readouterr().out
    assert rc == 0
    files = sorted(trace_dir.glob("*.parquet"))
    assert [f.name for f in files] == ["collision_link3-torque_nm=30.parquet",
                                       "collision_link3-torque_nm=60.parquet"]
    for f in files:
        table = pq.read_table(f)
        cols = table.to_pydict()
        assert cols["tick"] == list(range(1200))          # duration 1.2 s at 1 kHz
        first = cols["latched"].index(True)
        assert 600 <= first <= 610                        # the window the scenario asserts
        assert all(cols["hit"][600:800]) and not any(cols["hit"][:600] + cols["hit"][800:])
        sha = table.schema.metadata[b"edge.trace_sha256"].decode()
        assert f"trace sha256 {sha}" in out


def test_jobs_give_the_same_traces_as_one_process(capsys):
    path = str(SHIPPED / "estop_during_move.yaml")
    assert main(["hil", "run", path]) == 0
    one = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert main(["hil", "run", path, "--jobs", "2"]) == 0
    two = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    strip = [line.split(": ", 1)[1].split(", ")[0::2] for line in one]   # ticks and sha
    assert len(one) == 2 and strip == [line.split(": ", 1)[1].split(", ")[0::2] for line in two]


def test_check_command_reports_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((SHIPPED / "collision_link3.yaml").read_text().replace(
        "kind: collision", "kind: colission"))
    assert main(["hil", "check", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown fault kind 'colission'" in err
    assert err.startswith(f"edge: error: {bad}:")
    assert main(["hil", "check", str(SHIPPED)]) == 0
    assert capsys.readouterr().out.count("is valid") == len(list(SHIPPED.glob("*.yaml")))


def test_a_shipped_scenario_is_found_by_name(capsys):
    assert main(["hil", "check", "watchdog_stall"]) == 0
    assert "scenario 'watchdog_stall' is valid" in capsys.readouterr().out
    assert main(["hil", "check", "no_such_scenario"]) == 2
    names = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
    assert f"shipped scenarios: {names}" in capsys.readouterr().err


def test_a_wheel_ships_the_scenarios_and_the_command(installed_edge, tmp_path):
    """From a wheel in a fresh venv (no checkout on the path): `edge hil` comes through its
    entry point and finds the shipped scenarios, which are package data."""
    out = installed_edge.run("edge", "hil", "check", "collision_link3", "estop_during_move",
                             "watchdog_stall", "logic_interlock", cwd=tmp_path)
    assert out.count("is valid") == 4 and "site-packages/hil/scenarios/" in out


def test_an_injected_deadline_miss_applies_the_tasks_policy(tmp_path):
    """The motion controller's policy on a miss is a category 1 stop with the deadline
    fault (docs/motion-controller.md); its releases come every 10 ticks from tick 100,
    so the one at 600 is the first to count as late."""
    text = (SHIPPED / "collision_link3.yaml").read_text()
    text = text[:text.index("parameters:")] + """\
signals:
  latched: {stop: latched}
  category: {stop: category}
  deadline: {fault: deadline}
  misses: {task: motion_controller.misses}
  late: {injected: late}
steps:
  - at: 100
    enable: {}
  - at: 300
    move_joint: {positions: [1.0, -1.0, 1.0, 0.0, 0.0, 0.0], speed_scale: 0.5}
  - at: 595
    fault: {kind: deadline_miss, name: late, task: motion_controller}
assert:
  - never: latched AND NOT deadline
  - after: late
    within: 6 ticks
    expect: latched AND deadline AND category = 1 AND misses = 1
  - at_end: misses = 1
"""
    path = tmp_path / "late.yaml"
    path.write_text(text)
    (r,) = runs(path)
    assert r.passed, "\n".join(r.failures())
    wrong = tmp_path / "late_wrong.yaml"
    wrong.write_text(text.replace("within: 6 ticks", "within: 4 ticks"))
    (r,) = runs(wrong)
    assert [v.tick for v in r.verdicts if not v.passed] == [599]

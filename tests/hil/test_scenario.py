"""Scenario files: what `edge hil check` accepts and, for what it refuses, that the one
error line names the file, the line (and inside an expression, the column) and the field.
Positions are found in the test's own text, not taken from the parser."""

import numpy as np
import pytest

from edge.errors import ConfigError
from hil.check_command import check_file
from hil.scenario import load_scenario

BASE = """\
name: demo
board: sim_arm
overrides: {program: null, acquisition: null}
duration: 0.5 s
signals:
  latched: {stop: latched}
  q2: {state: q.2}
steps:
  - at: 100
    enable: {}
assert:
  - always: NOT latched
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def where(text, needle):
    """(line, column), 1-based, of the first `needle` in `text`."""
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def error_of(path, seed=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        check_file(path, seed)
    return info.value


def test_a_valid_scenario_checks(tmp_path):
    line, runs = check_file(write(tmp_path, BASE))
    assert runs == 1
    assert "scenario 'demo' is valid (1 run, 2 signals, 1 steps, 1 assertions)" in line


def test_shipped_scenarios_check():
    from hil.cli import SHIPPED

    files = sorted(SHIPPED.glob("*.yaml"))
    assert {p.stem for p in files} >= {"collision_link3", "estop_during_move",
                                       "watchdog_stall", "logic_interlock", "wall_approach"}
    for path in files:
        assert "is valid" in check_file(path)[0]


def test_unknown_name_in_an_expression_gives_line_and_column(tmp_path):
    text = BASE.replace("always: NOT latched", "always: NOT latched OR q3 > 1.0")
    err = error_of(write(tmp_path, text))
    line, column = where(text, "q3 > 1.0")
    assert (err.line, err.column) == (line, column)
    assert "unknown name 'q3'" in err.message and err.field == "assert[0].always"
    assert err.one_line().startswith(f"{tmp_path / 's.yaml'}:{line}:{column}: ")


def test_a_syntax_error_in_a_quoted_expression_points_inside_the_quotes(tmp_path):
    text = BASE.replace("always: NOT latched", "always: \"NOT latched AND (q2 >\"")
    err = error_of(write(tmp_path, text))
    line, column = where(text, '"NOT latched')
    assert err.line == line and err.column == column + 1 + len("NOT latched AND (q2 >")


def test_an_error_in_a_block_expression_counts_its_lines(tmp_path):
    text = BASE.replace("  - always: NOT latched\n",
                        "  - always: |\n      NOT latched\n      AND q2 >> 1.0\n")
    err = error_of(write(tmp_path, text))
    line, column = where(text, ">> 1.0")
    assert err.line == line and err.column in (column, column + 1)


def test_a_non_boolean_assertion_is_refused(tmp_path):
    err = error_of(write(tmp_path, BASE.replace("always: NOT latched", "always: q2 + 1.0")))
    assert "BOOL" in err.message


def test_unknown_signal_source_and_field(tmp_path):
    text = BASE.replace("q2: {state: q.2}", "q2: {joint: q.2}")
    err = error_of(write(tmp_path, text))
    assert err.line == where(text, "q2: {joint")[0] and "a signal names one source" in err.message
    text = BASE.replace("q2: {state: q.2}", "q2: {state: q.9}")
    err = error_of(write(tmp_path, text))
    assert err.field == "signals.q2.state" and "0 .. 5" in err.message
    text = BASE.replace("latched: {stop: latched}", "latched: {fault: colision}")
    err = error_of(write(tmp_path, text))
    assert "unknown fault 'colision'" in err.message and "collision" in err.message


def test_unknown_fault_kind_and_bad_fault_parameters(tmp_path):
    steps = "  - at: 200\n    fault: {kind: lightning, joint: 2}\n"
    text = BASE.replace("assert:", steps + "assert:")
    err = error_of(write(tmp_path, text))
    assert err.line == where(text, "lightning")[0]
    assert "unknown fault kind 'lightning'" in err.message
    text = BASE.replace("assert:", "  - at: 200\n    fault: {kind: collision, joint: 6, "
                                   "torque_nm: 10}\nassert:")
    err = error_of(write(tmp_path, text))
    assert err.field == "steps[1].fault.joint" and "<= 5" in err.message


def test_a_stall_needs_an_end(tmp_path):
    text = BASE.replace("assert:", "  - at: 200\n    fault: {kind: stall}\nassert:")
    assert "give it a 'for'" in error_of(write(tmp_path, text)).message


def test_a_step_past_the_end_is_refused(tmp_path):
    text = BASE.replace("  - at: 100\n", "  - at: 500 ms\n")
    err = error_of(write(tmp_path, text))
    assert "past the end of the run (duration 500 ticks)" in err.message


def test_durations_are_whole_ticks(tmp_path):
    text = BASE.replace("duration: 0.5 s", "duration: 0.5005 s")
    assert "not a whole number of ticks" in error_of(write(tmp_path, text)).message
    text = BASE.replace("duration: 0.5 s", "duration: half")
    assert "expected a duration" in error_of(write(tmp_path, text)).message
    run = load_scenario(write(tmp_path, BASE.replace("at: 100", "at: 75 ms"))).run(0)
    assert run.duration_ticks == 500 and run.steps[0].tick == 75


def test_wait_moves_the_cursor(tmp_path):
    steps = "  - wait: 20 ticks\n  - reset: {}\n  - wait: 0.01 s\n  - disable: {}\n"
    run = load_scenario(write(tmp_path, BASE.replace("assert:", steps + "assert:"))).run(0)
    assert [(s.kind, s.tick) for s in run.steps] == [("enable", 100), ("reset", 120),
                                                     ("disable", 130)]


def test_an_override_error_names_the_scenario_line(tmp_path):
    text = BASE.replace("overrides: {program: null, acquisition: null}",
                        "overrides:\n  program: null\n  acquisition: null\n"
                        "  cycle: {period_us: 1000, watchdog_ms: 0.1}")
    err = error_of(write(tmp_path, text))
    assert err.file == str(tmp_path / "s.yaml") and err.line == where(text, "cycle:")[0]
    assert err.field == "cycle.watchdog_ms"


def test_overrides_merge_and_null_removes(tmp_path):
    text = BASE.replace("overrides: {program: null, acquisition: null}",
                        "overrides: {program: null, acquisition: null, "
                        "cycle: {watchdog_ms: 300}}")
    board = load_scenario(write(tmp_path, text)).run(0).board
    assert "program" not in board.sections and "acquisition" not in board.sections
    assert board.cycle.watchdog_ms == 300.0 and board.cycle.period_ns == 1_000_000   # kept
    assert "logic" in board.sections


def test_a_sweep_makes_one_run_per_combination(tmp_path):
    text = BASE.replace("duration: 0.5 s", "duration: 0.5 s\nparameters:\n  a: [1, 2, 3]\n"
                                           "  b: [0.5, 1.5]")
    scenario = load_scenario(write(tmp_path, text))
    assert [s for s in scenario.param_sets] == [
        {"a": a, "b": b} for a in (1, 2, 3) for b in (0.5, 1.5)]
    assert scenario.run(5).id == "demo[a=3,b=1.5]"


def test_random_draws_follow_the_seed(tmp_path):
    text = BASE.replace("duration: 0.5 s", "seed: 11\nduration: 0.5 s\nparameters:\n"
                                           "  t: {integers: [100, 200], count: 3}\n"
                                           "  x: {uniform: [0.0, 1.0], count: 2}")
    path = write(tmp_path, text)
    rng = np.random.default_rng(11)                   # drawn in declaration order
    t, x = rng.integers(100, 200, 3, endpoint=True), rng.uniform(0.0, 1.0, 2)
    assert load_scenario(path).param_sets == [{"t": int(a), "x": float(b)} for a in t for b in x]
    other = np.random.default_rng(12).integers(100, 200, 3, endpoint=True)
    assert [p["t"] for p in load_scenario(path, seed=12).param_sets[::2]] == list(other)


def test_parameters_substitute_and_are_constants_in_expressions(tmp_path):
    text = BASE.replace("duration: 0.5 s", "duration: 0.5 s\nparameters: {start: [120], "
                                           "limit: [2.5]}")
    text = text.replace("at: 100", "at: $start").replace("always: NOT latched",
                                                          "always: q2 < limit")
    run = load_scenario(write(tmp_path, text)).run(0)
    assert run.steps[0].tick == 120
    assert run.assertions[0].expect.names == ["q2", "limit"]
    err = error_of(write(tmp_path, text.replace("at: $start", "at: $stat")))
    assert "unknown parameter 'stat'" in err.message


def test_an_injected_signal_names_a_fault_of_the_steps(tmp_path):
    text = BASE.replace("q2: {state: q.2}", "q2: {state: q.2}\n  hit: {injected: hit}")
    err = error_of(write(tmp_path, text))
    assert "no fault named 'hit'" in err.message and err.line == where(text, "hit: {")[0]


def test_what_the_controller_lacks_is_found_by_check(tmp_path):
    text = BASE.replace("q2: {state: q.2}", "q2: {task: planner.misses}")
    err = error_of(write(tmp_path, text))
    assert "no task named 'planner'" in err.message and "motion_controller" in err.message
    assert err.line == where(text, "q2: {task")[0]


def test_an_error_in_an_overridden_logic_program_names_the_scenario_line(tmp_path):
    text = BASE.replace("overrides: {program: null, acquisition: null}",
                        "overrides:\n  program: null\n  acquisition: null\n  logic:\n"
                        "    program: |\n      VAR_OUTPUT x : BOOL; END_VAR\n"
                        "      x := qd0 >;\n")
    err = error_of(write(tmp_path, text))
    assert err.file == str(tmp_path / "s.yaml") and err.line == where(text, "x := qd0")[0]


def test_removing_what_the_board_lacks_is_a_typo(tmp_path):
    text = BASE.replace("program: null", "progam: null")
    err = error_of(write(tmp_path, text))
    assert "the board has no 'progam' to remove" in err.message


def test_a_measure_changes_a_number(tmp_path):
    text = BASE + "measure:\n  - {name: travel, change: q2, from: latched}\n"
    run = load_scenario(write(tmp_path, text)).run(0)
    assert [m.name for m in run.measures] == ["travel"]
    err = error_of(write(tmp_path, text.replace("change: q2", "change: latched")))
    assert "expected a REAL or INT expression" in err.message


def test_empty_and_endless_scenarios_are_refused(tmp_path):
    assert "the scenario file is empty" in error_of(write(tmp_path, "\n")).message
    err = error_of(write(tmp_path, BASE.replace("duration: 0.5 s", "duration: 1000 s")))
    assert "at most 200000 ticks, got 1000000" in err.message and err.field == "duration"

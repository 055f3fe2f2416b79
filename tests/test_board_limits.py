"""Hostile board files: bounded cost, one readable line (issue 12, defect 9).

Each case runs the real `edge check` in a subprocess with a hard time and memory bound,
so a regression fails here instead of hanging or swapping the suite.
"""

import resource
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import MAX_ALIASES, MAX_BOARD_BYTES, MAX_DEPTH, parse_board
from edge.errors import ConfigError

EDGE = [sys.executable, "-m", "edge.cli"]
HEAD = "name: t\naxes:\n  - {name: a, max_velocity: 1, max_acceleration: 2}\n"


def _limit_memory() -> None:
    gib = 1024 ** 3
    resource.setrlimit(resource.RLIMIT_AS, (2 * gib, 2 * gib))


def check_in_subprocess(path):
    proc = subprocess.run([*EDGE, "check", str(path)], capture_output=True, text=True,
                          timeout=30, preexec_fn=_limit_memory)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def billion_laughs(levels: int = 9) -> str:
    # 9 levels of 9 aliases each: 9**9 (387 million) values once expanded
    text = HEAD + "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels + 1):
        text += f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n"
    return text


def test_nested_aliases_are_refused_quickly(tmp_path):
    board = tmp_path / "lol.yaml"
    board.write_text(billion_laughs())
    line = check_in_subprocess(board)
    assert f"{board}:" in line and "expands to more than" in line


def test_too_many_aliases(tmp_path):
    board = tmp_path / "aliases.yaml"
    board.write_text(HEAD + "x: &x 1\ny: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n")
    line = check_in_subprocess(board)
    assert f"{board}:5" in line and f"more than {MAX_ALIASES} aliases" in line


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting(tmp_path, opening, closing):
    board = tmp_path / "deep.yaml"
    board.write_text(HEAD + "x: " + opening * 20_000 + "1" + closing * 20_000 + "\n")
    line = check_in_subprocess(board)
    assert f"{board}:4" in line and f"nested more than {MAX_DEPTH} levels" in line


def test_nesting_through_aliases_is_bounded():
    # each anchor is shallow, but aliases stack them: 10 x 40 levels once expanded
    text = HEAD + "l0: &l0 " + "[" * 40 + "1" + "]" * 40 + "\n"
    for i in range(1, 10):
        text += f"l{i}: &l{i} " + "[" * 39 + f"*l{i - 1}" + "]" * 39 + "\n"
    with pytest.raises(ConfigError, match="nested more than"):
        parse_board(text, "b.yaml")


def test_nul_byte_names_the_line(tmp_path):
    board = tmp_path / "nul.yaml"
    board.write_bytes(HEAD.encode() + b"cycle: {period_us: 1\x0000}\n")
    line = check_in_subprocess(board)
    assert f"{board}:4" in line and "U+0000" in line


def test_oversized_file(tmp_path):
    board = tmp_path / "big.yaml"
    board.write_text(HEAD + "# " + "x" * MAX_BOARD_BYTES + "\n")
    line = check_in_subprocess(board)
    assert str(board) in line and "larger than 1024 KiB" in line


def test_complex_key_is_one_line():
    with pytest.raises(ConfigError, match="plain text") as info:
        parse_board(HEAD + "? [a, b]\n: 1\n", "b.yaml")
    assert info.value.line == 4


def test_a_normal_alias_still_works():
    board = parse_board("name: t\naxes:\n  - &ax {name: a, max_velocity: 1, "
                        "max_acceleration: 2}\n", "b.yaml")
    assert board.axes[0].max_velocity == 1.0


@pytest.mark.parametrize("text, value", [("1e12", 1e12), ("2E-3", 2e-3), ("+5e+2", 500.0),
                                         ("1.5e3", 1500.0), ("1_000", 1000)])
def test_exponent_floats_without_a_dot(text, value):
    board = parse_board(f"name: t\naxes:\n  - {{name: a, max_velocity: {text}, "
                        "max_acceleration: 2}\n", "b.yaml")
    assert board.axes[0].max_velocity == value


def test_exponent_float_resolver_leaves_strings_alone():
    # a name that looks like an exponent only when unquoted stays a string when quoted
    board = parse_board("name: '1e3'\naxes:\n  - {name: '2e5', max_velocity: 1, "
                        "max_acceleration: 2}\n", "b.yaml")
    assert board.name == "1e3" and board.axes[0].name == "2e5"


YAML_BITS = ["name: t\n", "axes:\n", "  - ", "{", "}", "[", "]", "&a ", "*a", ": ", ", ",
             "? ", "- ", "\n", "  ", "'", '"', "!!str ", "!!python/object ", "1e3", "\x00",
             "\t", "#", "|\n", "<<: *a\n", "%YAML 1.1\n", "---\n", "...\n", "\ufeff", "\x85"]


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=4)), max_size=60))
def test_any_text_is_a_board_or_one_config_error(parts):
    """Whatever the text, parse_board returns a Board or raises ConfigError with the file
    named: never another exception (a traceback at the command line)."""
    try:
        parse_board("".join(parts), "b.yaml")
    except ConfigError as exc:
        assert exc.file == "b.yaml" and "\n" not in str(exc).strip()

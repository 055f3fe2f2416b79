"""Board files: every error names the file, the line and the field."""

import pytest

from edge.config import load_board, parse_board
from edge.errors import ConfigError

GOOD = """name: t
cycle:
  period_us: 500
axes:
  - {name: a, max_velocity: 1, max_acceleration: 2}
"""


def error_of(text):
    with pytest.raises(ConfigError) as info:
        parse_board(text, "board.yaml")
    return info.value


def test_good_board():
    board = parse_board(GOOD, "board.yaml")
    assert board.cycle.period_ns == 500_000 and board.axes[0].max_acceleration == 2.0


def test_shipped_board_loads():
    assert len(load_board("sim_arm").axes) == 6


@pytest.mark.parametrize("text, line, field, words", [
    (GOOD.replace("period_us: 500", "period_us: 10"), 3, "cycle.period_us", ">= 50"),
    (GOOD.replace("period_us: 500", "period_s: 1"), 3, "cycle.period_s", "unknown field"),
    (GOOD.replace("max_velocity: 1", "max_velocity: -1"), 5, "axes[0].max_velocity", ">="),
    (GOOD + "  - {name: a, max_velocity: 1, max_acceleration: 2}\n", 6, "axes[1].name",
     "unique"),
    (GOOD.replace("name: t\n", "name: t\nname: u\n"), 2, "name", "duplicate"),
    (GOOD + "bogus: 1\n", 6, "bogus", "unknown field"),
    (GOOD.replace("period_us: 500", "period_us: 500\n  busy_tail_us: 900"), 4,
     "cycle.busy_tail_us", "cannot exceed"),
    ("name: t\ncycle: {}\n", 1, "axes", "missing"),
    ("name: t\naxes: [\n", 3, None, "YAML syntax"),
])
def test_errors_point_at_the_line_and_field(text, line, field, words):
    err = error_of(text)
    assert err.file == "board.yaml" and err.line == line
    assert err.field == field
    assert words in str(err)
    assert str(err).startswith(f"board.yaml:{line}")


def _plain(node):
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value


def _lines(node, out):
    out.append((node.path, node.line))
    for child in (node.value.values() if isinstance(node.value, dict) else
                  node.value if isinstance(node.value, list) else ()):
        _lines(child, out)
    return out


def test_board_yaml_reads_as_pyyamls_own_python_loader_reads_it():
    # Another implementation as the oracle: PyYAML's pure-Python SafeLoader (the board
    # loader parses with libyaml when it is there); values and every node's line agree.
    import yaml

    from edge.config import load_yaml
    text = open(load_board("sim_arm").file).read() + "extra: [1.5, -2, x, {k: null}]\n"
    ours = load_yaml(text, "b.yaml")
    assert _plain(ours) == yaml.load(text, Loader=yaml.SafeLoader)
    reference = yaml.compose(text, Loader=yaml.SafeLoader)

    def ref_lines(node, path, out):
        out.append((path, node.start_mark.line + 1))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                ref_lines(v, f"{path}.{k.value}".lstrip("."), out)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                ref_lines(v, f"{path}[{i}]", out)
        return out
    assert _lines(ours, []) == ref_lines(reference, "", [])


def test_a_forbidden_character_after_non_ascii_text_names_its_line():
    text = "name: t\n# ééééééééééééééé ünïcödé\n# ---\nx: 1\x00\n"
    e = error_of(text)
    assert e.line == 4 and "U+0000" in e.message

"""`edge bench mutation`: the mutants it makes (Python and C), and a run on a tiny tree
whose tests catch some mutants and miss others, counted exactly (not a timing test)."""

import argparse
import ast
import textwrap

import pytest

from bench.mutation import (
    Target,
    _mask_c,
    c_mutants,
    mutate_module,
    python_mutants,
    write_c_mutant,
    write_python_mutant,
)
from edge.cli import build_parser
from edge.errors import EdgeError

MODULE = textwrap.dedent('''\
    """A module under mutation."""
    import logging

    log = logging.getLogger(__name__)


    def within(x: float, lo: float = 0, hi: float = 10) -> bool:
        """Docstring: no sites here 1 < 2."""
        log.debug("checking %d", 3)
        if not lo <= x <= hi and x != 5:
            return False
        return True
    ''')


def test_python_sites_and_what_each_mutant_changes(tmp_path):
    (tmp_path / "mod.py").write_text(MODULE)
    n, mutants = python_mutants(tmp_path, "mod.py")
    kinds = sorted(m.kind for m in mutants)
    # <=, <=, != (3 cmp), `and`, `not`, three constants (0, 10, 5) +-1, the if body's
    # statement; nothing in the docstring, the annotations or the logging call
    assert n == len(mutants) == 12
    assert kinds == ["bool", "cmp", "cmp", "cmp", *["const"] * 6, "drop", "not"]
    texts = set()
    for m in mutants:
        write_python_mutant(tmp_path, MODULE, m)
        text = (tmp_path / "mod.py").read_text()
        ast.parse(text)                                   # every mutant is valid Python
        assert text not in texts and ast.dump(ast.parse(text)) != ast.dump(ast.parse(MODULE))
        texts.add(text)
        assert m.line in (7, 10, 11) and m.description
    descriptions = {m.description for m in mutants}
    assert {"<= -> <", "!= -> ==", "and -> or", "dropped `not`", "constant 10 -> 11",
            "constant 0 -> -1"} <= descriptions


C_SOURCE = textwrap.dedent('''\
    #include <math.h>
    /* a comment with a < b and 7 */
    static int check(const struct s *p, double q, double lo, double hi)
    {
        if (q < lo || q > hi)        // 3 > 2
            return fabs(q - lo) > 1 ? 1 : 2;
        return fmin(p->x, hi) >= 0;
    }
    ''')


def test_c_sites_skip_comments_includes_and_arrows(tmp_path):
    assert "<" not in _mask_c(C_SOURCE).split("\n")[0] + _mask_c(C_SOURCE).split("\n")[1]
    (tmp_path / "x.c").write_text(C_SOURCE)
    n, mutants = c_mutants(tmp_path, "x.c")
    got = sorted((m.line, m.description) for m in mutants)
    assert got == sorted([
        (5, "< -> <="), (5, "> -> >="), (5, "dropped condition `q < lo`"),
        (5, "dropped condition `q > hi`"),
        (6, "dropped fabs"), (6, "- -> +"), (6, "> -> >="), (6, "constant 1 -> 2"),
        (6, "constant 1 -> 2"), (6, "constant 2 -> 3"),
        (7, "fmin -> fmax"), (7, ">= -> >"), (7, "constant 0 -> 1"),
    ])
    drop = next(m for m in mutants if m.description == "dropped condition `q < lo`")
    write_c_mutant(tmp_path, C_SOURCE, drop)
    assert "if ( q > hi)" in (tmp_path / "x.c").read_text()


def _tiny_tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "limits.py").write_text(textwrap.dedent('''\
        def clamp(x, lo, hi):
            if x < lo:
                return lo
            if x > hi:
                return hi
            return x
        '''))
    (root / "tests").mkdir()
    # tests of the upper bound only: every mutant of the lower one survives, and `>` ->
    # `>=` is equivalent (at x == hi both return hi)
    (root / "tests" / "test_limits.py").write_text(textwrap.dedent('''\
        from pkg.limits import clamp

        def test_upper():
            assert clamp(5, 0, 3) == 3 and clamp(3, 0, 3) == 3 and clamp(2, 0, 3) == 2
        '''))


def test_a_run_counts_killed_and_survivors_exactly(tmp_path):
    _tiny_tree(tmp_path)
    args = argparse.Namespace(max_mutants=0, sample_seed=1, timeout_factor=3.0, only="")
    result = mutate_module("limits", Target(("pkg/limits.py",), ("tests/test_limits.py",)),
                           tmp_path, args)
    assert result.mutants == result.sites == 4             # <, >, two if-body removals
    survived = {(s["where"], s["mutation"]) for s in result.survived}
    assert survived == {("pkg/limits.py:2", "< -> <="), ("pkg/limits.py:4", "> -> >="),
                        ("pkg/limits.py:3", "removed `return lo` from an if body")}
    assert result.killed == 1 and result.timeout == 0 and result.score == 0.25
    assert (tmp_path / "pkg" / "limits.py").read_text().startswith("def clamp(x, lo, hi):\n"
                                                                    "    if x < lo:")


def test_only_plants_the_mutants_of_the_lines_named(tmp_path):
    """How a survivor is checked after a new test: every mutant of its line, alone."""
    _tiny_tree(tmp_path)
    args = argparse.Namespace(max_mutants=1, sample_seed=1, timeout_factor=3.0,
                              only="pkg/limits.py:2, pkg/limits.py:4")
    result = mutate_module("limits", Target(("pkg/limits.py",), ("tests/test_limits.py",)),
                           tmp_path, args)
    assert result.sites == 4 and result.mutants == 2       # --max-mutants does not apply
    assert {s["where"] for s in result.survived} == {"pkg/limits.py:2", "pkg/limits.py:4"}
    with pytest.raises(EdgeError, match="FILE:LINE"):
        mutate_module("limits", Target(("pkg/limits.py",), ("tests/test_limits.py",)),
                      tmp_path, argparse.Namespace(**{**vars(args), "only": "limits.py"}))


def test_a_module_whose_tests_fail_unmutated_is_not_measured(tmp_path):
    _tiny_tree(tmp_path)
    (tmp_path / "tests" / "test_limits.py").write_text("def test_no():\n    assert False\n")
    args = argparse.Namespace(max_mutants=0, sample_seed=1, timeout_factor=3.0, only="")
    result = mutate_module("limits", Target(("pkg/limits.py",), ("tests/test_limits.py",)),
                           tmp_path, args)
    assert result.mutants == 0 and "tests/test_limits.py::test_no" in result.error
    assert "unmutated" in result.error


def test_the_command_line_names_its_options_and_the_checkout_requirement():
    parser = build_parser()
    args = parser.parse_args(["bench", "mutation", "--modules", "commands",
                              "--max-mutants", "5", "--sample-seed", "3", "--json", "x.json"])
    assert (args.modules, args.max_mutants, args.sample_seed, args.json) == \
        ("commands", 5, 3, "x.json")
    from bench import mutation
    with pytest.raises(EdgeError, match="unknown nope"):
        mutation.run(parser.parse_args(["bench", "mutation", "--modules", "nope"]))
    with pytest.raises(EdgeError, match="source checkout"):
        mutation.run(parser.parse_args(["bench", "mutation", "--modules", "commands",
                                        "--checkout", "/nonexistent"]))

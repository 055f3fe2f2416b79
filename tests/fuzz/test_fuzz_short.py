"""The short fuzz run of the test suite: every target on its seeds and a few thousand
deterministic mutants of them (bench.fuzz.mutate), through the same harness as the
atheris bench. It fails on any crash or hang, and when a target did not run its inputs.

Coverage-guided runs of 10^6 inputs per target are the bench (`edge bench fuzz`).
"""

from __future__ import annotations

import pytest

from bench.fuzz import TARGETS, seeds
from bench.fuzz.harness import Runner
from bench.fuzz.mutate import inputs

INPUTS = 2000
FEWER = {"board": 400, "journal": 1000}     # a few ms per input: keep the run short

# targets on which the short run meets a known defect not yet fixed: name -> reason
KNOWN: dict[str, str] = {}


def _param(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in TARGETS])
def test_short_fuzz_run(name, fuzz_target, quiet_logs):
    target = TARGETS[name]
    corpus = seeds(name)
    assert corpus, f"no seed corpus for {name}"
    n = FEWER.get(name, INPUTS)
    outcome = Runner(name, fuzz_target(name), hang_s=1.0).run(
        inputs(corpus, n, seed=12, max_len=target.max_len))
    assert outcome.executed == n
    found = "\n".join(f"{f.kind} x{f.count}: {f.summary} input={f.example[:80]!r}"
                      for f in outcome.findings.values())
    assert (outcome.crashes, outcome.hangs) == (0, 0), found

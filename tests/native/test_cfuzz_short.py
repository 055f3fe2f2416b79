"""A short libFuzzer run of each harness in native/fuzz (the campaign is `edge bench cfuzz`):
built with ASan and UBSan, a few thousand inputs or ~10 s each, no crash allowed."""

import shutil
import tempfile
from pathlib import Path

import pytest

from bench import cfuzz

pytestmark = pytest.mark.skipif(shutil.which("clang") is None,
                                reason="clang is not installed (./dev test installs it)")


@pytest.mark.slow
@pytest.mark.parametrize("harness", sorted(cfuzz.HARNESSES))
def test_harness_runs_without_crash(harness):
    # its own temp dir: pytest's numbered ones are pruned by any concurrent pytest run
    with tempfile.TemporaryDirectory(prefix="edge-cfuzz-test-") as tmp:
        binary = cfuzz.build(harness, Path(tmp))
        result = cfuzz.run_harness(harness, binary, Path(tmp) / "corpus",
                                   Path(tmp) / "crashes", runs=3000, max_time=10)
    assert result.crashes == 0, result.tail
    assert result.execs > 0 and result.coverage > 0, result.tail

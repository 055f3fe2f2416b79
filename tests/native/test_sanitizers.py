"""The native tests again, on a build of the C core with AddressSanitizer and UBSan.

The sanitized extension is built into a temp dir (the normal build is untouched) and put
first on edge's package path in a child interpreter that has libasan preloaded; any
sanitizer report aborts the child, so the test fails on the first out-of-bounds access,
use after free or undefined behaviour (signed overflow, bad shift, misaligned load).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The test files that drive the C core hardest; together ~1 min of CPU under ASan.
NATIVE_TESTS = [
    "tests/rt/test_native_cycle.py",
    "tests/native/test_cycle_commands.py",
    "tests/native/test_block_kinds.py",
    "tests/native/test_state_record.py",
    "tests/rt/test_hist_ring.py",
    "tests/motion/test_trajectory.py",
    "tests/motion/test_safety.py",
    "tests/motion/test_observer.py",
    "tests/motion/test_arm_sim.py",
    "tests/motion/test_drive_cia402.py",
]
# Its assertion is a tick rate of the real thread over 0.5 s of wall time, which the
# sanitizers' slowdown on a loaded machine misses; the ring's memory use is covered by
# the virtual-time tests of the same file.
WALL_CLOCK_TESTS = [
    "tests/rt/test_hist_ring.py::test_state_ring_delivers_every_tick_in_order_under_the_real_thread",
]
# Leaks are off: CPython keeps objects alive at exit by design.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
REPORT_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
# Runs in the child: edge from the checkout, edge._native from the sanitized build.
BOOTSTRAP = """
import sys
import edge
edge.__path__.insert(0, sys.argv[1])
import edge._native
if not edge._native.__file__.startswith(sys.argv[1]):
    sys.exit("not the sanitized build: " + edge._native.__file__)
import pytest
# --capture=sys: the sanitizers write to fd 2, which pytest's default capture would hide
sys.exit(pytest.main(["-q", "-x", "--capture=sys", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""


def _libasan() -> str:
    try:
        path = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"gcc is needed for the sanitizer build: {exc}")
    if not os.path.isabs(path):       # gcc echoes the bare name when it has no libasan
        pytest.skip("gcc has no libasan (install libasan8)")
    return path


@pytest.fixture(scope="module")
def sanitized_build():
    # Its own temp dir: pytest's numbered ones are pruned by any concurrent pytest run.
    with tempfile.TemporaryDirectory(prefix="edge-sanitized-") as out:
        env = {**os.environ, "EDGE_NATIVE_SANITIZE": "1"}
        done = subprocess.run([sys.executable, str(ROOT / "native" / "build_ffi.py"), out],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield Path(out) / "edge"


@pytest.mark.slow
def test_native_tests_pass_under_address_and_ub_sanitizers(sanitized_build):
    env = {**os.environ, **SANITIZER_ENV, "LD_PRELOAD": _libasan()}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(sanitized_build), *NATIVE_TESTS,
         *(f"--deselect={t}" for t in WALL_CLOCK_TESTS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    marks = [done.stderr.find(m) for m in REPORT_MARKS if m in done.stderr]
    # a report's first lines name the file and line; the Python frames below are noise
    report = done.stderr[max(0, min(marks) - 300):][:4000] if marks else done.stderr[-4000:]
    assert done.returncode == 0 and not marks, (
        f"rc {done.returncode}\n{done.stdout[-3000:]}\n{report}")

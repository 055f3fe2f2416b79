"""Every crash or hang a fuzz run found, replayed through the same target function: the
input must be handled (the entry point's documented error at most) within HANG_S.

The inputs are in tests/fuzz/crashes/<target>/<what>.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz.harness import Runner

CRASHES = Path(__file__).resolve().parent / "crashes"
# The bench's hang limit is 1 s on a machine it has to itself; the suite shares one (the
# alias bomb takes 0.2 s quiet, over 1 s at load 15). What this test guards against, an
# unbounded expansion or a loop, takes minutes or forever, not 5 s.
HANG_S = 5.0


# (target, file in crashes/<target>/, marks): what the fuzzer (or the issue) found
REGRESSIONS = [
    ("mqtt_url", "unclosed-ipv6-bracket", ()),          # ValueError from urlsplit
    ("mqtt_url", "bracketed-non-ip-host", ()),          # ValueError from ipaddress
    ("mqtt_url", "bracketed-ipvfuture", ()),            # ValueError: IPvFuture address
    ("commands", "id-int-beyond-64-bits", ()),    # OverflowError packing the reply
    ("commands", "json-nested-6000", ()),         # RecursionError in json.loads
    ("commands", "id-lone-surrogate", ()),        # UnicodeEncodeError packing the reply
    ("board", "nonprintable-char", ()),             # yaml ReaderError escapes
    ("board", "billion-laughs-aliases", ()),        # 9^9 nodes from 9 aliases: a hang
    ("board", "unhashable-mapping-key", ()),        # TypeError in _to_nodes (atheris)
    ("board", "yaml-nested-600", ()),              # RecursionError in the composer
    ("journal", "corrupt-first-segment-stuck", ()),  # read() empty with records pending
    ("journal", "stray-segment-name", ()),         # int() of a non-numeric segment name
    ("usage", "json-nested-5000", ()),         # RecursionError in json.loads
    # values of a Read Input Registers answer taken for a Read Holding Registers request
    ("modbus_tcp", "input-registers-answer-to-holding-read", ()),
    ("modbus_rtu", "input-registers-answer-to-holding-read", ()),
    ("modbus_rtu", "coils-answer-to-discrete-read", ()),    # found by the short run
]


@pytest.mark.parametrize("target,name", [
    pytest.param(t, n, marks=m, id=f"{t}-{n}") for t, n, m in REGRESSIONS])
def test_saved_input_is_handled(target, name, fuzz_target, quiet_logs):
    data = (CRASHES / target / name).read_bytes()
    outcome = Runner(target, fuzz_target(target), hang_s=HANG_S).run([data])
    assert outcome.executed == 1
    found = "; ".join(f"{f.kind}: {f.summary}" for f in outcome.findings.values())
    assert (outcome.crashes, outcome.hangs) == (0, 0), found


def test_every_saved_input_is_replayed():
    """A crash input saved without a line in REGRESSIONS would never be replayed."""
    saved = {(p.parent.name, p.name) for p in CRASHES.glob("*/*") if p.is_file()}
    assert saved == {(t, n) for t, n, _ in REGRESSIONS}

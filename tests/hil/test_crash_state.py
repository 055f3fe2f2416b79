"""Crash consistency of the state files a run rewrites (usage counters, the summary,
the session counter, the journal): a few kill -9 of a real `edge run`, the broker up and
down; the campaign driver is `hil/crash_state.py`, which `edge bench crash` runs long."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.crash_state import run_state_campaign


@pytest.mark.slow
def test_kill_minus_nine_of_usage_and_state_writes(tmp_path: Path) -> None:
    # seed 0: two kills after start-up, the broker down for the first, up for the second
    # (the second start after a kill is the check that a run starts; the bench adds
    # start-up kills and a final clean run)
    report = run_state_campaign(tmp_path, kills=2, seed=0, max_run_s=0.5, clean_run=False)
    assert report.violations == [], report.line()
    assert (report.kills, report.broker_up, report.killed_in_startup) == (2, 1, 0)
    assert report.saves_seen > 0                      # kills landed among the saves

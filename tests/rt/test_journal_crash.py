"""Crash consistency of the journal: kill -9 at seeded random points (start-up and
recovery included, segments rotating, acks persisting); the campaign driver is
`hil/crash.py`, which a bench runs with hundreds of kills."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.crash import make_payload, parse_payload, run_campaign


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_kill_minus_nine_campaign(tmp_path: Path, policy: str) -> None:
    report = run_campaign(tmp_path, kills=10, seed=12, policy=policy, max_run_s=0.2)
    assert report.violations == [], report.line()
    assert report.kills == 10
    assert report.confirmed > 0 and report.checked > 0   # the kills landed mid-stream
    if policy == "always":
        assert report.guaranteed == report.confirmed


def test_payloads_are_self_checking() -> None:
    good = make_payload(3, 17)
    assert parse_payload(good) == (3, 17)
    assert parse_payload(good[:-1]) is None
    assert parse_payload(good.replace(b"3:17", b"3:18", 1)) is None

"""The two-minute soak (the short version of `edge bench soak`): the full simulated arm
with a Modbus device and the MQTT bridge while faults cycle; memory, descriptors, journal
and deadline misses must stay flat."""

import asyncio

import pytest

from bench.soak import verdict
from hil.soak import PHASES, soak


@pytest.mark.slow
def test_two_minute_soak_stays_flat(tmp_path):
    report = asyncio.run(soak(120, sample_s=10, phase_s=4, workdir=tmp_path))
    assert all(report.phases[p] >= 1 for p in PHASES), report.phases   # every fault ran
    assert len(report.samples) >= 10
    assert report.samples[-1].ticks > 100_000      # the controller kept running: 1 kHz
    assert verdict(report.growth(), report.edge_rc) == [], report.as_dict()["growth"]

"""Broker faults end to end (the short version of `edge bench faults`): a real `edge run`
streams at 1,000 msg/s through a real mosquitto; an independent paho consumer with a
persistent session audits the seq numbers against edge's own publish counts."""

import json

import pytest

from hil.broker_faults import run_fault


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["restart", "freeze", "cut"])
def test_stream_survives_broker_fault_whole(fault, tmp_path):
    r = run_fault(fault, rate_hz=1000, before_s=1.0, fault_s=1.5, after_s=1.0,
                  workdir=tmp_path)
    seen = json.dumps(r.as_dict())
    assert r.edge_rc == 0, (tmp_path / "edge.log").read_text()
    assert r.published > 3000, seen                  # the stream ran for the whole run
    assert r.stream["lost"] == 0, seen
    assert r.stream["reordered"] == 0, seen
    assert r.catch_up_s is not None, seen            # the bridge caught up after the fault
    assert r.journal_pending == 0, seen              # the backlog was sent before exit
    if fault == "restart":                           # the bridge noticed and came back
        assert r.bridge["connections"] >= 2, seen

"""`edge bench bus` runs end to end on a small load and writes the documented JSON."""

from __future__ import annotations

import json

from edge.cli import main


def test_bench_bus_json_shape(tmp_path, capsys) -> None:
    out = tmp_path / "bus.json"
    assert main(["bench", "bus", "--messages", "500", "--outage-s", "0.5", "--rate", "500",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["inprocess"]["ours_ns_per_msg"] > 0 and data["inprocess"]["anchor_ns_per_msg"] > 0
    bridge = data["bridge"]
    assert bridge["ours_msgs_per_s"] > 0 and bridge["raw_msgs_per_s"] > 0
    assert abs(bridge["ratio"] - bridge["ours_msgs_per_s"] / bridge["raw_msgs_per_s"]) < 1e-9
    outage = data["outage"]
    assert outage["messages"] == 1250 and outage["lost"] == 0 and outage["reordered"] == 0
    assert "raw aiomqtt publisher" in capsys.readouterr().out

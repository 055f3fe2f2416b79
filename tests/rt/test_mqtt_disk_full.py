"""The bridge when the journal's disk fills up: it keeps bridging, counts what the journal
reports and says so at once, not at exit. The disk is made "full" for real with a file
size limit (RLIMIT_FSIZE: writes past it fail with EFBIG) in an edge subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hil.mqtt_peer import bridge_board

REPO = Path(__file__).resolve().parents[2]

EDGE_PROC = """
import asyncio, json, logging, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # EFBIG from write(), not a signal
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.mqtt import MqttBridge

async def main(board):
    cfg = parse_board(open(board).read(), "t.yaml").sections["mqtt"]
    bus = Bus()
    async with MqttBridge(bus, cfg, board_name="t") as bridge:
        await asyncio.wait_for(bridge.connected.wait(), 10)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        for tick in range(1, 601):
            bus.publish("acq/blob", {"n": tick, "pad": "x" * 400})
            bus.deliver(tick)
            if tick % 20 == 0:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)                   # a few flush timer periods
        print(json.dumps(bridge.stats_dict()), flush=True)
        await asyncio.Event().wait()               # killed by the test: no clean exit

asyncio.run(main(sys.argv[1]))
"""


def test_a_full_disk_is_reported_at_once_and_the_bridge_goes_on(mosquitto, tmp_path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(bridge_board(mosquitto.url, str(tmp_path / "state"), axes=1))
    script = tmp_path / "edge_proc.py"
    script.write_text(EDGE_PROC)
    err = tmp_path / "stderr.log"
    with err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), str(board)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONPATH": "."})
        try:
            line = proc.stdout.readline()
            alive = proc.poll() is None
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert alive, err.read_text()
    stats = json.loads(line)
    journal = stats["journal"] or {}
    reported = stats["journal_errors"] + sum(v for k, v in journal.items()
                                             if "error" in k and isinstance(v, int))
    assert reported > 0, stats
    assert stats["connected"] and stats["bridge_errors"] == 0
    # said while running (the process was killed, it never reached an exit), and once
    said = [ln for ln in err.read_text().splitlines() if "journal" in ln and "ERROR" in ln]
    assert 1 <= len(said) <= 3, err.read_text()
    assert "Traceback" not in err.read_text()

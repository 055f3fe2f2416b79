"""Soak: the full simulated arm runs for a long time while faults cycle, and what it holds
(memory, file descriptors, journal, deadline misses) is sampled to show it stays flat.

The rig runs `edge run` on the shipped sim_arm board plus a Modbus TCP device (a real
pymodbus server behind a fault proxy) and the MQTT bridge (a real mosquitto behind a
second proxy). In turn, every `phase_s`: the device goes silent, the device answers
corrupt frames, the broker restarts, a burst of commands arrives (valid, invalid and
flooding), and a stop / reset / enable cycle with a move into the floor wall. Every
`sample_s` the rig reads the process's RSS and open descriptors from /proc, the journal's
size on disk, and the summary edge rewrites (`--stats-every`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgpack
import paho.mqtt.client as paho

from edge.config import BOARDS_DIR
from hil.broker import Mosquitto
from hil.faults import TcpFaultProxy
from hil.slave_sim import SlaveSimulator

EXTRA_BOARD = """
mqtt:
  url: mqtt://127.0.0.1:1883
  commands: [stop, reset, enable, disable, move_joint, jog]
"""

DEVICE = """    - {{name: plc, kind: modbus_tcp, host: 127.0.0.1, port: {port}, unit: 1,
       timeout_ms: 100, period_ms: 20}}
"""
CHANNEL = """    - {name: plc_pressure, device: plc, table: holding, address: 10, type: uint16,
       scale: 0.1, unit: kPa, valid: [0, 500], period_ms: 20}
"""


def soak_board(path: Path, device_port: int) -> Path:
    """sim_arm with one Modbus TCP device and channel added, and an mqtt section."""
    text = (BOARDS_DIR / "sim_arm.yaml").read_text()
    text = text.replace("name: sim_arm", "name: soak", 1)
    text = text.replace("  devices:\n", "  devices:\n" + DEVICE.format(port=device_port), 1)
    text = text.replace("  channels:\n", "  channels:\n" + CHANNEL, 1)
    path.write_text(text + EXTRA_BOARD)
    return path


@dataclass
class Sample:
    t_s: float
    rss_kb: int
    fds: int
    journal_bytes: int
    deadline_misses: int
    ticks: int
    phase: str


@dataclass
class SoakReport:
    duration_s: float
    samples: list[Sample]
    phases: dict[str, int]
    edge_rc: int
    final: dict[str, Any]

    def growth(self) -> dict[str, float]:
        """Last third of the samples against the first third after warm-up (the first
        sample is start-up): what 'flat' is judged on."""
        s = self.samples[1:] if len(self.samples) > 3 else self.samples
        third = max(1, len(s) // 3)
        head, tail = s[:third], s[-third:]

        def mean(rows, f):
            return sum(getattr(r, f) for r in rows) / len(rows)

        misses_rate = [(b.deadline_misses - a.deadline_misses) / max(1e-9, b.t_s - a.t_s)
                       for a, b in zip(s, s[1:], strict=False)]
        half = max(1, len(misses_rate) // 2)
        return {
            "rss_kb": mean(tail, "rss_kb") - mean(head, "rss_kb"),
            "fds": mean(tail, "fds") - mean(head, "fds"),
            "journal_bytes": mean(tail, "journal_bytes") - mean(head, "journal_bytes"),
            "misses_per_s_first_half": sum(misses_rate[:half]) / half,
            "misses_per_s_second_half": (sum(misses_rate[half:]) / max(1, len(misses_rate) - half)),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s, "edge_rc": self.edge_rc,
                "phases": self.phases, "growth": self.growth(),
                "samples": [asdict(s) for s in self.samples], "final": self.final}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class _Commander:
    """An independent MQTT client that sends commands the way an operator's tool would."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-operator")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent = 0

    def send(self, name: str, args: dict | None = None, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else msgpack.packb(
            {"id": f"soak-{self.sent}", "args": args or {}})
        self.client.publish(f"edge/v1/soak/cmd/{name}", payload, qos=1)
        self.sent += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _phase(name: str, device: TcpFaultProxy, broker: Mosquitto,
                 operator: _Commander, phase_s: float) -> None:
    if name == "device_silent":
        device.faults.silent = True
        await asyncio.sleep(phase_s)
        device.faults.clear()
    elif name == "device_corrupt":
        device.faults.corrupt = True
        await asyncio.sleep(phase_s)
        device.faults.clear()
    elif name == "broker_restart":
        broker.stop()
        await asyncio.sleep(min(2.0, phase_s / 2))
        broker.start()
        await asyncio.sleep(phase_s / 2)
    elif name == "command_burst":
        for i in range(300):                       # valid, invalid and hostile, at once
            operator.send("enable" if i % 3 else "jog", {"axis": 0, "velocity": 0.1}
                          if i % 3 == 0 else {})
        operator.send("disable", raw=b'{"id": 1e400, "args": {' + b'[' * 3000)
        operator.send("stop", {"category": 2})
        await asyncio.sleep(phase_s)
        operator.send("reset")
    elif name == "stop_reset":
        operator.send("enable")
        await asyncio.sleep(0.5)
        operator.send("move_joint", {"positions": [0.0, 0.3, 1.5, 0.0, 0.0, 0.0],
                                     "speed_scale": 0.5})   # shoulder down into the floor
        await asyncio.sleep(phase_s / 2)
        operator.send("stop", {"category": 1})
        await asyncio.sleep(0.5)
        operator.send("reset")
        await asyncio.sleep(0.5)
        operator.send("enable")
        operator.send("move_joint", {"positions": [0.0, -1.5708, 1.5708, 0.0, 0.0, 0.0]})
        await asyncio.sleep(phase_s / 2)


PHASES = ("device_silent", "device_corrupt", "broker_restart", "command_burst", "stop_reset")


async def soak(duration_s: float, *, sample_s: float = 60.0, phase_s: float = 10.0,
               workdir: str | os.PathLike | None = None) -> SoakReport:
    """Run the soak for `duration_s`; returns the samples and the final summary."""
    work = Path(workdir or tempfile.mkdtemp(prefix="edge-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "broker").mkdir(exist_ok=True)
    stats = work / "stats.json"
    sim = SlaveSimulator()
    phases = dict.fromkeys(PHASES, 0)
    samples: list[Sample] = []
    async with sim.tcp() as dev, TcpFaultProxy("127.0.0.1", dev.port).running() as dproxy:
        await dev.set_registers("holding", 10, [1013])
        board = soak_board(work / "soak.yaml", dproxy.port)
        with Mosquitto(directory=str(work / "broker")) as broker:
            env = {**os.environ, "EDGE_STATE_DIR": str(work / "state")}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge.cli", "--log-level", "warning", "run",
                "--board", str(board), "--mqtt", broker.url, "--stats-json", str(stats),
                "--stats-every", str(max(1.0, sample_s / 2)),
                env=env, stdout=asyncio.subprocess.DEVNULL,
                stderr=open(work / "edge.log", "wb"))
            operator = _Commander(broker.port)
            start = time.monotonic()
            current = {"phase": "start"}

            async def faults() -> None:
                i = 0
                while True:
                    name = PHASES[i % len(PHASES)]
                    current["phase"] = name
                    await _phase(name, dproxy, broker, operator, phase_s)
                    phases[name] += 1
                    current["phase"] = "calm"
                    await asyncio.sleep(phase_s / 2)
                    i += 1

            fault_task = asyncio.create_task(faults())
            try:
                while (elapsed := time.monotonic() - start) < duration_s:
                    await asyncio.sleep(min(sample_s, duration_s - elapsed))
                    if proc.returncode is not None:
                        break
                    summary = _read_summary(stats)
                    samples.append(Sample(
                        t_s=round(time.monotonic() - start, 1), rss_kb=_rss_kb(proc.pid),
                        fds=len(os.listdir(f"/proc/{proc.pid}/fd")),
                        journal_bytes=_dir_bytes(work / "state"),
                        deadline_misses=summary.get("executor", {}).get("deadline_misses", 0),
                        ticks=summary.get("ticks", 0), phase=current["phase"]))
            finally:
                fault_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fault_task
                operator.close()
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 30)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
    return SoakReport(duration_s=duration_s, samples=samples, phases=phases,
                      edge_rc=proc.returncode, final=_read_summary(stats))


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}

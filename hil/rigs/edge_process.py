"""The controller as a resource: `edge run` of a board as a child process, the way a
bench runs it. It is ready once it rewrote its summary (so its services are up) and, with
a broker, once its bridge is connected; a rig reads its summary while it runs, kills it
with SIGKILL and starts it again on the same state directory (journal, session counter),
and collects each run's exit code, stdout (the summary) and stderr (the log)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.rigs.base import Resource, RigError


class EdgeProcess(Resource):
    """`async with EdgeProcess("sim_arm", mqtt=broker.url) as edge:` runs `edge run
    --board BOARD [--mqtt URL] --stats-json ... --stats-every ...` and waits until it is
    ready. `board` is a shipped board name or a board file. Files go to `workdir` (a new
    temporary directory by default): stats.json, run-N.stdout / run-N.stderr per start,
    and state/ (EDGE_STATE_DIR: the MQTT journal and session) unless `state_dir` is
    given. Leaving the block stops it with SIGTERM (SIGKILL after `stop_timeout_s`)."""

    kind = "edge run"

    def __init__(self, board: str | os.PathLike = "sim_arm", *, mqtt: str | None = None,
                 workdir: str | os.PathLike | None = None,
                 state_dir: str | os.PathLike | None = None, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, log_level: str = "info",
                 ready_timeout_s: float = 60.0, stats_every_s: float = 0.2,
                 stop_timeout_s: float = 30.0) -> None:
        super().__init__()
        path = Path(board)
        self.board = str(path.resolve()) if path.exists() else str(board)
        self.mqtt = mqtt
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="edge-rig-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(state_dir or self.workdir / "state")
        self.stats_path = self.workdir / "stats.json"
        self.args = tuple(args)
        self.env = dict(env or {})
        self.log_level = log_level
        self.ready_timeout_s = ready_timeout_s
        self.stats_every_s = stats_every_s
        self.stop_timeout_s = stop_timeout_s
        self.start_timeout_s = ready_timeout_s + 15.0    # our own timeout says more
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.exit_codes: list[int] = []                  # of every run that ended

    # -- lifecycle ------------------------------------------------------------------
    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        stack.push_async_callback(self.stop)
        await self.start()

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "edge.cli", "--log-level", self.log_level, "run",
               "--board", self.board, "--stats-json", str(self.stats_path),
               "--stats-every", f"{self.stats_every_s:g}"]
        if self.mqtt:
            cmd += ["--mqtt", self.mqtt]
        return cmd + list(self.args)

    async def start(self, *, wait_connected: bool | None = None) -> None:
        """Start a new run and wait until it is ready: its summary written and, with
        `--mqtt` (or `wait_connected`), its bridge connected. RigError, with the run
        killed, when it exits first or is not ready within `ready_timeout_s`."""
        if self.alive:
            raise RigError(f"{self.kind}: already running (pid {self.proc.pid})")
        self.stats_path.unlink(missing_ok=True)    # readiness is this run's summary
        self.starts += 1
        env = {**os.environ, "EDGE_STATE_DIR": str(self.state_dir), **self.env}
        with open(self.stdout_path(), "wb") as out, open(self.stderr_path(), "wb") as err:
            try:
                self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err, env=env)
            except OSError as exc:
                raise RigError(f"{self.kind}: cannot start {sys.executable}: {exc}") from None
        connected = bool(self.mqtt) if wait_connected is None else wait_connected
        await self.wait_ready(connected)

    async def wait_ready(self, connected: bool) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                raise RigError(f"{self.kind}: exited with {rc} before it was ready: "
                               f"{self.last_stderr_line() or 'no output'}")
            stats = self.stats()
            if stats and (not connected or (stats.get("mqtt") or {}).get("connected")):
                return
            if time.monotonic() > deadline:
                why = "no summary written" if not stats else "bridge not connected"
                self.kill()
                raise RigError(f"{self.kind}: not ready within {self.ready_timeout_s:g} s "
                               f"({why}); see {self.stderr_path()}")
            await asyncio.sleep(0.05)

    def kill(self) -> int | None:
        """SIGKILL now, as a power cut or a crash would end it; its exit code (-9), None
        when it was not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGKILL)
        return self._reap(10.0)

    async def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, a clean stop (the bridge drains, the summary is written); SIGKILL if
        it has not ended within the timeout. Its exit code, None when not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        timeout = timeout_s or self.stop_timeout_s
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        except TimeoutError:
            self.proc.kill()
        return self._reap(10.0)

    async def restart(self, *, kill: bool = True, wait_connected: bool | None = None) -> None:
        """End the run (SIGKILL, or SIGTERM with kill=False) and start a new one on the
        same state directory."""
        if kill:
            self.kill()
        else:
            await self.stop()
        await self.start(wait_connected=wait_connected)

    def _reap(self, timeout_s: float) -> int:
        rc = self.proc.wait(timeout_s)
        self.exit_codes.append(rc)
        return rc

    # -- what a rig reads -----------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code of the current run (None while it runs)."""
        return None if self.proc is None else self.proc.poll()

    def stats(self) -> dict[str, Any]:
        """The run's summary as last written (every `stats_every_s` and at the end): ticks,
        latency, bus counts, `mqtt` (connected, journal pending / recovered, ...); {}
        before the first write."""
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def stdout_path(self, run: int | None = None) -> Path:
        return self.workdir / f"run-{run or self.starts}.stdout"

    def stderr_path(self, run: int | None = None) -> Path:
        return self.workdir / f"run-{run or self.starts}.stderr"

    def stderr_text(self, run: int | None = None) -> str:
        """The log of run `run` (1 = the first start; default the latest)."""
        path = self.stderr_path(run)
        return path.read_text(errors="replace") if path.exists() else ""

    def stdout_text(self, run: int | None = None) -> str:
        path = self.stdout_path(run)
        return path.read_text(errors="replace") if path.exists() else ""

    def last_stderr_line(self) -> str:
        lines = [ln for ln in self.stderr_text().splitlines() if ln.strip()]
        return lines[-1].strip() if lines else ""

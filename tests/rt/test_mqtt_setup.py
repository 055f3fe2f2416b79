"""Connection set-up errors at start, against real mosquitto brokers: a wrong password and
a failed TLS verification stop `edge run` with one readable line and a non-zero exit; an
unreachable broker is not an error (store and forward) and is said once."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config import parse_board
from edge.rt.bus import Bus
from edge.rt.command_intake import LogLimiter
from edge.rt.mqtt import BrokerRefused, MqttBridge
from hil.broker import Mosquitto
from hil.certs import make_tls_files
from hil.mqtt_peer import bridge_board

REPO = Path(__file__).resolve().parents[2]
BOARD = bridge_board("{url}", "{state}", axes=1)


def write_board(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "b.yaml"
    path.write_text(BOARD.replace("{url}", url).replace("{state}", str(tmp_path / "state"))
                    + extra)
    return path


def credentials(tmp_path: Path, line: str) -> str:
    path = tmp_path / "mqtt.credentials"
    path.write_text(line + "\n")
    path.chmod(0o600)
    return f"  credentials_file: {path}\n"


def edge_run(board: Path, duration_s: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "run", "--board", str(board),
                           "--duration", str(duration_s)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": "."})


def cfg_of(board: Path):
    return parse_board(board.read_text(), str(board)).sections["mqtt"]


@pytest.fixture
def password_broker():
    with Mosquitto(users={"edge": "right"}) as broker:
        yield broker


async def test_wrong_password_is_refused_at_start(password_broker, tmp_path) -> None:
    board = write_board(tmp_path, password_broker.url, credentials(tmp_path, "edge:wrong"))
    t0 = time.monotonic()
    with pytest.raises(BrokerRefused, match="refused the connection: Not authorized"):
        async with MqttBridge(Bus(), cfg_of(board), board_name="t"):
            pass
    assert time.monotonic() - t0 < 5.0


async def test_right_password_connects(password_broker, tmp_path) -> None:
    board = write_board(tmp_path, password_broker.url, credentials(tmp_path, "edge:right"))
    async with MqttBridge(Bus(), cfg_of(board), board_name="t") as bridge:
        assert bridge.connected.is_set() and bridge.stats.connections == 1


def test_edge_run_with_a_wrong_password_exits_with_one_line(password_broker, tmp_path) -> None:
    board = write_board(tmp_path, password_broker.url, credentials(tmp_path, "edge:wrong"))
    t0 = time.monotonic()
    result = edge_run(board, duration_s=20)
    assert result.returncode != 0
    assert time.monotonic() - t0 < 15          # at start, not after the 20 s run
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert "refused the connection" in errors[0] and "Traceback" not in result.stderr


def test_edge_run_with_a_failed_tls_verification_exits_with_one_line(tmp_path) -> None:
    server = make_tls_files(tmp_path / "pki")
    stranger = make_tls_files(tmp_path / "other")          # a CA that did not sign it
    with Mosquitto(tls=server, require_client_cert=False) as broker:
        board = write_board(tmp_path, broker.url, f"  ca_file: {stranger.ca}\n")
        result = edge_run(board)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert "TLS handshake failed" in errors[0] and "CERTIFICATE_VERIFY_FAILED" in errors[0]


async def test_tls_with_the_right_ca_connects(tmp_path) -> None:
    server = make_tls_files(tmp_path / "pki")
    with Mosquitto(tls=server, require_client_cert=False) as broker:
        board = write_board(tmp_path, broker.url, f"  ca_file: {server.ca}\n")
        async with MqttBridge(Bus(), cfg_of(board), board_name="t") as bridge:
            assert bridge.connected.is_set()


async def test_unreachable_broker_at_start_is_one_warning_not_an_error(mosquitto, tmp_path,
                                                                       caplog) -> None:
    mosquitto.stop()
    board = write_board(tmp_path, mosquitto.url)
    with caplog.at_level(logging.DEBUG, logger="edge.rt.mqtt"):
        async with MqttBridge(Bus(), cfg_of(board), board_name="t") as bridge:
            await asyncio.wait_for(_until(lambda: bridge.stats.connect_failures >= 5), 10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith(
        f"mqtt: broker 127.0.0.1:{mosquitto.port} unreachable")


def test_a_repeated_log_line_is_said_at_most_once_a_minute(caplog) -> None:
    now = [0.0]
    limiter = LogLimiter(60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="edge.rt.mqtt"):
        for step in range(121):                  # two minutes, one attempt a second
            now[0] = float(step)
            limiter.log(logging.WARNING, "unreachable", "broker unreachable")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["broker unreachable", "broker unreachable (59 more like it not logged)",
                     "broker unreachable (59 more like it not logged)"]


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)

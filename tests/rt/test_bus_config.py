"""`mqtt:` and `edge run --mqtt URL`: identity and credentials (issue 12, items 13 and 15)."""

import hashlib
import socket

import pytest

from edge.config import parse_board
from edge.rt import bus_config
from edge.rt.bus_config import default_device_id, mqtt_config_from_url

MINIMAL = "name: arm\naxes:\n  - {name: a, max_velocity: 1, max_acceleration: 2}\n"
WITH_MQTT = MINIMAL + ("mqtt:\n  url: mqtt://10.0.0.5\n  username_env: WARD_USER\n"
                       "  password_env: WARD_PASS\n")


@pytest.fixture
def no_edge_env(monkeypatch):
    for var in ("EDGE_MQTT_USERNAME", "EDGE_MQTT_PASSWORD", "EDGE_MQTT_CREDENTIALS",
                "EDGE_MQTT_CA", "EDGE_MQTT_CERT", "EDGE_MQTT_KEY"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_mqtt_url_keeps_the_boards_own_credentials(no_edge_env):
    board = parse_board(WITH_MQTT, "b.yaml")
    no_edge_env.setenv("WARD_USER", "unit7")
    no_edge_env.setenv("WARD_PASS", "s3cret")
    cfg = mqtt_config_from_url("mqtt://127.0.0.1:1884", board)
    assert (cfg.host, cfg.port) == ("127.0.0.1", 1884)
    assert (cfg.username_env, cfg.password_env) == ("WARD_USER", "WARD_PASS")
    assert cfg.credentials() == ("unit7", "s3cret")


def test_edge_mqtt_variables_override_only_when_set(no_edge_env):
    board = parse_board(WITH_MQTT, "b.yaml")
    no_edge_env.setenv("EDGE_MQTT_USERNAME", "bench")
    cfg = mqtt_config_from_url("mqtt://127.0.0.1", board)
    assert (cfg.username_env, cfg.password_env) == ("EDGE_MQTT_USERNAME", "WARD_PASS")


def test_url_without_a_board_section_uses_the_edge_variables(no_edge_env):
    board = parse_board(MINIMAL, "b.yaml")
    no_edge_env.setenv("EDGE_MQTT_USERNAME", "u")
    no_edge_env.setenv("EDGE_MQTT_PASSWORD", "p")
    assert mqtt_config_from_url("mqtt://127.0.0.1", board).credentials() == ("u", "p")


def test_default_device_id_hashes_machine_and_board(tmp_path, monkeypatch):
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr(bus_config, "MACHINE_ID_FILES", (str(mid),))
    expected = hashlib.sha256(b"0123456789abcdef0123456789abcdef\0arm").hexdigest()[:8]
    assert default_device_id("arm") == f"arm-{expected}"
    cfg = parse_board(MINIMAL + "mqtt: {url: 'mqtt://127.0.0.1'}\n", "b.yaml").sections["mqtt"]
    assert cfg.device_id == f"arm-{expected}"
    mid.write_text("fedcba9876543210fedcba9876543210\n")     # the same board on another unit
    assert default_device_id("arm") != f"arm-{expected}"


def test_default_device_id_falls_back_to_the_host_name(tmp_path, monkeypatch):
    monkeypatch.setattr(bus_config, "MACHINE_ID_FILES", (str(tmp_path / "none"),))
    host = socket.gethostname()
    expected = hashlib.sha256(f"{host}\0arm".encode()).hexdigest()[:8]
    assert default_device_id("arm") == f"arm-{expected}"


def test_explicit_device_id_is_kept():
    board = parse_board(MINIMAL + "mqtt: {url: 'mqtt://127.0.0.1', device_id: bed-4}\n", "b")
    assert board.sections["mqtt"].device_id == "bed-4"
    assert mqtt_config_from_url("mqtt://127.0.0.1", board).device_id == "bed-4"

"""Board sections `bus:` and `mqtt:` (and `edge run --mqtt URL`) → validated settings.

Errors name the file, line and field. Secrets never come from the board file or the
command line: a credentials file or environment variables are named instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge.config import Board, Node, check_writable_dir, host_problem
from edge.errors import ConfigError
from edge.rt.bus import OVERFLOW_POLICIES, BusError, check_pattern, check_topic
from edge.rt.commands import CommandRate, CommandSpec, parse_commands
from edge.sections import Section

log = logging.getLogger(__name__)

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


@dataclass(frozen=True)
class BusConfig:
    order: tuple[str, ...] = ()             # delivery rank by first matching pattern
    queue: int = 1024                       # default subscriber queue bound
    overflow: str = "drop_oldest"
    state_topic: str = "state/joints"       # native state records, batched
    state_every_ticks: int = 10             # frame size: ticks per message (0 = off)


@dataclass(frozen=True)
class JournalConfig:
    directory: str | None = None            # default: <state dir>/mqtt-journal
    max_mb: float = 64.0
    fsync: str = "interval"
    fsync_interval_ms: float = 200.0
    when_full: str = "drop_oldest"


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    device_id: str = "edge"
    username_env: str | None = None
    password_env: str | None = None
    credentials_file: str | None = None     # one line: user:password
    forward: tuple[str, ...] = ("#",)       # bus patterns bridged out
    qos: int = 1
    inflight: int = 64                      # QoS 1 messages awaiting PUBACK at once
    keepalive_s: int = 10
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 5.0
    state_dir: str | None = None
    journal: JournalConfig = field(default_factory=JournalConfig)
    commands: dict[str, CommandSpec] = field(default_factory=dict)
    command_rate: CommandRate = field(default_factory=CommandRate)

    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password) from the credentials file or the environment."""
        if self.credentials_file:
            try:
                line = Path(self.credentials_file).read_text().strip().splitlines()[0]
            except (OSError, IndexError) as exc:
                raise ConfigError(f"cannot read MQTT credentials: {exc}",
                                  file=self.credentials_file) from None
            user, sep, password = line.partition(":")
            if not sep or not user:
                raise ConfigError("expected one line 'user:password'", file=self.credentials_file)
            return user, password
        user = os.environ.get(self.username_env) if self.username_env else None
        password = os.environ.get(self.password_env) if self.password_env else None
        return user, password


def machine_id() -> str:
    """This machine's identity: systemd's machine id, else the host name."""
    for path in MACHINE_ID_FILES:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return socket.gethostname()


def default_device_id(board_name: str) -> str:
    """`<board>-<8 hex>`: the board name and a hash of it with this machine's id, so two
    units running the same board file get different MQTT client ids and topics."""
    digest = hashlib.sha256(f"{machine_id()}\0{board_name}".encode()).hexdigest()
    return f"{board_name}-{digest[:8]}"


def default_state_dir(board_name: str) -> Path:
    """Where durable state (journals, counters) lives unless the board says otherwise."""
    root = os.environ.get("EDGE_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "edge")
    return Path(root) / board_name


def _patterns(node: Node, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    child = node.child(name, None)
    if child is None:
        return default
    out = []
    for item in child.sequence():
        pattern = item.scalar(str)
        try:
            check_pattern(pattern)
        except BusError as exc:
            raise item.error(str(exc)) from None
        out.append(pattern)
    return tuple(out)


def parse_bus(node: Node, board: Board) -> BusConfig:
    node.only("order", "queue", "overflow", "state")
    state = node.child("state", None)
    topic, every = BusConfig.state_topic, BusConfig.state_every_ticks
    if state is not None:
        state.only("topic", "every_ticks")
        topic = state.get("topic", str, topic)
        try:
            check_topic(topic)
        except BusError as exc:
            raise state.error(str(exc), "topic") from None
        every = state.get("every_ticks", int, every, min=0, max=100_000)
    return BusConfig(order=_patterns(node, "order", ()),
                     queue=node.get("queue", int, 1024, min=1, max=10_000_000),
                     overflow=node.get("overflow", str, "drop_oldest", choices=OVERFLOW_POLICIES),
                     state_topic=topic, state_every_ticks=every)


def parse_mqtt(node: Node, board: Board) -> MqttConfig:
    node.only("url", "device_id", "ca_file", "cert_file", "key_file", "username_env",
              "password_env", "credentials_file", "forward", "qos", "inflight", "keepalive_s",
              "reconnect_min_s", "reconnect_max_s", "state_dir", "journal", "commands",
              "command_rate")
    url_node = node.child("url")
    try:
        host, port, tls = _split_url(url_node.scalar(str))
    except ConfigError as exc:
        raise url_node.error(str(exc.args[0])) from None
    journal = JournalConfig()
    jnode = node.child("journal", None)
    if jnode is not None:
        jnode.only("directory", "max_mb", "fsync", "fsync_interval_ms", "when_full")
        journal = JournalConfig(
            directory=jnode.get("directory", str, None),
            max_mb=jnode.get("max_mb", float, 64.0, min=0.01),
            fsync=jnode.get("fsync", str, "interval", choices=("always", "interval", "never")),
            fsync_interval_ms=jnode.get("fsync_interval_ms", float, 200.0, min=0.0),
            when_full=jnode.get("when_full", str, "drop_oldest",
                                choices=("drop_oldest", "reject_new")))
    device_id = node.get("device_id", str, None)
    if device_id is None:
        device_id = default_device_id(board.name)
    elif not device_id or any(c in device_id for c in "/+#") or device_id in (".", ".."):
        raise node.error("device_id must be non-empty without '/', '+' or '#'", "device_id")
    cmd_node = node.child("commands", None)
    rate = CommandRate()
    rate_node = node.child("command_rate", None)
    if rate_node is not None:
        rate_node.only("per_s", "burst")
        rate = CommandRate(per_s=rate_node.get("per_s", float, rate.per_s, min=0.001),
                           burst=rate_node.get("burst", int, rate.burst, min=1, max=1_000_000))
    return MqttConfig(
        host=host, port=port, tls=tls, device_id=device_id,
        ca_file=node.get("ca_file", str, None), cert_file=node.get("cert_file", str, None),
        key_file=node.get("key_file", str, None),
        username_env=node.get("username_env", str, None),
        password_env=node.get("password_env", str, None),
        credentials_file=node.get("credentials_file", str, None),
        forward=_patterns(node, "forward", ("#",)),
        qos=node.get("qos", int, 1, choices=(0, 1, 2)),
        inflight=node.get("inflight", int, 64, min=1, max=65535),
        keepalive_s=node.get("keepalive_s", int, 10, min=1),
        reconnect_min_s=node.get("reconnect_min_s", float, 0.1, min=0.001),
        reconnect_max_s=node.get("reconnect_max_s", float, 5.0, min=0.001),
        state_dir=node.get("state_dir", str, None), journal=journal, command_rate=rate,
        commands=parse_commands(cmd_node, len(board.axes)) if cmd_node is not None else {})


def _split_url(url: str) -> tuple[str, int, bool]:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"MQTT URL is malformed ({exc}): {url!r}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
    if parts.username or parts.password:
        raise ConfigError("credentials do not belong in the URL: use credentials_file, "
                          "or username_env / password_env")
    if not hostname:
        raise ConfigError(f"MQTT URL has no host: {url!r}")
    problem = host_problem(hostname)
    if problem:
        raise ConfigError(f"MQTT URL: {problem}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"MQTT URL has a bad port (1 to 65535): {url!r}") from None
    if port == 0:
        raise ConfigError(f"MQTT URL has a bad port (1 to 65535): {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"MQTT URL has a path or query edge does not use: {url!r}")
    tls = parts.scheme == "mqtts"
    return hostname, port or (8883 if tls else 1883), tls


def mqtt_config_from_url(url: str, board: Board) -> MqttConfig:
    """`edge run --mqtt URL`: the board's mqtt section with the URL's broker, or defaults.
    TLS files and credentials come from EDGE_MQTT_CA / _CERT / _KEY and
    EDGE_MQTT_CREDENTIALS (a file) or EDGE_MQTT_USERNAME / EDGE_MQTT_PASSWORD."""
    host, port, tls = _split_url(url)
    base: MqttConfig | None = board.sections.get("mqtt")
    env = os.environ.get
    # the EDGE_MQTT_* variables override the board's settings only when they are set
    settings: dict[str, Any] = dict(
        host=host, port=port, tls=tls, device_id=default_device_id(board.name),
        ca_file=env("EDGE_MQTT_CA"), cert_file=env("EDGE_MQTT_CERT"), key_file=env("EDGE_MQTT_KEY"),
        credentials_file=env("EDGE_MQTT_CREDENTIALS"),
        username_env="EDGE_MQTT_USERNAME" if "EDGE_MQTT_USERNAME" in os.environ else None,
        password_env="EDGE_MQTT_PASSWORD" if "EDGE_MQTT_PASSWORD" in os.environ else None)
    if base is not None:
        settings = {**base.__dict__, **{k: v for k, v in settings.items()
                                        if k in ("host", "port", "tls") or v is not None}}
        settings["device_id"] = base.device_id
    return MqttConfig(**settings)


def check_mqtt_start(cfg: MqttConfig, board_name: str) -> None:
    """What the bridge needs when it starts, checked before anything runs: credentials
    readable and well formed, TLS files loadable, state and journal directories
    writable. Raises ConfigError (one line); warns when the credentials file is
    readable by others."""
    if cfg.credentials_file:
        cfg.credentials()
        mode = Path(cfg.credentials_file).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("MQTT credentials file %s is readable by group or others; it "
                        "should be mode 0600", cfg.credentials_file)
    for name in ("username_env", "password_env"):
        var = getattr(cfg, name)
        if var and var not in os.environ:
            log.warning("mqtt %s names %s, which is not set", name, var)
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(cfg, name)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"MQTT {name} {path} is missing or not readable")
    if (cfg.cert_file or cfg.key_file or cfg.ca_file) and not cfg.tls:
        raise ConfigError("MQTT TLS files are set but the URL is mqtt://, not mqtts://")
    if cfg.key_file and not cfg.cert_file:
        raise ConfigError("MQTT key_file needs a cert_file")
    if cfg.tls:
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            if cfg.cert_file:
                context.load_cert_chain(cfg.cert_file, cfg.key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"MQTT TLS files cannot be loaded: {exc}") from None
    state = Path(cfg.state_dir) if cfg.state_dir else default_state_dir(board_name)
    check_writable_dir(state, "MQTT state directory")
    check_writable_dir(Path(cfg.journal.directory) if cfg.journal.directory
                  else state / "mqtt-journal", "MQTT journal directory")


def attach_mqtt(runtime, cfg: MqttConfig) -> None:
    """Check what the bridge will need, then attach it (edge.rt.mqtt.attach)."""
    from edge.rt.mqtt import attach as attach_bridge

    check_mqtt_start(cfg, runtime.board.name)
    log.info("mqtt: device id %s (topics edge/v1/%s/...)", cfg.device_id, cfg.device_id)
    attach_bridge(runtime, cfg)


def attach(runtime, cfg: BusConfig) -> None:
    """Publish the native state records on the bus, batched in frames of N ticks."""
    from edge.rt.state_publisher import StatePublisher

    if cfg.state_every_ticks:
        publisher = StatePublisher(runtime, cfg.state_topic, cfg.state_every_ticks)
        publisher.attach()
        runtime.add_topics(publisher.topic, publisher.status_topic)


def bus_core_options(cfg: BusConfig) -> dict[str, Any]:
    """The runtime's bus is made with these (edge.rt.runtime.CoreOptions)."""
    return {"bus_order": cfg.order, "bus_queue": cfg.queue, "bus_overflow": cfg.overflow}


SECTIONS = (
    Section("bus", parse_bus, attach, core_options=bus_core_options),
    Section("mqtt", parse_mqtt, attach_mqtt, from_option=mqtt_config_from_url),
)

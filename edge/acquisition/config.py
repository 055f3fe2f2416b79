"""`acquisition:` board section → AcquisitionConfig; every error names file, line, field."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.devices import DEVICE_KINDS
from edge.acquisition.filters import parse_filter
from edge.acquisition.model import (
    CRYPTO_ALGORITHMS,
    AcquisitionConfig,
    Backoff,
    CryptoConfig,
    DeviceConfig,
    TaskConfig,
    UsageConfig,
)
from edge.acquisition.thresholds import SEVERITIES, ThresholdRule
from edge.config import Board, Node, check_writable_dir
from edge.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

# the fields of every device and every channel; each kind adds its own (DEVICE_KINDS)
COMMON_DEVICE = ("name", "kind", "period_ms", "backoff")
COMMON_CHANNEL = ("name", "device", "unit", "scale", "offset", "valid", "deadband",
                  "period_ms", "stale_ms", "filter", "decimate", "sensitive")


def state_dir() -> Path:
    """Where relative state files (usage counters) go: $EDGE_STATE_DIR, else XDG state."""
    if os.environ.get("EDGE_STATE_DIR"):
        return Path(os.environ["EDGE_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "edge"


def _name(node: Node, field: str = "name") -> str:
    name = node.get(field, str)
    if not NAME.match(name):
        raise node.error(f"'{name}' may hold only letters, digits, '_', '-' and '.'", field)
    return name


def _backoff(node: Node) -> Backoff:
    b = node.child("backoff", None)
    if b is None:
        return Backoff()
    b.only("initial_ms", "max_ms", "factor")
    initial = b.get("initial_ms", float, 50.0, min=1.0)
    maximum = b.get("max_ms", float, 5000.0, min=initial)
    return Backoff(initial / 1e3, maximum / 1e3, b.get("factor", float, 2.0, min=1.0))


def _device(node: Node) -> DeviceConfig:
    kind = DEVICE_KINDS[node.get("kind", str, choices=tuple(DEVICE_KINDS))]
    node.only(*COMMON_DEVICE, *kind.fields)
    name = _name(node)
    period_ms = node.get("period_ms", float, 100.0, min=kind.min_period_ms)
    dev = DeviceConfig(name, kind.name, period_ms, backoff=_backoff(node), line=node.line)
    kind.parse_device(node, dev)
    return dev


def _channel(node: Node, devices: dict[str, DeviceConfig], period_ns: int) -> ChannelConfig:
    dev_name = node.get("device", str)
    if dev_name not in devices:
        raise node.error(f"no device named '{dev_name}' (devices: "
                         f"{', '.join(devices) or 'none'})", "device")
    dev = devices[dev_name]
    kind = DEVICE_KINDS[dev.kind]
    node.only(*COMMON_CHANNEL, *kind.channel_fields)
    valid = node.floats("valid", 2, None)
    if valid is not None and not valid[0] < valid[1]:
        raise node.error("valid is [min, max] with min < max", "valid")
    rate = 1e3 / dev.period_ms if dev.period_ms > 0 else 1e9 / period_ns
    period_ms = node.get("period_ms", float, max(dev.period_ms, period_ns / 1e6),
                         min=period_ns / 1e6)
    return ChannelConfig(
        name=_name(node), device=dev_name, unit=node.get("unit", str, ""),
        scale=node.get("scale", float, 1.0), offset=node.get("offset", float, 0.0),
        valid_min=valid[0] if valid else -math.inf, valid_max=valid[1] if valid else math.inf,
        deadband=node.get("deadband", float, 0.0, min=0.0), period_ms=period_ms,
        stale_ms=node.get("stale_ms", float, None, min=0.0),
        filter=parse_filter(node.child("filter", None), rate),
        decimate=node.get("decimate", int, 1, min=1),
        sensitive=node.get("sensitive", bool, False), source=kind.parse_channel(node, dev),
        line=node.line)


def _unique(items: list[Node], what: str) -> list[Node]:
    seen: set[str] = set()
    for item in items:
        name = item.get("name", str)
        if name in seen:
            raise item.error(f"{what} names must be unique ('{name}' twice)", "name")
        seen.add(name)
    return items


def _check_serial_line(node: Node, devices: dict[str, DeviceConfig]) -> None:
    """The device just parsed (the last one) may share its serial port only with devices
    of its own kind, and only if that kind shares lines (Modbus RTU units on RS-485)."""
    *others, dev = devices.values()
    kind = DEVICE_KINDS[dev.kind]
    port = kind.serial_port(dev) if kind.serial_port else None
    if not port:
        return
    for other in others:
        other_kind = DEVICE_KINDS[other.kind]
        if not other_kind.serial_port or other_kind.serial_port(other) != port:
            continue
        if other.kind != dev.kind or kind.share_line is None:
            sharing = " and ".join(k.title for k in DEVICE_KINDS.values() if k.share_line)
            raise node.error(f"serial port {port} is already used by device "
                             f"'{other.name}'; only {sharing} units share a line", "port")
        kind.share_line(node, dev, other)


def parse_acquisition(node: Node, board: Board) -> AcquisitionConfig:
    """Validate the `acquisition:` section of a board file."""
    node.only("task", "devices", "channels", "thresholds", "usage", "crypto")
    period_ns = board.cycle.period_ns
    cfg = AcquisitionConfig()
    t = node.child("task", None)
    if t is not None:
        t.only("period_ms", "deadline_ms", "priority")
        cfg.task = TaskConfig(t.get("period_ms", float, None, min=period_ns / 1e6),
                              t.get("deadline_ms", float, None, min=period_ns / 1e6),
                              t.get("priority", int, 0))
        if cfg.task.period_ms and cfg.task.deadline_ms and \
                cfg.task.deadline_ms > cfg.task.period_ms:
            raise t.error("deadline_ms cannot exceed period_ms", "deadline_ms")
    devices: dict[str, DeviceConfig] = {}
    for d in _unique(node.child("devices").sequence(), "device"):
        devices[d.get("name", str)] = _device(d)
        _check_serial_line(d, devices)
    cfg.devices = list(devices.values())
    chan_nodes = _unique(node.child("channels").sequence(), "channel")
    cfg.channels = [_channel(c, devices, period_ns) for c in chan_nodes]
    names = {c.name for c in cfg.channels}
    if node.child("crypto", None) is not None:
        c = node.child("crypto")
        c.only("algorithm", "key_file", "key_id")
        key_file = Path(c.get("key_file", str))
        if not key_file.is_absolute():
            key_file = Path(node.file).resolve().parent / key_file
        cfg.crypto = CryptoConfig(c.get("algorithm", str, "aes-gcm", choices=CRYPTO_ALGORITHMS),
                                  str(key_file), c.get("key_id", str, None))
    for c, cn in zip(cfg.channels, chan_nodes, strict=True):
        if c.sensitive and cfg.crypto is None:
            raise cn.error("a sensitive channel needs an acquisition.crypto key", "sensitive")
    rules = node.child("thresholds", None)
    for r in _unique(rules.sequence(), "threshold") if rules else []:
        r.only("name", "channel", "above", "below", "hysteresis", "severity")
        ch = r.get("channel", str)
        if ch not in names:
            raise r.error(f"no channel named '{ch}'", "channel")
        try:
            cfg.thresholds.append(ThresholdRule(
                _name(r), ch, r.get("above", float, None), r.get("below", float, None),
                r.get("hysteresis", float, 0.0, min=0.0),
                r.get("severity", str, "warning", choices=SEVERITIES)))
        except ConfigError as exc:
            raise r.error(exc.message) from None
    u = node.child("usage", None)
    if u is not None:
        u.only("file", "save_every_s", "running_channel", "running_above")
        path = Path(u.get("file", str))
        path = path if path.is_absolute() else state_dir() / path
        try:
            check_writable_dir(path.parent, "usage counter directory")
        except ConfigError as exc:
            raise u.error(exc.message, "file") from None
        running = u.get("running_channel", str, None)
        if running is not None and running not in names:
            raise u.error(f"no channel named '{running}'", "running_channel")
        cfg.usage = UsageConfig(str(path),
                                u.get("save_every_s", float, 60.0, min=0.001), running,
                                u.get("running_above", float, 0.0))
    return cfg

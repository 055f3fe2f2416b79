"""`acquisition:` board section → AcquisitionConfig; every error names file, line, field."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from edge.acquisition.channel import FILTER_KINDS, ChannelConfig, FilterSpec, make_filter
from edge.acquisition.codec import DTYPES, ORDERS, register_count
from edge.acquisition.model import (
    CRYPTO_ALGORITHMS,
    DEVICE_KINDS,
    AcquisitionConfig,
    CryptoConfig,
    DeviceConfig,
    TaskConfig,
    UsageConfig,
)
from edge.acquisition.sources import Backoff
from edge.acquisition.sources.modbus import BIT_TABLES, TABLES, ModbusLink
from edge.acquisition.sources.serial import ASCII_FORMATS, CHECKSUMS, SerialLink
from edge.acquisition.sources.simulated import SIGNALS
from edge.acquisition.thresholds import SEVERITIES, ThresholdRule
from edge.config import Board, Node, check_writable_dir, host_problem
from edge.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

COMMON_DEVICE = ("name", "kind", "period_ms", "backoff")
DEVICE_FIELDS = {
    "simulated": COMMON_DEVICE + ("dropout_s",),
    "modbus_tcp": COMMON_DEVICE + ("host", "port", "unit", "timeout_ms", "max_gap"),
    "modbus_rtu": COMMON_DEVICE + ("port", "baudrate", "unit", "timeout_ms", "max_gap"),
    "serial": COMMON_DEVICE + ("port", "baudrate", "timeout_ms", "protocol", "request",
                               "request_hex", "terminator", "format", "separator", "fields",
                               "nmea_checksum", "sync", "checksum"),
}
COMMON_CHANNEL = ("name", "device", "unit", "scale", "offset", "valid", "deadband",
                  "period_ms", "stale_ms", "filter", "decimate", "sensitive")
SOURCE_FIELDS = {
    "simulated": ("signal",),
    "modbus_tcp": ("table", "address", "type", "byte_order", "word_order"),
    "modbus_rtu": ("table", "address", "type", "byte_order", "word_order"),
    "serial": ("field", "byte_offset", "type", "byte_order"),
}


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


def _hex(node: Node, field: str, default: bytes | None) -> bytes | None:
    text = node.get(field, str, None)
    if text is None:
        return default
    try:
        return bytes.fromhex(text.replace(" ", ""))
    except ValueError:
        raise node.error(f"expected hex bytes like 'AA 55', got {text!r}", field) from None


def _backoff(node: Node) -> Backoff:
    b = node.child("backoff", None)
    if b is None:
        return Backoff()
    b.only("initial_ms", "max_ms", "factor")
    initial = b.get("initial_ms", float, 50.0, min=1.0)
    maximum = b.get("max_ms", float, 5000.0, min=initial)
    return Backoff(initial / 1e3, maximum / 1e3, b.get("factor", float, 2.0, min=1.0))


def _device(node: Node) -> DeviceConfig:
    kind = node.get("kind", str, choices=DEVICE_KINDS)
    node.only(*DEVICE_FIELDS[kind])
    name = _name(node)
    period_ms = node.get("period_ms", float, 100.0, min=0.0 if kind != "simulated" else 1e-3)
    dev = DeviceConfig(name, kind, period_ms, backoff=_backoff(node), line=node.line)
    timeout_s = node.get("timeout_ms", float, 500.0, min=1.0) / 1e3
    if kind == "simulated":
        window = node.floats("dropout_s", 2, None)
        if window is not None and not window[0] < window[1]:
            raise node.error("dropout_s is [start, end] with start < end", "dropout_s")
        dev.dropout_s = tuple(window) if window else None
    elif kind == "modbus_tcp":
        problem = host_problem(node.get("host", str))
        if problem:
            raise node.error(problem, "host")
        dev.link = ModbusLink("tcp", host=node.get("host", str),
                              port=node.get("port", int, 502, min=1, max=65535),
                              unit=node.get("unit", int, 1, min=0, max=247), timeout_s=timeout_s,
                              max_gap=node.get("max_gap", int, 0, min=0, max=120))
    elif kind == "modbus_rtu":
        dev.link = ModbusLink("rtu", serial_port=node.get("port", str),
                              baudrate=node.get("baudrate", int, 19200, min=50),
                              unit=node.get("unit", int, 1, min=1, max=247), timeout_s=timeout_s,
                              max_gap=node.get("max_gap", int, 0, min=0, max=120))
    else:
        protocol = node.get("protocol", str, "ascii", choices=("ascii", "binary"))
        request = node.get("request", str, None)
        link = SerialLink(port=node.get("port", str),
                          baudrate=node.get("baudrate", int, 9600, min=50),
                          timeout_s=timeout_s, protocol=protocol,
                          request=request.encode("latin-1") if request is not None else
                          _hex(node, "request_hex", None))
        if protocol == "ascii":
            link.terminator = node.get("terminator", str, "\n").encode("latin-1")
            link.format = node.get("format", str, "csv", choices=ASCII_FORMATS)
            link.separator = node.get("separator", str, ",")
            link.nmea = node.get("nmea_checksum", bool, False)
            fields = node.child("fields", None)
            link.fields = [f.scalar(str) for f in fields.sequence()] if fields else []
            if link.format == "csv" and not link.fields:
                raise node.error("a csv line protocol names its fields by position", "fields")
            if not link.terminator:
                raise node.error("the terminator cannot be empty", "terminator")
        else:
            for f in ("terminator", "format", "separator", "fields", "nmea_checksum"):
                if node.child(f, None) is not None:
                    raise node.error("only for protocol: ascii", f)
            link.sync = _hex(node, "sync", b"\xaa\x55")
            if not link.sync:
                raise node.error("the sync bytes cannot be empty", "sync")
            link.checksum = node.get("checksum", str, "sum8", choices=CHECKSUMS)
        dev.link = link
    return dev


def _signal(node: Node) -> dict:
    sig = node.child("signal", None)
    if sig is None:
        return {"signal": "constant", "offset": 0.0}
    sig.only("shape", "mean", "amplitude", "period_s", "slope", "noise", "seed")
    return {"signal": sig.get("shape", str, "constant", choices=SIGNALS),
            "offset": sig.get("mean", float, 0.0), "amplitude": sig.get("amplitude", float, 0.0),
            "period_s": sig.get("period_s", float, 1.0, min=1e-6),
            "slope": sig.get("slope", float, 0.0), "noise": sig.get("noise", float, 0.0, min=0.0),
            "seed": sig.get("seed", int, 0, min=0)}


def _source(node: Node, dev: DeviceConfig) -> dict:
    if dev.kind == "simulated":
        return _signal(node)
    if dev.kind.startswith("modbus"):
        src = {"table": node.get("table", str, choices=TABLES),
               "address": node.get("address", int, min=0, max=65535),
               "type": node.get("type", str, "uint16", choices=tuple(DTYPES)),
               "byte_order": node.get("byte_order", str, "big", choices=ORDERS),
               "word_order": node.get("word_order", str, "big", choices=ORDERS)}
        width = 1 if src["table"] in BIT_TABLES else register_count(src["type"])
        if src["address"] + width - 1 > 65535:
            raise node.error(f"a {src['type']} at {src['address']} takes {width} registers "
                             f"and runs past the last address, 65535", "address")
        return src
    link = dev.link
    if link.protocol == "ascii":
        field = node.get("field", str)
        if link.format == "csv" and field not in link.fields:
            raise node.error(f"device '{dev.name}' has no field '{field}' "
                             f"(its fields: {', '.join(link.fields)})", "field")
        return {"field": field}
    return {"offset": node.get("byte_offset", int, min=0, max=254),
            "type": node.get("type", str, "uint16", choices=tuple(DTYPES)),
            "byte_order": node.get("byte_order", str, "big", choices=ORDERS)}


def _filter(node: Node, sample_rate_hz: float) -> FilterSpec | None:
    f = node.child("filter", None)
    if f is None:
        return None
    kind = f.get("kind", str, choices=FILTER_KINDS)
    if kind == "lowpass":
        f.only("kind", "cutoff_hz", "order")
        spec = FilterSpec(kind, cutoff_hz=f.get("cutoff_hz", float, min=1e-9),
                          order=f.get("order", int, 2, min=1, max=8))
    else:
        f.only("kind", "window")
        spec = FilterSpec(kind, window=f.get("window", int, min=1, max=1000))
    try:
        make_filter(spec, sample_rate_hz)
    except ConfigError as exc:
        raise f.error(exc.message, "cutoff_hz") from None
    return spec


def _channel(node: Node, devices: dict[str, DeviceConfig], period_ns: int) -> ChannelConfig:
    dev_name = node.get("device", str)
    if dev_name not in devices:
        raise node.error(f"no device named '{dev_name}' (devices: "
                         f"{', '.join(devices) or 'none'})", "device")
    dev = devices[dev_name]
    node.only(*COMMON_CHANNEL, *SOURCE_FIELDS[dev.kind])
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
        filter=_filter(node, rate), decimate=node.get("decimate", int, 1, min=1),
        sensitive=node.get("sensitive", bool, False), source=_source(node, dev), line=node.line)


def _unique(items: list[Node], what: str) -> list[Node]:
    seen: set[str] = set()
    for item in items:
        name = item.get("name", str)
        if name in seen:
            raise item.error(f"{what} names must be unique ('{name}' twice)", "name")
        seen.add(name)
    return items


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
    ports: dict[str, list[DeviceConfig]] = {}
    for d in _unique(node.child("devices").sequence(), "device"):
        dev = devices[d.get("name", str)] = _device(d)
        port = getattr(dev.link, "serial_port", None) or getattr(dev.link, "port", None)
        if dev.kind not in ("modbus_rtu", "serial") or not port:
            continue
        for other in ports.get(port, []):
            if not dev.kind == other.kind == "modbus_rtu":
                raise d.error(f"serial port {port} is already used by device "
                              f"'{other.name}'; only Modbus RTU units share a line", "port")
            if other.link.baudrate != dev.link.baudrate:
                raise d.error(f"units on {port} must share one baudrate "
                              f"('{other.name}' uses {other.link.baudrate})", "baudrate")
            if other.link.unit == dev.link.unit:
                raise d.error(f"unit {dev.link.unit} on {port} is already device "
                              f"'{other.name}'", "unit")
        ports.setdefault(port, []).append(dev)
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

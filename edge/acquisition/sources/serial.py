"""Serial line devices (pyserial): ASCII line protocols and binary framed protocols.

ASCII: one measurement per line, `body[*HH]<terminator>`; the body is CSV (positional
fields named in the board file) or `key=value` pairs; `*HH` is the optional NMEA-style
XOR checksum. Binary: `sync | length | payload | checksum` where the checksum (sum8,
xor8 or the Modbus CRC-16, little-endian) covers length and payload; channels pick
typed fields out of the payload by byte offset. The port is non-blocking and read from
the event loop's reader callback, so a silent device never blocks anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import serial

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.codec import DTYPES, ORDERS
from edge.acquisition.sources import DeviceKind, Source, SourceContext, timeout_s
from edge.errors import ConfigError, DeviceCommError

if TYPE_CHECKING:
    from edge.acquisition.model import DeviceConfig
    from edge.config import Node

ASCII_FORMATS = ("csv", "keyvalue")


def crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _xor8(data: bytes) -> bytes:
    x = 0
    for b in data:
        x ^= b
    return bytes([x])


# checksum of a binary frame -> (its size in bytes, the function giving its bytes)
CHECKSUMS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "sum8": (1, lambda data: bytes([sum(data) & 0xFF])),
    "xor8": (1, _xor8),
    "crc16": (2, lambda data: crc16_modbus(data).to_bytes(2, "little")),   # little-endian
}


def checksum(kind: str, data: bytes) -> bytes:
    """The checksum bytes of `data` for `kind`."""
    if kind not in CHECKSUMS:
        raise ConfigError(f"unknown checksum {kind!r} (expected one of: {', '.join(CHECKSUMS)})")
    return CHECKSUMS[kind][1](data)


def nmea_checksum(body: bytes) -> str:
    x = 0
    for b in body:
        x ^= b
    return f"{x:02X}"


@dataclass
class SerialLink:
    """A serial device and its protocol, as the board file describes it."""

    port: str
    baudrate: int = 9600
    timeout_s: float = 0.5
    protocol: str = "ascii"             # "ascii" | "binary"
    request: bytes | None = None        # sent before each read; None: the device streams
    # ascii
    terminator: bytes = b"\n"
    format: str = "csv"
    separator: str = ","
    fields: list[str] = field(default_factory=list)     # csv: names by position
    nmea: bool = False                  # lines carry *HH
    # binary
    sync: bytes = b"\xaa\x55"
    checksum: str = "sum8"
    max_payload: int = 255


class Corrupt:
    """A frame that was delimited but failed its checksum or could not be parsed."""

    def __init__(self, why: str) -> None:
        self.why = why


class FrameDecoder:
    """Bytes in (any chunking), frames out: dict of ASCII fields or binary payload bytes."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, str] | bytes | Corrupt]:
        self.buf += data
        return self._ascii() if self.link.protocol == "ascii" else self._binary()

    def _ascii(self) -> list:
        out: list = []
        term = self.link.terminator
        while (i := self.buf.find(term)) >= 0:
            line = bytes(self.buf[:i]).strip(b"\r\n")
            del self.buf[:i + len(term)]
            if line:
                out.append(self._parse_line(line))
        if len(self.buf) > 4096:                 # no terminator in sight: garbage
            self.buf.clear()
            out.append(Corrupt("line too long"))
        return out

    def _parse_line(self, line: bytes) -> dict[str, str] | Corrupt:
        link = self.link
        if link.nmea:
            body, star, cs = line.rpartition(b"*")
            if not star or len(cs) != 2 or nmea_checksum(body) != cs.decode("ascii", "replace"):
                return Corrupt("line checksum")
            line = body
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return Corrupt("non-ASCII line")
        parts = [p.strip() for p in text.split(link.separator)]
        if link.format == "csv":
            if len(parts) != len(link.fields):
                return Corrupt(f"expected {len(link.fields)} fields, got {len(parts)}")
            return dict(zip(link.fields, parts, strict=True))
        pairs = {}
        for p in parts:
            k, eq, v = p.partition("=")
            if not eq:
                return Corrupt(f"not key=value: {p!r}")
            pairs[k.strip()] = v.strip()
        return pairs

    def _binary(self) -> list:
        out: list = []
        link = self.link
        n_cs = CHECKSUMS[link.checksum][0]
        while True:
            i = self.buf.find(link.sync)
            if i < 0:                             # keep a possible partial sync at the end
                keep = len(link.sync) - 1
                if len(self.buf) > keep:
                    del self.buf[:len(self.buf) - keep]
                return out
            del self.buf[:i]
            head = len(link.sync)
            if len(self.buf) < head + 1:
                return out
            length = self.buf[head]
            total = head + 1 + length + n_cs
            if length > link.max_payload:
                del self.buf[:1]                  # a false sync: look further
                out.append(Corrupt("length beyond max_payload"))
                continue
            if len(self.buf) < total:
                return out
            body = bytes(self.buf[head:head + 1 + length])
            cs = bytes(self.buf[head + 1 + length:total])
            if checksum(link.checksum, body) != cs:
                del self.buf[:1]                  # resynchronise on the next sync
                out.append(Corrupt("frame checksum"))
                continue
            del self.buf[:total]
            out.append(body[1:])


def encode_frame(link: SerialLink, payload: bytes) -> bytes:
    """What a binary device sends for `payload` (used by simulators and tests)."""
    body = bytes([len(payload)]) + payload
    return link.sync + body + checksum(link.checksum, body)


def encode_line(link: SerialLink, values: dict[str, object]) -> bytes:
    """What an ASCII device sends for `values` (used by simulators and tests)."""
    if link.format == "csv":
        body = link.separator.join(str(values[f]) for f in link.fields)
    else:
        body = link.separator.join(f"{k}={v}" for k, v in values.items())
    raw = body.encode("ascii")
    if link.nmea:
        raw += b"*" + nmea_checksum(raw).encode("ascii")
    return raw + link.terminator


class SerialSource(Source):
    """A device on a serial line; one request/answer (or one streamed frame) per read."""

    def __init__(self, name: str, channels: list[ChannelConfig], link: SerialLink) -> None:
        super().__init__(name, channels)
        self.link = link
        self.corrupt_frames = 0
        self._port: serial.Serial | None = None
        self._frames: asyncio.Queue = asyncio.Queue()
        self._decoder = FrameDecoder(link)
        self._lost: str | None = None

    async def open(self) -> None:
        await self.close()
        try:
            port = serial.Serial(self.link.port, self.link.baudrate, timeout=0,
                                 write_timeout=0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceCommError(self.name, "connect", str(exc)) from None
        self._port, self._lost = port, None
        self._decoder = FrameDecoder(self.link)
        self._frames = asyncio.Queue()
        asyncio.get_running_loop().add_reader(port.fileno(), self._readable)

    def _readable(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            data = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._lost = str(exc)
            asyncio.get_running_loop().remove_reader(port.fileno())
            self._frames.put_nowait(None)
            return
        for frame in self._decoder.feed(data):
            self._frames.put_nowait(frame)

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(port.fileno())
            with contextlib.suppress(Exception):
                port.close()

    async def _next_frame(self):
        """The next valid frame before the timeout; raises timeout/corrupt/disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.link.timeout_s
        corrupt = None
        while True:
            try:
                frame = await asyncio.wait_for(self._frames.get(), deadline - loop.time())
            except TimeoutError:
                if corrupt is not None:
                    raise DeviceCommError(self.name, "corrupt", corrupt.why) from None
                raise DeviceCommError(self.name, "timeout",
                                      f"no answer within {self.link.timeout_s} s") from None
            if frame is None:
                raise DeviceCommError(self.name, "disconnect", self._lost or "port lost")
            if isinstance(frame, Corrupt):
                self.corrupt_frames += 1
                corrupt = frame
                continue
            return frame

    async def read(self) -> tuple[dict[str, float], dict[str, str]]:
        port = self._port
        if port is None or self._lost:
            raise DeviceCommError(self.name, "disconnect", self._lost or "port closed")
        if self.link.request is not None:
            while not self._frames.empty():        # answers to earlier requests are stale
                self._frames.get_nowait()
            try:
                port.write(self.link.request)
            except (serial.SerialException, OSError) as exc:
                raise DeviceCommError(self.name, "disconnect", str(exc)) from None
        frame = await self._next_frame()
        return self._values(frame)

    def _values(self, frame: dict[str, str] | bytes) -> tuple[dict[str, float], dict[str, str]]:
        values: dict[str, float] = {}
        refused: dict[str, str] = {}
        for ch in self.channels:
            src = ch.source
            try:
                if isinstance(frame, dict):
                    values[ch.name] = float(frame[src["field"]])
                else:
                    code, n = DTYPES[src.get("type", "uint16")]
                    order = ">" if src.get("byte_order", "big") == "big" else "<"
                    off = src["offset"]
                    if off + 2 * n > len(frame):
                        raise ValueError("field beyond the payload")
                    values[ch.name] = float(struct.unpack_from(order + code, frame, off)[0])
            except (KeyError, ValueError, struct.error):
                refused[ch.name] = "decode"
        return values, refused



# -- the `serial` kind ----------------------------------------------------------------------
def _hex(node: Node, field: str, default: bytes | None) -> bytes | None:
    text = node.get(field, str, None)
    if text is None:
        return default
    try:
        return bytes.fromhex(text.replace(" ", ""))
    except ValueError:
        raise node.error(f"expected hex bytes like 'AA 55', got {text!r}", field) from None


ASCII_FIELDS = ("terminator", "format", "separator", "fields", "nmea_checksum")


def _parse_device(node: Node, dev: DeviceConfig) -> None:
    timeout = timeout_s(node)
    protocol = node.get("protocol", str, "ascii", choices=("ascii", "binary"))
    request = node.get("request", str, None)
    link = SerialLink(port=node.get("port", str),
                      baudrate=node.get("baudrate", int, 9600, min=50),
                      timeout_s=timeout, protocol=protocol,
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
        for f in ASCII_FIELDS:
            if node.child(f, None) is not None:
                raise node.error("only for protocol: ascii", f)
        link.sync = _hex(node, "sync", b"\xaa\x55")
        if not link.sync:
            raise node.error("the sync bytes cannot be empty", "sync")
        link.checksum = node.get("checksum", str, "sum8", choices=tuple(CHECKSUMS))
    dev.link = link


def _parse_channel(node: Node, dev: DeviceConfig) -> dict:
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


def _make_source(dev: DeviceConfig, channels: list[ChannelConfig],
                 ctx: SourceContext) -> SerialSource:
    return SerialSource(dev.name, channels, dev.link)


SERIAL = DeviceKind(
    "serial", "serial",
    fields=("port", "baudrate", "timeout_ms", "protocol", "request", "request_hex",
            *ASCII_FIELDS, "sync", "checksum"),
    channel_fields=("field", "byte_offset", "type", "byte_order"),
    parse_device=_parse_device, parse_channel=_parse_channel, make_source=_make_source,
    serial_port=lambda dev: dev.link.port)

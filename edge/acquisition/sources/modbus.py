"""Modbus TCP and RTU sources on pymodbus 3.x async clients.

Channels of one device are read in as few requests as possible: contiguous (or nearly,
within `max_gap`) addresses of the same table are merged into one block, up to the
protocol limit per request. pymodbus' own retries and auto-reconnect are switched off:
the DevicePoller retries with backoff and counts every failure by kind. pymodbus is
imported when a Modbus device is opened, so boards without one do not pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.codec import DTYPES, ORDERS, make_block_decoder, register_count
from edge.acquisition.sources import DeviceKind, Source, SourceContext, timeout_s
from edge.errors import DeviceCommError

if TYPE_CHECKING:
    from edge.acquisition.model import DeviceConfig
    from edge.config import Node

log = logging.getLogger(__name__)

TABLES = ("holding", "input", "coil", "discrete")
BIT_TABLES = ("coil", "discrete")
MAX_PER_REQUEST = {"holding": 125, "input": 125, "coil": 2000, "discrete": 2000}


@dataclass
class Block:
    """One request: `count` registers or bits of `table` from `start`."""

    table: str
    start: int
    count: int
    members: list[tuple[ChannelConfig, int, int]] = field(default_factory=list)
    # (channel, offset in block, width)
    _decode: Callable[[Sequence[int]], tuple] | None = field(default=None, repr=False)
    _names: tuple[str, ...] = field(default=(), repr=False)

    @property
    def bits(self) -> bool:
        return self.table in BIT_TABLES

    def request(self, unit: int):
        """The pymodbus request PDU that reads this block from `unit`, built once and sent
        at every poll (pymodbus gives it a new transaction id each time)."""
        from pymodbus.pdu import bit_message, register_message

        cls = {"holding": register_message.ReadHoldingRegistersRequest,
               "input": register_message.ReadInputRegistersRequest,
               "coil": bit_message.ReadCoilsRequest,
               "discrete": bit_message.ReadDiscreteInputsRequest}[self.table]
        return cls(address=self.start, count=self.count, dev_id=unit)

    def compile_decoder(self) -> None:
        """Prepare decode_into once the members are final (ConfigError on a bad type)."""
        self._names = tuple(c.name for c, _, _ in self.members)
        if self.table not in BIT_TABLES:
            self._decode = make_block_decoder(self.count, [
                (off, c.source.get("type", "uint16"), c.source.get("byte_order", "big"),
                 c.source.get("word_order", "big")) for c, off, _ in self.members])

    def decode_into(self, data: Sequence, values: dict[str, float]) -> None:
        """The values of the block's channels from the registers or bits it read."""
        if self.bits:
            for ch, off, _ in self.members:
                values[ch.name] = 1.0 if data[off] else 0.0
            return
        values.update(zip(self._names, self._decode(data), strict=True))


def channel_width(ch: ChannelConfig) -> int:
    src = ch.source
    return 1 if src["table"] in BIT_TABLES else register_count(src.get("type", "uint16"))


def plan_reads(channels: list[ChannelConfig], max_gap: int = 0,
               max_count: dict[str, int] | None = None) -> list[Block]:
    """Merge channels into blocks: same table, addresses sorted, a new block when the gap
    to the previous end exceeds max_gap or the block would exceed the request limit."""
    limits = max_count or MAX_PER_REQUEST
    blocks: list[Block] = []
    for table in TABLES:
        items = sorted((c for c in channels if c.source["table"] == table),
                       key=lambda c: (c.source["address"], c.name))
        current: Block | None = None
        for ch in items:
            addr, width = ch.source["address"], channel_width(ch)
            if current is not None:
                end = current.start + current.count
                new_end = max(end, addr + width)
                if addr - end <= max_gap and new_end - current.start <= limits[table]:
                    current.count = new_end - current.start
                    current.members.append((ch, addr - current.start, width))
                    continue
            current = Block(table, addr, width, [(ch, 0, width)])
            blocks.append(current)
    return blocks


@dataclass
class ModbusLink:
    """Where the device is: TCP (host, port) or RTU (serial port, baudrate)."""

    transport: str                 # "tcp" | "rtu"
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = ""
    baudrate: int = 19200
    unit: int = 1
    timeout_s: float = 0.5
    max_gap: int = 0


WATCH_CHECKS = 5       # a TCP request still in flight at this many checks has timed out


class ModbusConnection:
    """One pymodbus client: a TCP connection, or a serial line shared by the RTU units on
    it. Requests go one at a time (the lock); a shared line stays open while any of its
    units is connected, so one dead unit does not take the line down for the others.

    A TCP request's timeout is kept by one watchdog timer per connection, not by pymodbus
    (which arms a timer, a future and two callbacks for every request: a fifth of the CPU
    of a poll). The watchdog looks every timeout/4; a request still in flight at
    WATCH_CHECKS looks in a row has waited at least the timeout and less than 1.25 times
    it, and is then failed the way pymodbus fails a request that timed out."""

    def __init__(self, link: ModbusLink) -> None:
        self.link = link
        self.client = None            # a pymodbus async client while connected
        self.lock = asyncio.Lock()
        self.rx_bytes = 0             # bytes received for the request in flight
        self.users = 0
        # an RTU line may carry several units polled concurrently: one request at a time;
        # a TCP connection belongs to one device, whose poller sends one at a time anyway
        self.shared = link.transport == "rtu"
        self.in_flight = 0            # number of the request awaiting its answer (0: none)
        self._watch: asyncio.TimerHandle | None = None
        self._watched = (0, 0)        # (request seen at the last look, looks in a row)
        self.watchdog_timeouts = 0

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.rx_bytes += len(data)
        return data

    @property
    def connected(self) -> bool:
        return self.client is not None and bool(self.client.connected)

    def _make_client(self, timeout: float | None):
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
        from pymodbus.framer import FramerType

        link = self.link
        common = dict(timeout=timeout, retries=0, reconnect_delay=0, trace_packet=self._trace)
        if link.transport == "tcp":
            return AsyncModbusTcpClient(link.host, port=link.port, **common)
        return AsyncModbusSerialClient(link.serial_port, framer=FramerType.RTU,
                                       baudrate=link.baudrate, **common)

    def _watchable(self, client) -> bool:
        """Whether the watchdog can fail this client's request in flight (the future
        pymodbus awaits it on); if not, pymodbus keeps the timeout itself."""
        return isinstance(getattr(getattr(client, "ctx", None), "response_future", None),
                          asyncio.Future)

    def _look(self) -> None:
        """The watchdog: one look at the request in flight, every timeout/4."""
        request = self.in_flight
        seen, looks = self._watched
        looks = looks + 1 if request and request == seen else (1 if request else 0)
        if looks >= WATCH_CHECKS:
            future = self.client.ctx.response_future
            if not future.done():          # pymodbus' own timeout path: same error, counts
                future.set_exception(TimeoutError())
                self.watchdog_timeouts += 1
            looks = 0
        self._watched = (request, looks)
        self._watch = asyncio.get_running_loop().call_later(self.link.timeout_s / 4, self._look)

    async def connect(self, device: str) -> None:
        """Connect unless connected; raises DeviceCommError (kind 'connect') for `device`."""
        from pymodbus.exceptions import ModbusException

        async with self.lock:                # units of one line connect it once
            if self.connected:
                return
            self.close()
            timeout, tcp = self.link.timeout_s, not self.shared
            client = self._make_client(None if tcp else timeout)
            watched = tcp and self._watchable(client)
            if tcp and not watched:            # another pymodbus layout: its own timeout
                client = self._make_client(timeout)
            try:
                ok = await asyncio.wait_for(client.connect(), timeout)
            except TimeoutError:               # (an OSError: caught first)
                ok, why = False, f"no connection within {timeout:g} s"
            except (OSError, ModbusException) as exc:
                ok, why = False, str(exc)
            else:
                why = "connection refused or timed out"
            if not ok:
                client.close()
                raise DeviceCommError(device, "connect", why)
            self.client = client
            if watched:
                self.in_flight, self._watched = 0, (0, 0)
                self._watch = asyncio.get_running_loop().call_later(timeout / 4, self._look)

    def flush_input(self) -> None:
        """RTU has no transaction id: drop what a late answer to an earlier request left."""
        port = getattr(getattr(getattr(self.client, "ctx", None), "transport", None),
                       "sync_serial", None)
        with contextlib.suppress(Exception):
            port.reset_input_buffer()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None


class ModbusSource(Source):
    """A Modbus device read with batched requests; `connection` shares an RTU line."""

    def __init__(self, name: str, channels: list[ChannelConfig], link: ModbusLink,
                 connection: ModbusConnection | None = None) -> None:
        super().__init__(name, channels)
        self.link = link
        self.conn = connection or ModbusConnection(link)
        self.blocks = plan_reads(channels, link.max_gap)
        for block in self.blocks:
            block.compile_decoder()
        self._rtu = link.transport == "rtu"
        self._reads: list[tuple[Block, object]] | None = None   # (block, request PDU)
        self.requests = 0
        self.undecodable = 0          # polls whose registers the codec could not read
        self._joined = False

    async def open(self) -> None:
        await self.close()
        await self.conn.connect(self.name)
        self.conn.users += 1
        self._joined = True

    async def close(self) -> None:
        if self._joined:
            self._joined = False
            self.conn.users -= 1
        if self.conn.users <= 0 or not self.conn.connected:
            self.conn.close()

    async def read(self) -> tuple[Mapping[str, float], dict[str, str] | None]:
        """One poll: every block of contiguous registers or bits, one request each; under
        the line's lock when the connection is a line shared by several units (an RTU
        line carries one request at a time). The values decode when first looked at."""
        conn = self.conn
        lock = conn.lock if conn.shared else None
        if lock is not None:
            await lock.acquire()
        try:
            client = conn.client
            if client is None:
                raise DeviceCommError(self.name, "disconnect", "the connection was closed")
            answers: list[list | None] = []        # per block: its data, None: refused
            refused: dict[str, str] | None = None
            if self._reads is None:        # built once, at the first read (pymodbus loaded)
                self._reads = [(b, b.request(self.link.unit)) for b in self.blocks]
            for block, request in self._reads:
                if self._rtu:
                    conn.flush_input()
                conn.rx_bytes = 0
                self.requests += 1
                conn.in_flight = self.requests     # the watchdog times it out (TCP)
                try:       # pymodbus raises ConnectionException when the link is down
                    rsp = await client.execute(False, request)
                except Exception as exc:
                    conn.in_flight = 0
                    raise self._comm_error(exc, client) from None
                conn.in_flight = 0
                if rsp.isError():           # the device answered with a Modbus exception
                    refused = refused or {}
                    refused.update((ch.name, "exception") for ch, _, _ in block.members)
                    answers.append(None)
                    continue
                if rsp.function_code != request.function_code:
                    # an answer to another request (a reply crossed on a line, a confused
                    # device): its registers are not the ones asked for, never publish them
                    raise DeviceCommError(self.name, "corrupt",
                                          f"answer of function code {rsp.function_code} to "
                                          f"a function code {request.function_code} request")
                data = rsp.bits if block.bits else rsp.registers
                if len(data) < block.count:
                    raise DeviceCommError(self.name, "corrupt",
                                          f"asked {block.count} values, got {len(data)}")
                answers.append(data)
            return DecodedOnRead(self, answers), refused
        finally:
            if lock is not None:
                lock.release()

    def _comm_error(self, exc: Exception, client) -> Exception:
        """What a failed request means, by pymodbus' exception (imported here, on the
        error path, not in every poll); anything else is returned as it is."""
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        if isinstance(exc, ConnectionException):
            return DeviceCommError(self.name, "disconnect", str(exc))
        if isinstance(exc, ModbusIOException):
            # bytes came back but never made a valid frame: corrupt; none: timeout
            kind = "corrupt" if self.conn.rx_bytes else "timeout"
            if client.connected is False and not self.conn.rx_bytes:
                kind = "disconnect"
            return DeviceCommError(self.name, kind, str(exc).strip())
        if isinstance(exc, ModbusException):
            return DeviceCommError(self.name, "corrupt", str(exc))
        return exc


class DecodedOnRead(Mapping[str, float]):
    """One poll's values, decoded from the registers the first time one is looked at:
    the sampler reads the newest poll of each release, not every poll, so the others are
    never decoded (a device polled back to back answers thousands of times a second)."""

    __slots__ = ("_source", "_answers", "_values")

    def __init__(self, source: ModbusSource, answers: list[list | None]) -> None:
        """answers: what each block of the source's reads returned (None: refused)."""
        self._source, self._answers = source, answers
        self._values: dict[str, float] | None = None

    def _decoded(self) -> dict[str, float]:
        if self._values is None:
            values: dict[str, float] = {}
            try:
                for block, data in zip(self._source.blocks, self._answers, strict=True):
                    if data is not None:
                        block.decode_into(data, values)
            except (struct.error, ValueError, IndexError, TypeError) as exc:
                # registers the codec cannot read: the poll counts as failed (the channels
                # report COMM_ERROR), it must not fail the release that looked at it
                self._source.undecodable += 1
                if self._source.undecodable == 1:
                    log.warning("device '%s': undecodable registers (%s); counted in "
                                "undecodable", self._source.name, exc)
                values = {}
            self._values = values
        return self._values

    def __getitem__(self, name: str) -> float:
        return self._decoded()[name]

    def get(self, name: str, default: float | None = None) -> float | None:
        values = self._values               # what a release calls: decoded once
        if values is None:
            values = self._decoded()
        return values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


# -- the `modbus_tcp` and `modbus_rtu` kinds ------------------------------------------------
def _parse_tcp(node: Node, dev: DeviceConfig) -> None:
    from edge.config import host_problem

    timeout = timeout_s(node)
    problem = host_problem(node.get("host", str))
    if problem:
        raise node.error(problem, "host")
    dev.link = ModbusLink("tcp", host=node.get("host", str),
                          port=node.get("port", int, 502, min=1, max=65535),
                          unit=node.get("unit", int, 1, min=0, max=247), timeout_s=timeout,
                          max_gap=node.get("max_gap", int, 0, min=0, max=120))


def _parse_rtu(node: Node, dev: DeviceConfig) -> None:
    timeout = timeout_s(node)
    dev.link = ModbusLink("rtu", serial_port=node.get("port", str),
                          baudrate=node.get("baudrate", int, 19200, min=50),
                          unit=node.get("unit", int, 1, min=1, max=247), timeout_s=timeout,
                          max_gap=node.get("max_gap", int, 0, min=0, max=120))


def _share_rtu_line(node: Node, dev: DeviceConfig, other: DeviceConfig) -> None:
    """Units on one RS-485 line: one baudrate, distinct unit addresses."""
    port = dev.link.serial_port
    if other.link.baudrate != dev.link.baudrate:
        raise node.error(f"units on {port} must share one baudrate "
                         f"('{other.name}' uses {other.link.baudrate})", "baudrate")
    if other.link.unit == dev.link.unit:
        raise node.error(f"unit {dev.link.unit} on {port} is already device "
                         f"'{other.name}'", "unit")


def _parse_register(node: Node, dev: DeviceConfig) -> dict:
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


def _make_tcp_source(dev: DeviceConfig, channels: list[ChannelConfig],
                     ctx: SourceContext) -> ModbusSource:
    return ModbusSource(dev.name, channels, dev.link)


def _make_rtu_source(dev: DeviceConfig, channels: list[ChannelConfig],
                     ctx: SourceContext) -> ModbusSource:
    # units on one RS-485 line share its connection: requests go one at a time
    key = (_make_rtu_source, dev.link.serial_port)
    line = ctx.shared.get(key)
    if line is None:
        line = ctx.shared[key] = ModbusConnection(dev.link)
    return ModbusSource(dev.name, channels, dev.link, line)


REGISTER_FIELDS = ("table", "address", "type", "byte_order", "word_order")
MODBUS_TCP = DeviceKind(
    "modbus_tcp", "Modbus TCP", fields=("host", "port", "unit", "timeout_ms", "max_gap"),
    channel_fields=REGISTER_FIELDS, parse_device=_parse_tcp, parse_channel=_parse_register,
    make_source=_make_tcp_source)
MODBUS_RTU = DeviceKind(
    "modbus_rtu", "Modbus RTU", fields=("port", "baudrate", "unit", "timeout_ms", "max_gap"),
    channel_fields=REGISTER_FIELDS, parse_device=_parse_rtu, parse_channel=_parse_register,
    make_source=_make_rtu_source, serial_port=lambda dev: dev.link.serial_port,
    share_line=_share_rtu_line)

"""Fuzz targets for what arrives over a wire: MQTT commands, Modbus answers, serial
lines and frames, the `--mqtt` URL, and the json.loads baseline.

Each `make_*` builds the target once (devices, sources, an event loop) and returns
`test_one_input(data)`, which feeds the bytes to the real edge entry point and lets only
that entry point's documented error through as "fine" (it returns); any other exception
escapes and is a crash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

OneInput = Callable[[bytes], None]


def make_json_baseline() -> OneInput:
    """The trivial anchor: json.loads, whose documented errors are ValueError (and
    RecursionError for deep nesting, which CPython documents for json)."""
    def test_one_input(data: bytes) -> None:
        try:
            json.loads(data)
        except (ValueError, RecursionError):
            pass
    return test_one_input


# -- inbound MQTT commands ---------------------------------------------------------------
def make_commands() -> OneInput:
    """First byte: which built-in command; the rest: the payload, JSON or msgpack (the
    validator picks by the first byte). After validation the bridge answers with a msgpack
    reply and publishes the command, so both are packed here too: a message that passes
    the validator but cannot be answered kills the receiver the same way."""
    import msgpack

    from edge.rt.commands import CommandRejected, builtin_commands

    specs = list(builtin_commands(6).values())

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        spec = specs[data[0] % len(specs)]
        reply: dict = {"command": spec.name}
        try:
            command = spec.validate(data[1:])
        except CommandRejected as exc:
            reply.update(ok=False, error=str(exc))
        else:
            reply.update(id=command["id"], ok=True)
            msgpack.packb(command, use_bin_type=True)     # the bus message, forwarded
        msgpack.packb(reply, use_bin_type=True)
    return test_one_input


# -- Modbus answers through the pymodbus client path -------------------------------------
class _WireTransport:
    """Stands in for the socket or serial line under pymodbus' protocol object: what the
    client writes is a request; the fuzzed answer comes back through the protocol's own
    data_received, as the event loop would deliver it."""

    def __init__(self) -> None:
        self.answer: list[bytes] = []
        self.protocol = None

    def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        for chunk in self.answer:
            loop.call_soon(self._deliver, chunk)
        loop.call_soon(self._time_out)

    def _deliver(self, chunk: bytes) -> None:
        from pymodbus.exceptions import ModbusException

        try:
            self.protocol.data_received(chunk)
        except ModbusException:
            # asyncio closes a connection whose protocol raised in data_received; the
            # request then times out (edge reconnects): a documented outcome
            pass

    def _time_out(self) -> None:
        # what edge's watchdog (TCP) or pymodbus' timer (RTU) does to an unanswered request
        future = self.protocol.response_future
        if not future.done():
            future.set_exception(TimeoutError())

    def close(self) -> None:
        pass


# (table, address, type, byte order, word order) per channel of each source
_MODBUS_LAYOUTS = [
    [("holding", 0, "uint16", "big", "big"), ("holding", 1, "int16", "big", "big"),
     ("holding", 2, "float32", "big", "big"), ("holding", 5, "int32", "big", "big")],
    [("holding", 10, "float32", "little", "little"), ("holding", 12, "uint32", "big", "little"),
     ("holding", 13, "int16", "little", "big")],
    [("input", 0, "uint16", "big", "big"), ("input", 3, "float32", "big", "big")],
    [("coil", 0, "uint16", "big", "big"), ("coil", 9, "uint16", "big", "big")],
    [("discrete", 3, "uint16", "big", "big")],
]


class WrongAnswer(Exception):
    """edge took values from an answer that is not one to its request."""


def _modbus_target(transport: str) -> OneInput:
    from pymodbus.exceptions import ModbusException

    from edge.acquisition.channel import ChannelConfig
    from edge.acquisition.sources.modbus import ModbusLink, ModbusSource
    from edge.errors import DeviceCommError

    loop = asyncio.new_event_loop()
    # max_gap: each device is one block, so one answer serves one poll
    link = ModbusLink(transport, unit=1, timeout_s=0.5, serial_port="/dev/null", max_gap=16)
    sources = []
    answered: dict = {}                       # device -> the last answer pymodbus gave edge
    for i, layout in enumerate(_MODBUS_LAYOUTS):
        channels = [ChannelConfig(name=f"c{i}_{j}", device=f"d{i}",
                                  source={"table": t, "address": a, "type": ty,
                                          "byte_order": bo, "word_order": wo})
                    for j, (t, a, ty, bo, wo) in enumerate(layout)]
        source = ModbusSource(f"d{i}", channels, link)
        wire = _WireTransport()

        async def connect(source=source, wire=wire):
            client = source.conn._make_client(None if transport == "tcp" else 0.5)
            wire.protocol = client.ctx
            client.ctx.transport = wire
            source.conn.client = client
        loop.run_until_complete(connect())
        sources.append((source, wire))

        def remember(execute=source.conn.client.execute, name=source.name):
            async def execute_and_remember(no_response_expected, request):
                answered[name] = rsp = await execute(no_response_expected, request)
                return rsp
            return execute_and_remember
        source.conn.client.execute = remember()

    async def poll(source) -> None:
        values, refused = await source.read()
        if values:                           # edge took the answer's registers or bits
            (block, request), = source._reads
            if answered[source.name].function_code != request.function_code:
                raise WrongAnswer(f"values taken from a function code "
                                  f"{answered[source.name].function_code} answer to a "
                                  f"function code {request.function_code} request")
        for ch in source.channels:          # what the sampler does: look at every value
            values.get(ch.name)
        len(values)

    def test_one_input(data: bytes) -> None:
        """Byte 0: which device; byte 1: where the answer splits into two reads of the
        socket (0: one); the rest: the answer. Values taken from an answer of another
        function code than the request's (input registers for holding ones) are wrong
        data published as good: WrongAnswer, a crash."""
        if len(data) < 2:
            return
        source, wire = sources[data[0] % len(sources)]
        answer, cut = data[2:], data[1]
        wire.answer = [answer[:cut], answer[cut:]] if 0 < cut < len(answer) else [answer]
        source.conn.client.ctx.next_tid = 0        # as after a connect: tid 1 comes next
        try:
            loop.run_until_complete(poll(source))
        except (DeviceCommError, ModbusException):
            pass
    return test_one_input


def make_modbus_tcp() -> OneInput:
    return _modbus_target("tcp")


def make_modbus_rtu() -> OneInput:
    return _modbus_target("rtu")


# -- serial lines and frames -------------------------------------------------------------
def _serial_target(protocol: str) -> OneInput:
    from edge.acquisition.channel import ChannelConfig
    from edge.acquisition.sources.serial import Corrupt, SerialLink, SerialSource

    if protocol == "ascii":
        links = [SerialLink("/dev/null", fields=["t", "p", "flow"]),
                 SerialLink("/dev/null", terminator=b"\r\n", fields=["t", "p", "flow"],
                            nmea=True),
                 SerialLink("/dev/null", format="keyvalue", separator=";"),
                 SerialLink("/dev/null", format="keyvalue", nmea=True)]
        channels = [ChannelConfig(name=n, device="s", source={"field": n})
                    for n in ("t", "p", "flow")]
    else:
        links = [SerialLink("/dev/null", protocol="binary", checksum=c, sync=s, max_payload=m)
                 for c, s, m in (("sum8", b"\xaa\x55", 255), ("xor8", b"\x7e", 32),
                                 ("crc16", b"\xaa\x55", 64))]
        channels = [ChannelConfig(name=f"b{i}", device="s", source={
            "offset": off, "type": ty, "byte_order": bo})
            for i, (off, ty, bo) in enumerate((
                (0, "uint16", "big"), (2, "int16", "little"), (4, "float32", "big"),
                (8, "int32", "little"), (12, "uint32", "big")))]
    sources = [SerialSource("s", channels, link) for link in links]

    def test_one_input(data: bytes) -> None:
        """Byte 0: which link settings; byte 1: chunk size of the reads (0: one read);
        the rest: what the device sent. The decoder's documented outcome for bad input is a
        Corrupt frame, and the source's a channel refused with 'decode': nothing raises."""
        if len(data) < 2:
            return
        source = sources[data[0] % len(sources)]
        decoder = source._decoder
        decoder.buf.clear()
        stream, step = data[2:], data[1] or len(data)
        for i in range(0, len(stream), step):
            for frame in decoder.feed(stream[i:i + step]):
                if not isinstance(frame, Corrupt):
                    source._values(frame)
    return test_one_input


def make_serial_ascii() -> OneInput:
    return _serial_target("ascii")


def make_serial_binary() -> OneInput:
    return _serial_target("binary")


# -- the --mqtt URL ------------------------------------------------------------------------
def make_mqtt_url() -> OneInput:
    """The bytes as a command-line argument (decoded as Python decodes argv: UTF-8 with
    surrogateescape), through `edge run --mqtt`'s own parser, onto a shipped board."""
    from edge.config import load_board
    from edge.errors import ConfigError
    from edge.rt.bus_config import mqtt_config_from_url

    board = load_board("sim_arm")

    def test_one_input(data: bytes) -> None:
        url = data.decode("utf-8", "surrogateescape")
        if "\0" in url:           # an argv string cannot hold NUL
            return
        try:
            mqtt_config_from_url(url, board)
        except ConfigError:
            pass
    return test_one_input

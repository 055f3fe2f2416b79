"""Serial sources over real pty pairs: ASCII lines and binary frames, faults included."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.acquisition.channel import ChannelConfig
from edge.acquisition.sources import Backoff, DevicePoller, collecting_sink
from edge.acquisition.sources.serial import (
    Corrupt,
    FrameDecoder,
    SerialLink,
    SerialSource,
    checksum,
    crc16_modbus,
    encode_frame,
    encode_line,
)


def test_crc16_matches_the_modbus_reference_vector():
    # the Modbus spec's example: 01 03 00 00 00 0A -> CRC C5CD (sent CD C5)
    assert crc16_modbus(bytes.fromhex("01030000000A")) == 0xCDC5
    assert checksum("crc16", bytes.fromhex("01030000000A")) == bytes.fromhex("C5CD")


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["sum8", "xor8", "crc16"]),
       st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=8)), min_size=1,
                max_size=8),
       st.lists(st.integers(0, 400), max_size=10))
def test_binary_decoder_recovers_every_frame_through_garbage_and_any_chunking(
        kind, items, cuts):
    link = SerialLink(port="-", protocol="binary", checksum=kind)
    stream = b""
    for payload, garbage in items:
        stream += bytes(b for b in garbage if b != 0xAA) + encode_frame(link, payload)
    bounds = sorted({0, len(stream), *[c for c in cuts if c < len(stream)]})
    dec = FrameDecoder(link)
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        out += dec.feed(stream[a:b])
    assert [f for f in out if not isinstance(f, Corrupt)] == [p for p, _ in items]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-999, 999), min_size=3, max_size=3), st.integers(0, 30))
def test_ascii_nmea_lines_and_a_flipped_character_is_caught(vals, flip):
    link = SerialLink(port="-", fields=["a", "b", "c"], nmea=True)
    line = encode_line(link, dict(zip("abc", vals, strict=True)))
    assert FrameDecoder(link).feed(line) == [{"a": str(vals[0]), "b": str(vals[1]),
                                              "c": str(vals[2])}]
    i = flip % (len(line) - 1)                      # any byte but the terminator
    bad = line[:i] + bytes([line[i] ^ 0x01]) + line[i + 1:]
    out = FrameDecoder(link).feed(bad)
    assert len(out) == 1 and isinstance(out[0], Corrupt)


def chans(*specs):
    return [ChannelConfig(name=n, device="s", source=src) for n, src in specs]


def poller_for(source):
    got = {}
    p = DevicePoller(source, 0.005, collecting_sink(got),
                     tick_fn=lambda: 0, backoff=Backoff(0.005, 0.02))
    return p, got


async def test_ascii_request_answer_with_silent_late_and_garbage_device(serial_device):
    link = SerialLink(port="", request=b"MEAS?\r\n", format="keyvalue", nmea=True,
                      timeout_s=0.08, baudrate=115200)
    dev = await serial_device(link, {"temp": 23.5, "hum": 41})
    link.port = dev.path
    src = SerialSource("cab", chans(("temp", {"field": "temp"}), ("hum", {"field": "hum"}),
                                    ("nope", {"field": "pressure"})), link)
    poller, got = poller_for(src)
    async with poller.service():
        await poller.wait_attempts(2)
        assert got["temp"][-1].raw == 23.5 and got["hum"][-1].raw == 41.0
        assert got["nope"][-1].error == "decode"           # the device has no such field
        dev.faults.silent = True
        await poller.wait_attempts(2)
        assert poller.errors["timeout"] >= 2
        dev.faults.silent, dev.faults.delay_s = False, 0.2  # later than the timeout
        await poller.wait_attempts(2)
        dev.faults.delay_s, dev.faults.corrupt = 0.0, True
        await poller.wait_attempts(3)
        assert poller.errors["corrupt"] >= 1 and src.corrupt_frames >= 1
        dev.faults.clear()
        dev.values["temp"] = 24.0
        polls = poller.polls
        while poller.polls < polls + 2:
            await poller.wait_attempts(1)
    assert got["temp"][-1].raw == 24.0
    assert dev.requests >= poller.attempts - poller.errors["connect"] - 1


async def test_binary_streaming_device_with_crc(serial_device):
    link = SerialLink(port="", protocol="binary", checksum="crc16", timeout_s=0.1,
                      sync=b"\xaa\x55")

    def payload(v):
        return struct.pack(">hf", v["current"], v["volts"])

    dev = await serial_device(link, {"current": -1234, "volts": 24.25},
                              stream_period_s=0.005, payload=payload)
    link.port = dev.path
    src = SerialSource("drive", chans(("i", {"offset": 0, "type": "int16"}),
                                      ("v", {"offset": 2, "type": "float32"}),
                                      ("beyond", {"offset": 5, "type": "float32"})), link)
    poller, got = poller_for(src)
    async with poller.service():
        await poller.wait_attempts(3)
        assert got["i"][-1].raw == -1234.0 and got["v"][-1].raw == 24.25
        assert got["beyond"][-1].error == "decode"
        dev.faults.corrupt = True
        await poller.wait_attempts(2)
        assert poller.errors["corrupt"] >= 1
    assert poller.polls >= 3


async def test_missing_port_is_a_connect_error():
    src = SerialSource("ghost", chans(("x", {"field": "x"})),
                       SerialLink(port="/dev/does-not-exist-edge", timeout_s=0.05))
    poller, got = poller_for(src)
    async with poller.service():
        await poller.wait_attempts(3)
    assert poller.errors["connect"] >= 3 and got["x"][-1].error == "connect"

"""The rigs' own wire encoding (hil.wire) against hand-computed bytes from the protocol
texts, against pymodbus (a third implementation) on a real RTU line, and in agreement
with edge's codec and serial framing."""

import asyncio
import contextlib
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU

from edge.acquisition.codec import decode, encode
from edge.acquisition.sources.serial import FrameDecoder, SerialLink
from hil.faults import Faults, PtyLink
from hil.slave_sim import SlaveSimulator
from hil.wire import (
    READ_HOLDING_REGISTERS,
    ascii_line,
    binary_frame,
    crc16_modbus,
    read_request,
    registers,
    rtu_frame,
)


def test_crc16_modbus_of_the_reference_vectors():
    # the read request every Modbus text shows: CRC C5 CD on the wire, low byte first
    assert rtu_frame(1, read_request(READ_HOLDING_REGISTERS, 0, 10)) == \
        bytes.fromhex("01 03 00 00 00 0A C5 CD")
    assert crc16_modbus(bytes.fromhex("01 03 00 00 00 0A")) == 0xCDC5
    assert crc16_modbus(b"123456789") == 0x4B37      # the CRC catalogue's check value
    assert crc16_modbus(b"") == 0xFFFF                # the initial value, no final XOR


def pymodbus_crc_bytes(data: bytes) -> bytes:
    # pymodbus returns the CRC with its bytes already in wire order (low byte first)
    return struct.pack(">H", FramerRTU.compute_CRC(data))


@given(st.binary(max_size=64))
def test_crc16_agrees_with_pymodbus(data):
    assert struct.pack("<H", crc16_modbus(data)) == pymodbus_crc_bytes(data)


@pytest.mark.parametrize(("value", "dtype", "byte_order", "word_order", "expected"), [
    (4321, "uint16", "big", "big", [0x10E1]),
    (-1, "int16", "big", "big", [0xFFFF]),
    (-2, "int32", "big", "big", [0xFFFF, 0xFFFE]),
    (0x12345678, "uint32", "big", "big", [0x1234, 0x5678]),
    (0x12345678, "uint32", "big", "little", [0x5678, 0x1234]),
    (0x12345678, "uint32", "little", "big", [0x3412, 0x7856]),
    (0x12345678, "uint32", "little", "little", [0x7856, 0x3412]),
    (12.75, "float32", "big", "big", [0x414C, 0x0000]),      # 1.59375 * 2^3
    (12.75, "float32", "big", "little", [0x0000, 0x414C]),
    (1.0, "float32", "little", "big", [0x803F, 0x0000]),     # 0x3F800000, bytes swapped
])
def test_registers_of_known_values(value, dtype, byte_order, word_order, expected):
    assert registers(value, dtype, byte_order, word_order) == expected


def test_registers_refuse_what_a_device_cannot_hold():
    with pytest.raises(struct.error):
        registers(70000, "uint16")
    with pytest.raises(ValueError):
        registers(1, "uint16", byte_order="middle")


def test_serial_framings_of_known_payloads():
    sync = bytes.fromhex("AA 55")
    payload = bytes.fromhex("01 02 03")
    # checksum over len . payload = 03 01 02 03: sum 09, xor 03
    assert binary_frame(sync, payload, "sum8") == bytes.fromhex("AA 55 03 01 02 03 09")
    assert binary_frame(sync, payload, "xor8") == bytes.fromhex("AA 55 03 01 02 03 03")
    assert binary_frame(sync, payload, "crc16")[-2:] == \
        pymodbus_crc_bytes(bytes.fromhex("03 01 02 03"))
    # 'A' ^ '=' ^ '1' = 0x41 ^ 0x3D ^ 0x31 = 0x4D
    assert ascii_line({"A": 1}, fields=None, separator=",", terminator=b"\r\n", nmea=True) \
        == b"A=1*4D\r\n"
    assert ascii_line({"a": 1, "b": 2.5}, fields=["b", "a"], separator=";", terminator=b"\n",
                      nmea=False) == b"2.5;1\n"


VALUES = {"int16": st.integers(-2**15, 2**15 - 1), "uint16": st.integers(0, 2**16 - 1),
          "int32": st.integers(-2**31, 2**31 - 1), "uint32": st.integers(0, 2**32 - 1),
          "float32": st.floats(width=32, allow_nan=False)}


@given(st.sampled_from(sorted(VALUES)).flatmap(lambda t: st.tuples(st.just(t), VALUES[t])),
       st.sampled_from(["big", "little"]), st.sampled_from(["big", "little"]))
def test_edge_codec_and_the_rig_agree(typed, byte_order, word_order):
    dtype, value = typed
    regs = registers(value, dtype, byte_order, word_order)
    assert encode(value, dtype, byte_order, word_order) == regs
    assert decode(regs, dtype, byte_order, word_order) == value


@given(st.binary(max_size=40), st.sampled_from(["sum8", "xor8", "crc16"]))
def test_edge_reads_the_rigs_binary_frames(payload, checksum):
    link = SerialLink(port="", protocol="binary", checksum=checksum)
    assert FrameDecoder(link).feed(binary_frame(link.sync, payload, checksum)) == [payload]


def test_edge_reads_the_rigs_ascii_lines():
    link = SerialLink(port="", fields=["t", "p"], nmea=True, terminator=b"\r\n")
    line = ascii_line({"t": 21.5, "p": 1013}, fields=link.fields, separator=",",
                      terminator=link.terminator, nmea=True)
    assert FrameDecoder(link).feed(line) == [{"t": "21.5", "p": "1013"}]


async def test_pymodbus_answers_the_rigs_rtu_request_with_the_rigs_bytes():
    sim = SlaveSimulator(unit=3, size=10)
    async with PtyLink(Faults()).running() as line, sim.rtu(line.device_path):
        await sim.set_value("holding", 4, 12.75, "float32")
        fd = os.open(line.client_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, rtu_frame(3, read_request(READ_HOLDING_REGISTERS, 4, 2)))
            expected = rtu_frame(3, struct.pack(">BB2H", READ_HOLDING_REGISTERS, 4,
                                                *registers(12.75, "float32")))
            got = b""
            for _ in range(200):
                with contextlib.suppress(BlockingIOError):
                    got += os.read(fd, 256)
                if len(got) >= len(expected):
                    break
                await asyncio.sleep(0.005)
        finally:
            os.close(fd)
    assert got == expected

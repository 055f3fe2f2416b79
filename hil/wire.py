"""What the rigs put on the wire, written from the protocol texts with struct and nothing
of edge's: Modbus register layouts and RTU frames (MODBUS Application Protocol V1.1b3,
MODBUS over Serial Line V1.02) and the serial device framings of docs/acquisition.md.

A rig that encoded with edge's own codec would agree with any bug in edge's decoder, and
the tests that use it could not see the bug; this module is the independent side.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

# MODBUS Application Protocol V1.1b3, 6.1-6.4: the public function codes that read
READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04

# a table is named by the function code that reads it (so does pymodbus' datastore)
FUNCTION_CODES = {"coil": READ_COILS, "discrete": READ_DISCRETE_INPUTS,
                  "holding": READ_HOLDING_REGISTERS, "input": READ_INPUT_REGISTERS}

# value type -> its bytes, most significant first (4.2: "MODBUS uses a 'big-Endian'
# representation for addresses and data items")
VALUE_LAYOUTS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}
ORDERS = ("big", "little")


def registers(value: float | int, dtype: str = "uint16", byte_order: str = "big",
              word_order: str = "big") -> list[int]:
    """The 16-bit registers a device presents for `value`.

    The spec sends a register high byte first ("big"); a device with byte_order "little"
    swaps the two bytes inside each register. A 32-bit value spans two registers whose
    order the spec leaves open: word_order "big" puts the most significant register first
    (ABCD), "little" the least significant first (CDAB). Raises KeyError for an unknown
    type, ValueError for an unknown order, struct.error when the value does not fit."""
    if byte_order not in ORDERS or word_order not in ORDERS:
        raise ValueError(f"byte and word order are 'big' or 'little', not "
                         f"{byte_order!r}/{word_order!r}")
    raw = struct.pack(VALUE_LAYOUTS[dtype], value)
    words = list(struct.unpack(f"{'>' if byte_order == 'big' else '<'}{len(raw) // 2}H", raw))
    return words[::-1] if word_order == "little" else words


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (Serial Line V1.02, 6.2.2): polynomial 0x8005 reflected (0xA001),
    initial value 0xFFFF, no final XOR. Table-driven, one lookup per byte (edge computes it
    bit by bit: two ways to the same figure)."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC16_TABLE[(crc ^ b) & 0xFF]
    return crc


def read_request(function: int, address: int, count: int) -> bytes:
    """The PDU of a read (function code 1-4): function, start address, quantity."""
    return struct.pack(">BHH", function, address, count)


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    """An RTU frame: unit address, PDU, then the CRC of both, low byte first (6.2.2)."""
    body = struct.pack(">B", unit) + pdu
    return body + struct.pack("<H", crc16_modbus(body))


def _xor(data: bytes) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def frame_checksum(kind: str, data: bytes) -> bytes:
    """The checksum bytes of a binary serial frame: sum8 (sum mod 256), xor8, or crc16
    (the Modbus CRC, low byte first)."""
    if kind == "sum8":
        return struct.pack(">B", sum(data) % 256)
    if kind == "xor8":
        return struct.pack(">B", _xor(data))
    if kind == "crc16":
        return struct.pack("<H", crc16_modbus(data))
    raise ValueError(f"unknown checksum {kind!r}")


def binary_frame(sync: bytes, payload: bytes, checksum: str) -> bytes:
    """A binary serial frame: sync · len · payload · checksum(len · payload)."""
    body = struct.pack(">B", len(payload)) + payload
    return sync + body + frame_checksum(checksum, body)


def ascii_line(values: Mapping[str, object], *, fields: list[str] | None, separator: str,
               terminator: bytes, nmea: bool) -> bytes:
    """An ASCII serial line: the values by position in `fields` (csv) or as key=value pairs
    (fields None), then with `nmea` `*HH` (the XOR of the body's bytes, upper-case hex),
    then the terminator."""
    items = [str(values[f]) for f in fields] if fields is not None else \
        [f"{k}={v}" for k, v in values.items()]
    body = separator.join(items).encode("ascii")
    if nmea:
        body += b"*%02X" % _xor(body)
    return body + terminator

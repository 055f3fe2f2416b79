"""Register codec: Modbus 16-bit registers <-> numbers, with byte and word order.

A register holds two bytes; `byte_order` says which comes first inside each register on
the wire ("big" is the Modbus standard), `word_order` says which register of a 32-bit
value comes first ("big": most significant register first).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from edge.errors import ConfigError

# type name -> (struct code, registers)
DTYPES: dict[str, tuple[str, int]] = {
    "int16": ("h", 1), "uint16": ("H", 1),
    "int32": ("i", 2), "uint32": ("I", 2),
    "float32": ("f", 2),
}
ORDERS = ("big", "little")


def register_count(dtype: str) -> int:
    """How many 16-bit registers a value of `dtype` occupies."""
    try:
        return DTYPES[dtype][1]
    except KeyError:
        raise ConfigError(f"unknown register type {dtype!r} "
                          f"(expected one of: {', '.join(DTYPES)})") from None


def _check(dtype: str, byte_order: str, word_order: str) -> tuple[str, int]:
    if byte_order not in ORDERS or word_order not in ORDERS:
        raise ConfigError(f"byte and word order must be 'big' or 'little', "
                          f"got {byte_order!r}/{word_order!r}")
    register_count(dtype)
    return DTYPES[dtype]


def make_block_decoder(count: int, members: Sequence[tuple[int, str, str, str]]
                       ) -> Callable[[Sequence[int]], tuple[float | int, ...]]:
    """A precompiled decoder for one block read of `count` registers holding `members`
    (offset in the block, type, byte order, word order): registers -> one value per member.

    When every member is in the standard order and they do not overlap, the whole block is
    one struct layout (gaps as pad bytes) and decodes in a single call; otherwise each
    member decodes on its own."""
    block = struct.Struct(f">{count}H")
    layout, pos, one_layout = ">", 0, True
    for off, dtype, byte_order, word_order in members:
        code, n = _check(dtype, byte_order, word_order)
        if off < pos or byte_order != "big" or (word_order != "big" and n > 1):
            one_layout = False
        layout += "x" * (2 * max(0, off - pos)) + code
        pos = max(pos, off + n)
    if one_layout:
        whole = struct.Struct(layout)

        def decode_block(regs: Sequence[int]) -> tuple[float | int, ...]:
            return whole.unpack_from(block.pack(*regs[:count]))
        return decode_block
    parts = [(off, register_count(dtype), make_decoder(dtype, bo, wo))
             for off, dtype, bo, wo in members]

    def decode_each(regs: Sequence[int]) -> tuple[float | int, ...]:
        return tuple(dec(regs[off:off + n]) for off, n, dec in parts)
    return decode_each


def decode(registers: Sequence[int], dtype: str, byte_order: str = "big",
           word_order: str = "big") -> float | int:
    """The value held by `registers` (exactly register_count(dtype) of them)."""
    code, n = _check(dtype, byte_order, word_order)
    if len(registers) != n:
        raise ValueError(f"{dtype} needs {n} registers, got {len(registers)}")
    regs = list(registers) if word_order == "big" else list(reversed(registers))
    raw = b"".join(r.to_bytes(2, byte_order) for r in regs)   # now big-endian overall
    return struct.unpack(">" + code, raw)[0]


def encode(value: float | int, dtype: str, byte_order: str = "big",
           word_order: str = "big") -> list[int]:
    """The registers that hold `value` (raises struct.error when it does not fit)."""
    code, n = _check(dtype, byte_order, word_order)
    raw = struct.pack(">" + code, value)
    regs = [int.from_bytes(raw[2 * i:2 * i + 2], byte_order) for i in range(n)]
    return regs if word_order == "big" else list(reversed(regs))


def make_decoder(dtype: str, byte_order: str = "big",
                 word_order: str = "big") -> Callable[[Sequence[int]], float | int]:
    """A precompiled `decode` for one layout (the poll hot path decodes many values)."""
    code, n = _check(dtype, byte_order, word_order)
    value = struct.Struct(">" + code)
    regs = struct.Struct(("<" if byte_order == "little" else ">") + "H" * n)
    if word_order == "little" and n > 1:
        def dec(r: Sequence[int]) -> float | int:
            return value.unpack(regs.pack(*reversed(r)))[0]
    else:
        def dec(r: Sequence[int]) -> float | int:
            return value.unpack(regs.pack(*r))[0]
    return dec

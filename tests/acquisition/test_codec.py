"""Register codec against hand-computed vectors and round trips (hypothesis)."""

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.acquisition.codec import (
    DTYPES,
    ORDERS,
    decode,
    encode,
    make_block_decoder,
    make_decoder,
    register_count,
)
from edge.errors import ConfigError

# 1.0f is 0x3F800000; 0x12345678 as uint32; -2 as int16 is 0xFFFE.
VECTORS = [
    (1.0, "float32", "big", "big", [0x3F80, 0x0000]),
    (1.0, "float32", "big", "little", [0x0000, 0x3F80]),
    (1.0, "float32", "little", "big", [0x803F, 0x0000]),
    (1.0, "float32", "little", "little", [0x0000, 0x803F]),
    (0x12345678, "uint32", "big", "big", [0x1234, 0x5678]),
    (0x12345678, "uint32", "big", "little", [0x5678, 0x1234]),
    (0x12345678, "uint32", "little", "little", [0x7856, 0x3412]),
    (-2, "int16", "big", "big", [0xFFFE]),
    (-2, "int16", "little", "big", [0xFEFF]),
    (-1, "int32", "big", "little", [0xFFFF, 0xFFFF]),
    (40000, "uint16", "big", "big", [40000]),
]


@pytest.mark.parametrize("value,dtype,bo,wo,regs", VECTORS)
def test_hand_vectors(value, dtype, bo, wo, regs):
    assert encode(value, dtype, bo, wo) == regs
    assert decode(regs, dtype, bo, wo) == value
    assert make_decoder(dtype, bo, wo)(regs) == value


RANGES = {"int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1),
          "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1)}


@given(st.sampled_from(sorted(RANGES)), st.sampled_from(ORDERS), st.sampled_from(ORDERS),
       st.data())
def test_integer_round_trip(dtype, bo, wo, data):
    lo, hi = RANGES[dtype]
    v = data.draw(st.integers(lo, hi))
    regs = encode(v, dtype, bo, wo)
    assert len(regs) == register_count(dtype)
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert decode(regs, dtype, bo, wo) == v
    assert make_decoder(dtype, bo, wo)(regs) == v


@given(st.floats(width=32, allow_nan=False), st.sampled_from(ORDERS), st.sampled_from(ORDERS))
def test_float_round_trip_is_exact(v, bo, wo):
    out = decode(encode(v, "float32", bo, wo), "float32", bo, wo)
    assert out == v or (math.isinf(v) and out == v)


@given(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))
def test_word_order_is_register_reversal(regs):
    # oracle: struct on the byte string assembled by hand
    raw_big = b"".join(r.to_bytes(2, "big") for r in regs)
    assert decode(regs, "uint32") == struct.unpack(">I", raw_big)[0]
    assert decode(regs[::-1], "uint32", "big", "little") == struct.unpack(">I", raw_big)[0]


def test_errors():
    with pytest.raises(ConfigError):
        register_count("int64")
    with pytest.raises(ConfigError):
        decode([0], "int16", "middle")
    with pytest.raises(ValueError):
        decode([0], "float32")
    assert set(DTYPES) == {"int16", "uint16", "int32", "uint32", "float32"}


layouts = st.lists(st.tuples(st.integers(0, 12), st.sampled_from(sorted(DTYPES)),
                             st.sampled_from(ORDERS), st.sampled_from(ORDERS)),
                   min_size=1, max_size=6)


@given(layouts, st.data())
def test_block_decoder_equals_decoding_each_member(members, data):
    """One block read: the one-call layout (standard order, no overlap) and the
    member-by-member path both give what decode() gives for each member alone."""
    members = sorted(members)
    count = max(off + register_count(t) for off, t, _, _ in members)
    regs = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count))
    got = make_block_decoder(count, members)(regs)
    want = [decode(regs[off:off + register_count(t)], t, bo, wo) for off, t, bo, wo in members]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w or (math.isnan(g) and math.isnan(w))

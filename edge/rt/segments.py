"""The journal's on-disk record format and its recovery scan.

A segment file `<first index, 20 digits>.seg` holds records
`length u32 | crc32(index + payload) u32 | index u64 | payload`, little-endian. The scan
here finds every valid record of a segment, resynchronising after a corrupt region on the
next header whose index and CRC check, so one bad byte costs the records it touches, not
the rest of the journal.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

HEADER = struct.Struct("<IIQ")        # payload length, crc32(index + payload), index
INDEX = struct.Struct("<Q")
MAX_RECORD_BYTES = 16 * 1024 * 1024
SEGMENT_SUFFIX = ".seg"
_ZERO_HEADER = bytes(HEADER.size)       # never valid: crc32 of index 0 is not 0
_NONZERO = re.compile(rb"[^\x00]")


def crc(index: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(INDEX.pack(index)))


def encode(index: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), crc(index, payload), index) + payload


def segment_name(first: int) -> str:
    return f"{first:020d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first index a segment file name declares; None if it is no segment name."""
    if not name.endswith(SEGMENT_SUFFIX):
        return None
    stem = name[: -len(SEGMENT_SUFFIX)]
    return int(stem) if stem.isascii() and stem.isdigit() else None


@dataclass
class ScanResult:
    records: list[tuple[int, int, int]] = field(default_factory=list)  # (index, offset, length)
    bad_ranges: list[tuple[int, int]] = field(default_factory=list)    # byte [start, end)
    good_end: int = 0            # byte offset just past the last valid record

    @property
    def bad_bytes(self) -> int:
        return sum(end - start for start, end in self.bad_ranges)


def _valid_at(data: bytes, pos: int, min_index: int) -> tuple[int, int] | None:
    """(index, end offset) of a valid record at `pos`, else None."""
    length, checksum, index = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + length
    # Cheap filters first: in a corrupt region few byte positions pass them, so the CRC
    # is computed rarely. (No upper bound on the index: records lost before this one
    # may have taken any number of indexes.)
    if length > MAX_RECORD_BYTES or end > len(data) or index < min_index:
        return None
    if crc(index, data[pos + HEADER.size:end]) != checksum:
        return None
    return index, end


def _next_candidate(data: bytes, start: int, min_index: int) -> int:
    """The first offset from `start` where a header could begin, cheaply: its index
    field's upper five bytes must be those of `min_index` or the next 2**24 block (so a
    resync finds records after up to 16 M lost ones), and a header of zeros is skipped
    with the zero run it lies in."""
    n = len(data)
    while True:
        hi = min_index >> 24
        best = n
        for block in (hi, hi + 1):
            k = data.find(block.to_bytes(5, "little"), start + 11)
            if k != -1:
                best = min(best, k - 11)
        if best + HEADER.size > n:
            return n
        if data[best:best + HEADER.size] != _ZERO_HEADER:
            return best
        nonzero = _NONZERO.search(data, best)
        if nonzero is None:
            return n
        start = max(best + 1, nonzero.start() - HEADER.size + 1)


def scan(data: bytes, min_index: int) -> ScanResult:
    """Every valid record of a segment's bytes, indexes strictly increasing from
    `min_index` on; what lies between or after them is reported as bad byte ranges (a
    torn tail is one bad range at the end)."""
    out = ScanResult()
    pos, bad_start = 0, None
    while pos + HEADER.size <= len(data):
        hit = _valid_at(data, pos, min_index)
        if hit is None:
            if bad_start is None:
                bad_start = pos
            pos = _next_candidate(data, pos + 1, min_index)
            continue
        if bad_start is not None:
            out.bad_ranges.append((bad_start, pos))
            bad_start = None
        index, end = hit
        out.records.append((index, pos, end - pos))
        out.good_end = end
        min_index, pos = index + 1, end
    if bad_start is not None or pos < len(data):
        out.bad_ranges.append((bad_start if bad_start is not None else pos, len(data)))
    return out


def records_of(data: bytes) -> list[tuple[int, bytes]]:
    """(index, payload) of a segment already checked by `scan` (records back to back)."""
    out, pos = [], 0
    while pos + HEADER.size <= len(data):
        length, _, index = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if end > len(data):
            break
        out.append((index, data[pos + HEADER.size:end]))
        pos = end
    return out


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive index ranges, sorted and merged where they touch."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def format_ranges(ranges: list[tuple[int, int]], limit: int = 8) -> str:
    """`3-7, 12, 40-41` (at most `limit` ranges, then `...`)."""
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit]]
    if len(ranges) > limit:
        parts.append(f"... ({len(ranges) - limit} more)")
    return ", ".join(parts)

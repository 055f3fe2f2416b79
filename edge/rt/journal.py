"""The one durable store: an append-only, checksummed, segmented journal.

Every durable write in edge goes through here (DESIGN.md, Storage): records carry length,
index and a CRC; fsync follows an explicit policy; a torn tail left by a crash is cut off
on open; the total size is bounded with a stated policy and counters; small whole files
(cursors, counters) are replaced by atomic rename.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.errors import StorageError

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "interval", "never"]
FullPolicy = Literal["drop_oldest", "reject_new"]

_HEADER = struct.Struct("<IIQ")        # payload length, crc32(index + payload), index
_INDEX = struct.Struct("<Q")
MAX_RECORD_BYTES = 16 * 1024 * 1024
_SEGMENT_SUFFIX = ".seg"


def _crc(index: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_INDEX.pack(index)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never half:
    write a temporary sibling, fsync it, rename it over, fsync the directory."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc


def write_checked(path: str | os.PathLike, payload: bytes) -> None:
    """A small whole file with a CRC, replaced atomically (cursors, counters)."""
    atomic_write(path, struct.pack("<I", zlib.crc32(payload)) + payload)


def read_checked(path: str | os.PathLike) -> bytes | None:
    """The payload of a `write_checked` file; None when absent or its CRC is wrong."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != zlib.crc32(raw[4:]):
        log.warning("%s: checksum mismatch, ignored", path)
        return None
    return raw[4:]


@dataclass
class JournalStats:
    appended: int = 0           # records appended this session
    acked: int = 0              # records acknowledged (consumed) this session
    fsyncs: int = 0
    dropped_full: int = 0       # records deleted unsent because the size bound was hit
    rejected_full: int = 0      # appends refused because the size bound was hit
    torn_bytes_cut: int = 0     # bytes cut off on recovery (torn or corrupt tail)
    recovered: int = 0          # unacked records found on open


class Journal:
    """Append records, read them back in order, acknowledge a prefix.

    Indexes count up from 0 for the life of the directory. `cursor` is the first record
    not yet acknowledged; everything from it on survives a crash (as far as the fsync
    policy promised) and is read again after a restart.
    """

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int = 64 * 1024 * 1024,
                 segment_bytes: int | None = None, fsync: FsyncPolicy = "interval",
                 fsync_interval_s: float = 0.2, when_full: FullPolicy = "drop_oldest",
                 cache_records: int = 65536) -> None:
        if fsync not in ("always", "interval", "never"):
            raise StorageError(f"fsync policy must be always, interval or never, not {fsync!r}")
        if when_full not in ("drop_oldest", "reject_new"):
            raise StorageError(f"when_full must be drop_oldest or reject_new, not {when_full!r}")
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(4096, max_bytes // 8)
        self.fsync_policy: FsyncPolicy = fsync
        self.fsync_interval_s = fsync_interval_s
        self.when_full: FullPolicy = when_full
        self.stats = JournalStats()
        self._cache: deque[tuple[int, bytes]] = deque(maxlen=cache_records)
        self._buffer = bytearray()
        self._buffer_first = 0                 # index of the first buffered record
        self._readahead: dict[int, bytes] = {}  # records read back from disk, by index
        self._last_fsync = time.monotonic()
        self._segments: list[tuple[int, Path, int]] = []   # (first index, path, bytes)
        self._fd: int | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._recover()
        except OSError as exc:
            raise StorageError(f"journal {self.dir}: {exc.strerror or exc}") from exc

    # -- recovery ------------------------------------------------------------------
    def _recover(self) -> None:
        raw = read_checked(self.dir / "cursor")
        self.cursor = _INDEX.unpack(raw)[0] if raw and len(raw) == 8 else 0
        self.next_index = self.cursor
        for path in sorted(self.dir.glob("*" + _SEGMENT_SUFFIX)):
            first = int(path.stem)
            count, good_bytes = self._scan(path, first)
            size = path.stat().st_size
            if good_bytes < size:
                log.warning("journal %s: cut %d bytes of torn or corrupt tail",
                            path, size - good_bytes)
                self.stats.torn_bytes_cut += size - good_bytes
                os.truncate(path, good_bytes)
            if count == 0:
                path.unlink()
                continue
            self._segments.append((first, path, good_bytes))
            self.next_index = first + count
        if self._segments and self._segments[0][0] > self.cursor:
            self.cursor = self._segments[0][0]   # older records were dropped by the bound
        self.next_index = max(self.next_index, self.cursor)
        self.stats.recovered = self.next_index - self.cursor
        self._drop_consumed_segments()

    @staticmethod
    def _scan(path: Path, first: int) -> tuple[int, int]:
        """(records, bytes) of the valid prefix of a segment."""
        data = path.read_bytes()
        pos, index = 0, first
        while pos + _HEADER.size <= len(data):
            length, crc, rec_index = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            if (length > MAX_RECORD_BYTES or end > len(data) or rec_index != index
                    or _crc(index, data[pos + _HEADER.size:end]) != crc):
                break
            pos, index = end, index + 1
        return index - first, pos

    # -- writing -------------------------------------------------------------------
    def append(self, payload: bytes) -> int | None:
        """Buffer one record; returns its index, or None if refused by the size bound
        (`when_full="reject_new"`). Written by `flush()`."""
        if len(payload) > MAX_RECORD_BYTES:
            raise StorageError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        if self.when_full == "reject_new" and self._size() + len(self._buffer) >= self.max_bytes:
            self.stats.rejected_full += 1
            return None
        index = self.next_index
        self.next_index += 1
        if not self._buffer:
            self._buffer_first = index
        self._buffer += _HEADER.pack(len(payload), _crc(index, payload), index)
        self._buffer += payload
        self._cache.append((index, payload))
        self.stats.appended += 1
        if self.fsync_policy == "always":
            self.flush()
        return index

    def flush(self) -> None:
        """Write buffered records to the current segment; fsync as the policy says."""
        if self._buffer:
            if self._fd is None or self._segments[-1][2] >= self.segment_bytes:
                self._open_segment(self._buffer_first)
            try:
                os.write(self._fd, self._buffer)
            except OSError as exc:
                raise StorageError(f"journal {self.dir}: {exc.strerror or exc}") from exc
            first, path, size = self._segments[-1]
            self._segments[-1] = (first, path, size + len(self._buffer))
            self._buffer.clear()
            self._enforce_bound()
        now = time.monotonic()
        due = self.fsync_policy == "always" or (
            self.fsync_policy == "interval" and now - self._last_fsync >= self.fsync_interval_s)
        if self._fd is not None and due:
            os.fsync(self._fd)
            self.stats.fsyncs += 1
            self._last_fsync = now

    def _open_segment(self, first: int) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        path = self.dir / f"{first:020d}{_SEGMENT_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append((first, path, 0))
        _fsync_dir(self.dir)

    def _size(self) -> int:
        return sum(size for _, _, size in self._segments)

    def _enforce_bound(self) -> None:
        """drop_oldest: delete whole oldest segments, unsent or not, and count them."""
        while self.when_full == "drop_oldest" and self._size() > self.max_bytes \
                and len(self._segments) > 1:
            first, path, _ = self._segments.pop(0)
            next_first = self._segments[0][0]
            lost = max(0, next_first - max(first, self.cursor))
            if lost:
                log.warning("journal %s: size bound reached, dropped %d unsent records",
                            self.dir, lost)
                self.stats.dropped_full += lost
            self.cursor = max(self.cursor, next_first)
            path.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------
    def pending(self) -> int:
        """Records appended and not yet acknowledged."""
        return self.next_index - self.cursor

    def read(self, start: int, max_records: int) -> list[tuple[int, bytes]]:
        """Up to `max_records` (index, payload) pairs from index `start` on, in order."""
        start = max(start, self.cursor)
        end = min(self.next_index, start + max_records)
        if start >= end:
            return []
        if self._cache and self._cache[0][0] <= start:
            offset = start - self._cache[0][0]
            return [self._cache[offset + i] for i in range(end - start)]
        out = []
        for index in range(start, end):
            if index not in self._readahead:
                self._load_segment_of(index)
            payload = self._readahead.pop(index, None)
            if payload is None:
                break
            out.append((index, payload))
        return out

    def _load_segment_of(self, index: int) -> None:
        """Read the rest of the segment holding `index` into the read-ahead (one file read
        per segment, however small the batches the consumer asks for)."""
        self.flush()
        self._readahead.clear()
        holding = [seg for seg in self._segments if seg[0] <= index]
        if not holding:
            return
        first, path, size = holding[-1]
        data = path.read_bytes()[:size]
        pos, i = 0, first
        while pos < len(data):
            length = _HEADER.unpack_from(data, pos)[0]
            if i >= index:
                self._readahead[i] = data[pos + _HEADER.size:pos + _HEADER.size + length]
            pos += _HEADER.size + length
            i += 1

    def ack(self, upto_index: int) -> None:
        """Acknowledge every record up to and including `upto_index`."""
        if upto_index + 1 <= self.cursor:
            return
        self.stats.acked += upto_index + 1 - self.cursor
        self.cursor = min(upto_index + 1, self.next_index)
        self._drop_consumed_segments()

    def save_cursor(self) -> None:
        """Persist the cursor (records before it will not be read again after a restart)."""
        write_checked(self.dir / "cursor", _INDEX.pack(self.cursor))

    def _drop_consumed_segments(self) -> None:
        while len(self._segments) > 1 and self._segments[1][0] <= self.cursor:
            _, path, _ = self._segments.pop(0)
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Flush, fsync and persist the cursor."""
        self.flush()
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        self.save_cursor()

    def stats_dict(self) -> dict[str, int]:
        return {**self.stats.__dict__, "pending": self.pending(), "bytes": self._size(),
                "segments": len(self._segments)}

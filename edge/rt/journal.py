"""The one durable store: an append-only, checksummed, segmented journal.

Every durable write in edge goes through here (docs/architecture.md): records carry length,
index and a CRC (format in `segments.py`); `append` makes a record durable by itself as
the fsync policy says, whether or not anyone reads; the size bound counts what is
buffered in memory too; I/O errors (disk full) never raise from `append`/`flush`; on open
every segment is scanned, corrupt parts are moved to `quarantine/` and the records lost
are reported by index range; small whole files (cursors, counters) are replaced by
atomic rename.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge.errors import StorageError
from edge.rt.journal_recovery import recover
from edge.rt.segments import (
    HEADER,
    MAX_RECORD_BYTES,
    encode,
    format_ranges,
    merge_ranges,
    scan,
    segment_name,
)

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "interval", "never"]
FullPolicy = Literal["drop_oldest", "reject_new"]

__all__ = ["Journal", "JournalStats", "StorageError", "atomic_write", "write_checked",
           "read_checked", "MAX_RECORD_BYTES", "WRITE_BEHIND_BYTES"]

WRITE_BEHIND_BYTES = 64 * 1024   # `never` (and `interval` between fsyncs) writes past this
RETRY_S = 0.2                    # during an I/O error episode, retry writing at most this often
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never half:
    write a temporary sibling, fsync it, rename it over, fsync the directory.

    Raises StorageError (the temporary file is removed) when any step fails."""
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
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc


def write_checked(path: str | os.PathLike, payload: bytes) -> None:
    """A small whole file with a CRC, replaced atomically (cursors, counters).
    Raises StorageError like `atomic_write`."""
    atomic_write(path, struct.pack("<I", zlib.crc32(payload)) + payload)


def read_checked(path: str | os.PathLike) -> bytes | None:
    """The payload of a `write_checked` file; None when absent, unreadable or its CRC is
    wrong (the last two logged as a warning)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: unreadable (%s), ignored", path, exc.strerror or exc)
        return None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != zlib.crc32(raw[4:]):
        log.warning("%s: checksum mismatch, ignored", path)
        return None
    return raw[4:]


@dataclass
class JournalStats:
    appended: int = 0           # records appended this session
    acked: int = 0              # records acknowledged (consumed) this session
    fsyncs: int = 0             # successful fsyncs of segment data
    dropped_full: int = 0       # unsent records deleted because the size bound was hit
    rejected_full: int = 0      # appends refused because the size bound was hit
    torn_bytes_cut: int = 0     # bytes of a torn tail (crash mid-write) cut on open
    recovered: int = 0          # unacked records found on open
    lost_records: int = 0       # records missing (corrupt, deleted) found this session
    lost_ranges: list[list[int]] = field(default_factory=list)  # [first, last] of those
    quarantined_files: int = 0  # files moved (or copied) to quarantine/ on open
    quarantined_bytes: int = 0  # corrupt bytes moved aside
    stray_files: int = 0        # names in the directory that are not the journal's
    cursor_corrupt: int = 0     # cursor file unreadable: everything left is read again
    io_errors: int = 0          # failed write / fsync / truncate / cursor-save calls
    disk_full_events: int = 0   # episodes of ENOSPC / EDQUOT (one per episode)
    buffered_bytes: int = 0     # bytes held in memory, not yet written (part of the bound)


@dataclass
class _Segment:
    first: int                  # the index its name declares
    path: Path
    size: int                   # bytes of whole records
    end: int                    # index past its last record


class Journal:
    """Append records, read them back in order, acknowledge a prefix.

    Indexes count up from 0 for the life of the directory. `cursor` is the first record
    not yet acknowledged; everything from it on survives a crash (as far as the fsync
    policy promised) and is read again after a restart. Records found missing are
    skipped by `read`, counted in `stats.lost_records` and never count as pending.
    """

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int = 64 * 1024 * 1024,
                 segment_bytes: int | None = None, fsync: FsyncPolicy = "interval",
                 fsync_interval_s: float = 0.2, when_full: FullPolicy = "drop_oldest",
                 cache_records: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Open (recovering) the journal in `directory`; sizes in bytes.

        Raises StorageError for a bad policy or when the directory cannot be created or
        listed."""
        if fsync not in ("always", "interval", "never"):
            raise StorageError(f"fsync policy must be always, interval or never, not {fsync!r}")
        if when_full not in ("drop_oldest", "reject_new"):
            raise StorageError(f"when_full must be drop_oldest or reject_new, not {when_full!r}")
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        # A bound is only meaningful if several segments fit under it (whole oldest
        # segments are what drop_oldest deletes).
        self.segment_bytes = segment_bytes or max(1024, min(max_bytes // 8, 8 * 1024 * 1024))
        self.fsync_policy: FsyncPolicy = fsync
        self.fsync_interval_s = fsync_interval_s
        self.when_full: FullPolicy = when_full
        self.stats = JournalStats()
        self._clock = clock
        # Recently appended records, so a reader keeping up never touches the disk;
        # bounded by count and by bytes (at most the journal bound, at most 8 MiB).
        self._cache: deque[tuple[int, bytes]] = deque()
        self._cache_records = cache_records
        self._cache_limit = min(max_bytes, 8 * 1024 * 1024)
        self._cache_bytes = 0
        self._buffer: deque[tuple[int, bytes]] = deque()   # (index, encoded), not written
        self._buffer_bytes = 0
        self._readahead: dict[int, bytes] = {}  # records read back from disk, by index
        self._last_fsync = clock()
        self._unsynced = False
        self._segments: list[_Segment] = []
        self._gaps: list[tuple[int, int]] = []  # lost index ranges at or after the cursor
        self._fd: int | None = None
        self._io_failing = False
        self._retry_at = 0.0
        self._full_warned = False
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            found = recover(self.dir, self.stats)
        except OSError as exc:
            raise StorageError(f"journal {self.dir}: {exc.strerror or exc}") from exc
        self.cursor, self.next_index = found.cursor, found.next_index
        self._segments = [_Segment(*seg) for seg in found.segments]
        self._disk_bytes = sum(seg.size for seg in self._segments)
        self._gaps = found.gaps
        self._written_end = self.next_index
        self._skip_gaps()
        self.stats.recovered = self.pending()
        if found.new_gaps or found.changed:
            self.save_cursor()     # remember reported gaps so a restart does not re-report
        self._drop_consumed_segments()

    # -- writing -------------------------------------------------------------------
    def append(self, payload: bytes) -> int | None:
        """Add one record; returns its index, or None if the size bound refused it
        (`when_full="reject_new"`, or a record larger than the whole bound). Written and
        fsynced here as the policy says; never raises on I/O errors.

        Raises StorageError for a record over MAX_RECORD_BYTES."""
        if len(payload) > MAX_RECORD_BYTES:
            raise StorageError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        need = HEADER.size + len(payload)
        if need > self.max_bytes or (self.when_full == "reject_new" and self._over(need)):
            self.stats.rejected_full += 1
            self._warn_full("refusing new records")
            return None
        if self._over(need):
            self._make_room(need)
        index = self.next_index
        self.next_index += 1
        self._buffer.append((index, encode(index, payload)))
        self._buffer_bytes += need
        self._cache.append((index, payload))
        self._cache_bytes += len(payload)
        while self._cache and (len(self._cache) > self._cache_records
                               or self._cache_bytes > self._cache_limit):
            self._cache_bytes -= len(self._cache.popleft()[1])
        self.stats.appended += 1
        now = self._clock()
        if self.fsync_policy == "always":
            self._write()
            self._sync(now)
        elif self.fsync_policy == "interval" and now - self._last_fsync >= self.fsync_interval_s:
            self._write()
            self._sync(now)
        elif self._buffer_bytes >= WRITE_BEHIND_BYTES:
            self._write()
        return index

    def flush(self) -> None:
        """Write what is buffered; fsync if the policy says so now (`always`, or
        `interval` when due). Never raises on I/O errors."""
        self._write()
        now = self._clock()
        due = now - self._last_fsync >= self.fsync_interval_s
        if self.fsync_policy == "always" or (self.fsync_policy == "interval" and due):
            self._sync(now)

    def _write(self, force: bool = False) -> bool:
        """Write buffered records, whole ones only; True when the buffer is empty."""
        if not self._buffer:
            return True
        if self._io_failing and not force and self._clock() < self._retry_at:
            return False
        try:
            while self._buffer:
                seg = self._segments[-1] if self._fd is not None else None
                if seg is None or seg.size >= self.segment_bytes:
                    self._open_segment(self._buffer[0][0])
                    seg = self._segments[-1]
                if not self._write_chunk(seg):
                    return False
        except OSError as exc:
            self._io_error(exc, "open segment")
            return False
        if self._io_failing:
            self._io_failing = False
            log.warning("journal %s: writing again", self.dir)
        return True

    def _write_chunk(self, seg: _Segment) -> bool:
        """Write records up to the segment size into `seg`; on a failed or short write cut
        the file back to its last whole record (so nothing torn stays on disk) and keep
        the unwritten records buffered."""
        chunk: list[bytes] = []
        room = self.segment_bytes - seg.size
        for _, record in self._buffer:
            chunk.append(record)
            room -= len(record)
            if room <= 0:
                break
        data = memoryview(b"".join(chunk))
        done, failure = 0, None
        while done < len(data):
            try:
                n = os.write(self._fd, data[done:])
            except OSError as exc:
                failure = exc
                break
            if n <= 0:
                failure = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                break
            done += n
        whole = whole_bytes = 0
        for record in chunk:
            if whole_bytes + len(record) > done:
                break
            whole_bytes += len(record)
            whole += 1
        if done > whole_bytes:
            try:
                os.ftruncate(self._fd, seg.size + whole_bytes)
            except OSError as exc:
                # The torn bytes stay; stop using this file so nothing follows them
                # (recovery cuts them), and write on in a fresh segment.
                self._io_error(exc, "truncate")
                self._close_fd()
        for _ in range(whole):
            index, _ = self._buffer.popleft()
            seg.end = index + 1
        self._buffer_bytes -= whole_bytes
        seg.size += whole_bytes
        self._disk_bytes += whole_bytes
        if whole:
            self._written_end = seg.end
            self._unsynced = True
        self.stats.buffered_bytes = self._buffer_bytes
        if failure is not None:
            self._io_error(failure, "write")
            return False
        return True

    def _sync(self, now: float) -> None:
        if self._fd is not None and self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._io_error(exc, "fsync")
                return
            self.stats.fsyncs += 1
            self._unsynced = False
        self._last_fsync = now

    def _io_error(self, exc: OSError, what: str) -> None:
        """Count an I/O failure; log once per episode (an episode ends at the next
        complete write)."""
        self.stats.io_errors += 1
        self._retry_at = self._clock() + RETRY_S
        if self._io_failing:
            return
        self._io_failing = True
        if exc.errno in _DISK_FULL:
            self.stats.disk_full_events += 1
        log.warning("journal %s: %s failed (%s); keeping records in memory within the "
                    "%d-byte bound (%s) and retrying", self.dir, what,
                    exc.strerror or exc, self.max_bytes, self.when_full)

    def _open_segment(self, first: int) -> None:
        self._close_fd()
        path = self.dir / segment_name(first)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size:       # a leftover of a failed write: start clean
                os.ftruncate(fd, 0)
            _fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        if self._segments and self._segments[-1].path == path:
            # Reopened after a failed truncate left nothing whole in it: one entry per
            # file, or deleting the stale one later would delete the live file.
            self._disk_bytes -= self._segments.pop().size
        self._segments.append(_Segment(first, path, 0, first))

    def _close_fd(self) -> None:
        if self._fd is None:
            return
        if self._unsynced and self.fsync_policy != "never":
            self._sync(self._clock())
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._fd = None
        self._unsynced = False

    # -- the size bound ------------------------------------------------------------
    def _size(self) -> int:
        return self._disk_bytes

    def _over(self, need: int) -> bool:
        return self._size() + self._buffer_bytes + need > self.max_bytes

    def _warn_full(self, action: str) -> None:
        if not self._full_warned:
            self._full_warned = True
            log.warning("journal %s: size bound of %d bytes reached, %s (counted in "
                        "dropped_full / rejected_full)", self.dir, self.max_bytes, action)

    def _make_room(self, need: int) -> None:
        """drop_oldest: delete whole oldest segments (then oldest buffered records) until
        `need` more bytes fit; unsent records deleted are counted."""
        self._warn_full("dropping the oldest records")
        while self._over(need) and self._segments:
            seg = self._segments[0]
            if seg is self._segments[-1] and self._fd is not None:
                self._close_fd()
            self._segments.pop(0)
            self._disk_bytes -= seg.size
            self._drop_below(seg.end)
            self._save_cursor_quietly()     # before the unlink: a restart sees no gap
            self._unlink(seg.path)
        while self._over(need) and self._buffer:
            index, record = self._buffer.popleft()
            self._buffer_bytes -= len(record)
            self._drop_below(index + 1)
        self.stats.buffered_bytes = self._buffer_bytes

    def _drop_below(self, end: int) -> None:
        if end > self.cursor:
            self.stats.dropped_full += end - self.cursor - self._gap_count(self.cursor, end)
            self.cursor = end
            self._skip_gaps()

    # -- gaps ----------------------------------------------------------------------
    def _gap_count(self, start: int, end: int) -> int:
        """Lost indexes in [start, end)."""
        return sum(max(0, min(b + 1, end) - max(a, start)) for a, b in self._gaps)

    def _skip_gaps(self) -> None:
        """Move the cursor over lost ranges it reached (nothing there to deliver) and
        forget ranges behind it."""
        while self._gaps and self._gaps[0][0] <= self.cursor:
            self.cursor = max(self.cursor, self._gaps.pop(0)[1] + 1)
        self.cursor = min(self.cursor, self.next_index)

    def _mark_lost(self, first: int, last: int, why: str) -> None:
        self.stats.lost_records += last - first + 1
        self.stats.lost_ranges = [list(r) for r in merge_ranges(
            [tuple(r) for r in self.stats.lost_ranges] + [(first, last)])][:100]
        self._gaps = merge_ranges(self._gaps + [(first, last)])
        log.warning("journal %s: %d records lost (%s): %s", self.dir, last - first + 1, why,
                    format_ranges([(first, last)]))
        self._skip_gaps()

    # -- reading -------------------------------------------------------------------
    def pending(self) -> int:
        """Records appended, not lost and not yet acknowledged."""
        return self.next_index - self.cursor - self._gap_count(self.cursor, self.next_index)

    def read(self, start: int, max_records: int) -> list[tuple[int, bytes]]:
        """Up to `max_records` (index, payload) pairs from index `start` on, in order,
        lost records skipped (never returns nothing while records from `start` on are
        pending)."""
        i = max(start, self.cursor)
        end = min(self.next_index, i + max_records)
        cache = self._cache
        if not self._gaps and cache and cache[0][0] <= i and end - 1 <= cache[-1][0]:
            offset = i - cache[0][0]           # the common case: a reader keeping up
            return [cache[offset + k] for k in range(end - i)]
        out: list[tuple[int, bytes]] = []
        while len(out) < max_records and i < self.next_index:
            gap = next(((a, b) for a, b in self._gaps if a <= i <= b), None)
            if gap is not None:
                i = gap[1] + 1
                continue
            payload = self._lookup(i)
            if payload is None:
                after = self._next_present(i)
                self._mark_lost(i, after - 1, "missing from the segment files")
                i = after
                continue
            out.append((i, payload))
            i += 1
        return out

    def _lookup(self, index: int) -> bytes | None:
        if self._cache and self._cache[0][0] <= index <= self._cache[-1][0]:
            entry = self._cache[index - self._cache[0][0]]
            if entry[0] == index:
                return entry[1]
        if self._buffer and self._buffer[0][0] <= index <= self._buffer[-1][0]:
            return self._buffer[index - self._buffer[0][0]][1][HEADER.size:]
        if index not in self._readahead:
            self._load_segment_of(index)
        return self._readahead.pop(index, None)

    def _next_present(self, index: int) -> int:
        """The first index after `index` that may exist (after a segment read)."""
        later = [i for i in self._readahead if i > index]
        later += [seg.first for seg in self._segments if seg.first > index]
        if self._buffer:
            later.append(self._buffer[0][0])
        return max(index + 1, min(later, default=self.next_index))

    def _load_segment_of(self, index: int) -> None:
        """Read the rest of the segment holding `index` into the read-ahead (one file read
        per segment, however small the batches the consumer asks for)."""
        self._write()
        self._readahead.clear()
        holding = [seg for seg in self._segments if seg.first <= index < seg.end]
        if not holding:
            return
        seg = holding[-1]
        try:
            with open(seg.path, "rb") as f:
                data = f.read(seg.size)
        except OSError as exc:
            log.warning("journal %s: cannot read %s (%s)", self.dir, seg.path.name,
                        exc.strerror or exc)
            return
        for i, offset, length in scan(data, seg.first).records:
            if i >= index:
                self._readahead[i] = data[offset + HEADER.size:offset + length]

    def ack(self, upto_index: int) -> None:
        """Acknowledge every record up to and including `upto_index`."""
        end = min(upto_index + 1, self.next_index)
        if end <= self.cursor:
            return
        self.stats.acked += end - self.cursor - self._gap_count(self.cursor, end)
        self.cursor = end
        self._skip_gaps()
        self._drop_consumed_segments()

    def save_cursor(self) -> None:
        """Persist the cursor (records before it will not be read again after a restart),
        the end of what is written and the lost ranges ahead. Never raises: a failure is
        counted in `io_errors` (the records are then read again after a restart)."""
        self._save_cursor_quietly()

    def _save_cursor_quietly(self) -> bool:
        fields = [self.cursor, self._written_end]
        for a, b in self._gaps:
            fields += [a, b]
        try:
            write_checked(self.dir / "cursor", struct.pack(f"<{len(fields)}Q", *fields))
            return True
        except StorageError as exc:
            self._io_error(exc.__cause__ if isinstance(exc.__cause__, OSError)
                           else OSError(errno.EIO, str(exc)), "cursor save")
            return False

    def _drop_consumed_segments(self) -> None:
        done = [seg for seg in self._segments[:-1] if seg.end <= self.cursor]
        if not done:
            return
        self._save_cursor_quietly()
        for seg in done:
            self._segments.remove(seg)
            self._disk_bytes -= seg.size
            self._unlink(seg.path)

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self._io_error(exc, f"delete {path.name}")

    def close(self) -> None:
        """Write, fsync and persist the cursor. Never raises on I/O errors (what could
        not be written is counted and lost with the process)."""
        self._write(force=True)
        self._sync(self._clock())          # a clean stop is durable whatever the policy
        self._close_fd()
        self.save_cursor()

    def stats_dict(self) -> dict[str, Any]:
        """Counters (see JournalStats) plus `pending`, `bytes` on disk, `segments`."""
        self.stats.buffered_bytes = self._buffer_bytes
        return {**self.stats.__dict__, "lost_ranges": [list(r) for r in self.stats.lost_ranges],
                "pending": self.pending(), "bytes": self._size(),
                "segments": len(self._segments)}

"""Opening a journal directory: find every valid record, set the corrupt rest aside.

Each segment is scanned whole (`segments.scan` resynchronises after a bad region); a
torn tail of the newest segment (a crash mid-write) is cut; any other bad bytes, a
segment that holds no valid record and a `.seg` file with a foreign name are moved to
`quarantine/` (kept for inspection, never deleted); the indexes missing between the
cursor and the end of what was written are reported once, as ranges, and remembered in
the cursor file so a restart does not report them again.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge.rt.segments import SEGMENT_SUFFIX, format_ranges, parse_segment_name, scan

if TYPE_CHECKING:
    from edge.rt.journal import JournalStats

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
_OWN_NAMES = {"cursor", QUARANTINE}


@dataclass
class Recovered:
    cursor: int = 0
    next_index: int = 0
    # (first index, path, bytes, index past the last record)
    segments: list[tuple[int, Path, int, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)   # lost ranges >= cursor
    new_gaps: bool = False      # some were found this time (not known from the cursor file)
    changed: bool = False       # the cursor file should be rewritten


def _read_cursor(directory: Path, stats: JournalStats) -> tuple[int | None, int, list]:
    """(cursor or None if unknown, end of what was written, known gaps)."""
    from edge.rt.journal import read_checked  # one reader of checked files
    path = directory / "cursor"
    raw = read_checked(path)
    if raw is None:
        if path.exists() or path.is_symlink():
            stats.cursor_corrupt += 1
            return None, 0, []
        return 0, 0, []
    if len(raw) < 8 or len(raw) % 8 or (len(raw) > 8 and len(raw) % 16):
        stats.cursor_corrupt += 1
        return None, 0, []
    fields = struct.unpack(f"<{len(raw) // 8}Q", raw)
    if len(fields) == 1:                       # the format before end and gaps were kept
        return fields[0], 0, []
    gaps = [(fields[i], fields[i + 1]) for i in range(2, len(fields), 2)]
    return fields[0], fields[1], gaps


def _quarantine(directory: Path, path: Path, stats: JournalStats, *, keep: bool) -> Path | None:
    """Move `path` (or, with keep, hard-link / copy it) into quarantine/; its new path."""
    qdir = directory / QUARANTINE
    try:
        qdir.mkdir(exist_ok=True)
        target, n = qdir / path.name, 1
        while target.exists():
            target, n = qdir / f"{path.name}.{n}", n + 1
        if keep:
            try:
                os.link(path, target)
            except OSError:
                target.write_bytes(path.read_bytes())
        else:
            os.replace(path, target)
    except OSError as exc:
        log.warning("journal %s: cannot move %s to %s/ (%s)", directory, path.name,
                    QUARANTINE, exc.strerror or exc)
        return None
    stats.quarantined_files += 1
    return target


def _list(directory: Path, stats: JournalStats) -> list[tuple[int, Path]]:
    """Segment files by first index; stray names warned about (once) and counted."""
    segments, stray = [], []
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name in _OWN_NAMES:
            continue
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                entry.unlink(missing_ok=True)  # an atomic write cut short: never the file
            except OSError:
                pass
            continue
        first = parse_segment_name(name)
        if first is not None and entry.is_file():
            segments.append((first, entry))
        elif name.endswith(SEGMENT_SUFFIX) and entry.is_file():
            stray.append(name)
            _quarantine(directory, entry, stats, keep=False)
        else:
            stray.append(name)
    if stray:
        stats.stray_files += len(stray)
        log.warning("journal %s: ignoring %d files that are not segments: %s "
                    "(.seg files with a foreign name moved to %s/)", directory, len(stray),
                    ", ".join(stray[:5]) + (" ..." if len(stray) > 5 else ""), QUARANTINE)
    return sorted(segments)


def recover(directory: Path, stats: JournalStats) -> Recovered:
    """Scan `directory`; counters go to `stats`. Raises OSError when it cannot be listed."""
    out = Recovered()
    cursor, end_hint, known_gaps = _read_cursor(directory, stats)
    quarantined_before = stats.quarantined_bytes
    present: list[tuple[int, int]] = []     # runs of present indexes, in order
    min_index = 0
    listed = _list(directory, stats)
    for n, (first, path) in enumerate(listed):
        newest = n == len(listed) - 1
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("journal %s: cannot read %s (%s)", directory, path.name,
                        exc.strerror or exc)
            _quarantine(directory, path, stats, keep=False)
            continue
        found = scan(data, max(first, min_index))
        if not found.records:
            if data.strip(b"\0"):
                stats.quarantined_bytes += len(data)
                _quarantine(directory, path, stats, keep=False)
            else:
                path.unlink()                  # empty or all zeros: nothing to keep
            continue
        bad = found.bad_ranges
        torn_tail = newest and len(bad) == 1 and bad[0] == (found.good_end, len(data))
        size = len(data)
        if torn_tail:
            log.warning("journal %s: cut %d bytes of torn tail", path, len(data) - found.good_end)
            stats.torn_bytes_cut += len(data) - found.good_end
            size = found.good_end
            try:
                os.truncate(path, size)
            except OSError as exc:            # harmless: new records go to a new segment
                log.info("journal %s: cannot truncate (%s)", path, exc.strerror or exc)
        elif bad:
            size = _rewrite_clean(directory, path, data, found, stats)
        out.segments.append((first, path, size, found.records[-1][0] + 1))
        for i, _, _ in found.records:
            if present and present[-1][1] + 1 == i:
                present[-1] = (present[-1][0], i)
            else:
                present.append((i, i))
        min_index = found.records[-1][0] + 1
    last_present = present[-1][1] + 1 if present else 0
    if cursor is None:                         # unknown: read again all that is left
        cursor = present[0][0] if present else 0
        log.warning("journal %s: cursor file corrupt; every record still in the journal "
                    "is read again (duplicates possible)", directory)
        out.changed = True
    out.cursor = cursor
    out.next_index = max(cursor, end_hint, last_present)
    out.gaps = _gaps(cursor, out.next_index, present)
    new = [g for g in out.gaps if not _covered(g, known_gaps)]
    count = sum(b - a + 1 for a, b in new)
    if new:
        out.new_gaps = True
        stats.lost_records += count
        stats.lost_ranges = [list(g) for g in new[:100]]
    set_aside = stats.quarantined_bytes - quarantined_before
    if new or set_aside:                      # the one line that says what was lost
        log.warning("journal %s: %d records lost to corruption or deletion%s; %d corrupt "
                    "bytes kept in %s/", directory, count,
                    f", indexes {format_ranges(new)}" if new else "", set_aside, QUARANTINE)
    return out


def _rewrite_clean(directory: Path, path: Path, data: bytes, found, stats: JournalStats) -> int:
    """Keep the original in quarantine/, replace the segment with its valid records."""
    from edge.rt.journal import atomic_write
    stats.quarantined_bytes += found.bad_bytes
    log.info("journal %s: %d corrupt bytes in %d places; original kept in %s/",
                path, found.bad_bytes, len(found.bad_ranges), QUARANTINE)
    clean = b"".join(data[offset:offset + length] for _, offset, length in found.records)
    if _quarantine(directory, path, stats, keep=True) is None:
        return len(data)                       # left as it is: readers scan past the damage
    try:
        atomic_write(path, clean)
    except Exception as exc:                   # StorageError: the scan-on-read copes
        log.warning("journal %s: cannot rewrite (%s)", path, exc)
        return len(data)
    return len(clean)


def _gaps(start: int, end: int, present: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Index ranges in [start, end) not in `present` (sorted, merged, inclusive)."""
    out, i = [], start
    for a, b in present:
        if b < i:
            continue
        if a > i:
            out.append((i, min(a, end) - 1))
        i = max(i, b + 1)
        if i >= end:
            break
    if i < end:
        out.append((i, end - 1))
    return [(a, b) for a, b in out if a <= b]


def _covered(gap: tuple[int, int], known: list[tuple[int, int]]) -> bool:
    return any(a <= gap[0] and gap[1] <= b for a, b in known)

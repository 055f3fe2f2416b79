"""Journal recovery from corruption: never a hang, exact loss reports, quarantine, strays."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.journal import Journal

SEG = 512          # small segments: many files for few records


def payload(i: int) -> bytes:
    return f"rec-{i:05d}-".encode() * (1 + i % 5)


def write_journal(directory: Path, count: int, acked: int = 0) -> list[Path]:
    j = Journal(directory, segment_bytes=SEG, fsync="never")
    for i in range(count):
        assert j.append(payload(i)) == i
    if acked:
        j.ack(acked - 1)
    j.close()
    return sorted(directory.glob("*.seg"))


def drain(j: Journal, limit: int = 100_000) -> list[tuple[int, bytes]]:
    """Read and ack like the bridge does: every call must make progress while pending."""
    got: list[tuple[int, bytes]] = []
    for _ in range(limit):
        if not j.pending():
            return got
        batch = j.read(j.cursor, 7)
        assert batch, f"read returned nothing with {j.pending()} pending: the bridge would spin"
        got += batch
        j.ack(batch[-1][0])
    raise AssertionError("no end")


def test_flipped_byte_in_first_of_several_segments(tmp_path: Path, caplog) -> None:
    segs = write_journal(tmp_path, 60)
    assert len(segs) >= 4
    data = bytearray(segs[0].read_bytes())
    # Second record of the first segment: record 0 is len(payload(0)) + 16 bytes long.
    second = 16 + len(payload(0))
    data[second + 20] ^= 0x01
    segs[0].write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        j = Journal(tmp_path, segment_bytes=SEG)
    got = drain(j)
    assert [i for i, _ in got] == [0] + list(range(2, 60))
    assert j.stats.lost_records == 1 and j.stats.lost_ranges == [[1, 1]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings                 # one line says what was lost
    assert warnings[0].endswith(": 1 records lost to corruption or deletion, indexes 1; "
                                f"{16 + len(payload(1))} corrupt bytes kept in quarantine/")
    assert (tmp_path / "quarantine" / segs[0].name).read_bytes() == bytes(data)


def test_zeroed_empty_and_deleted_segments_are_ranges(tmp_path: Path) -> None:
    segs = write_journal(tmp_path, 80)
    assert len(segs) >= 6
    firsts = [int(p.stem) for p in segs]
    segs[1].write_bytes(b"\0" * segs[1].stat().st_size)     # zero-filled
    segs[2].write_bytes(b"")                                 # zero length
    segs[4].unlink()                                         # deleted
    j = Journal(tmp_path, segment_bytes=SEG)
    expected_lost = [[firsts[1], firsts[3] - 1], [firsts[4], firsts[5] - 1]]
    assert j.stats.lost_ranges == expected_lost
    assert j.stats.lost_records == sum(b - a + 1 for a, b in expected_lost)
    assert j.pending() == 80 - j.stats.lost_records
    got = [i for i, _ in drain(j)]
    assert got == [i for i in range(80)
                   if not any(a <= i <= b for a, b in expected_lost)]


def test_a_reported_gap_is_not_reported_again_after_restart(tmp_path: Path) -> None:
    segs = write_journal(tmp_path, 40)
    segs[1].unlink()
    first = Journal(tmp_path, segment_bytes=SEG)
    assert first.stats.lost_records > 0
    pending = first.pending()
    first.close()
    again = Journal(tmp_path, segment_bytes=SEG)
    assert again.stats.lost_records == 0 and again.pending() == pending
    assert len(drain(again)) == pending


def test_segment_deleted_while_open_is_skipped_at_read(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=SEG, fsync="never", cache_records=1)
    for i in range(60):
        j.append(payload(i))
    j.flush()
    segs = sorted(tmp_path.glob("*.seg"))
    lo, hi = int(segs[1].stem), int(segs[2].stem) - 1
    segs[1].unlink()
    got = [i for i, _ in drain(j)]
    assert got == [i for i in range(60) if not lo <= i <= hi]
    assert j.stats.lost_ranges == [[lo, hi]] and j.stats.lost_records == hi - lo + 1


def test_torn_tail_of_the_newest_segment_is_cut_not_quarantined(tmp_path: Path) -> None:
    segs = write_journal(tmp_path, 30)
    with open(segs[-1], "ab") as f:
        f.write(b"\x40\x00\x00\x00garbage")
    j = Journal(tmp_path, segment_bytes=SEG)
    assert j.stats.torn_bytes_cut == 11 and j.stats.lost_records == 0
    assert not (tmp_path / "quarantine").exists()
    assert len(drain(j)) == 30


corruption = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 99), st.floats(0, 1), st.integers(0, 7)),
    st.tuples(st.just("zero"), st.integers(0, 99), st.floats(0, 1), st.integers(1, 300)),
    st.tuples(st.just("truncate"), st.integers(0, 99), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 99), st.just(0.0), st.just(0)),
    st.tuples(st.just("empty"), st.integers(0, 99), st.just(0.0), st.just(0)),
)


def corrupt(segs: list[Path], op: tuple) -> None:
    kind, which, where, arg = op
    path = segs[which % len(segs)]
    if not path.exists():
        return
    data = bytearray(path.read_bytes())
    at = min(int(where * len(data)), max(0, len(data) - 1))
    if kind == "flip" and data:
        data[at] ^= 1 << arg
    elif kind == "zero":
        data[at:at + arg] = bytes(len(data[at:at + arg]))
    elif kind == "truncate":
        del data[at:]
    elif kind == "delete":
        path.unlink()
        return
    elif kind == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


@settings(max_examples=50, deadline=None)
@given(count=st.integers(1, 150), ack_frac=st.floats(0, 1),
       damage=st.lists(corruption, min_size=1, max_size=6))
def test_any_corruption_terminates_and_accounts_exactly(tmp_path_factory, count, ack_frac,
                                                         damage) -> None:
    """For any damage to the segment files: open + read-all terminates; every record
    returned was written, in order, once; and lost == written - returned - acked."""
    directory = tmp_path_factory.mktemp("j")
    acked = int(count * ack_frac)
    segs = write_journal(directory, count, acked)
    for op in damage:
        corrupt(segs, op)
    j = Journal(directory, segment_bytes=SEG)
    got = drain(j)
    indexes = [i for i, _ in got]
    assert indexes == sorted(set(indexes))
    assert all(acked <= i < count and p == payload(i) for i, p in got)
    assert j.stats.lost_records == count - len(got) - acked
    assert sum(b - a + 1 for a, b in j.stats.lost_ranges) == j.stats.lost_records
    assert not any(a <= i <= b for a, b in j.stats.lost_ranges for i in indexes)
    assert j.append(b"after") == count      # and it goes on, numbering included
    j.close()


def test_stray_files_are_ignored_or_quarantined(tmp_path: Path, caplog) -> None:
    write_journal(tmp_path, 20)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "abc.seg").write_bytes(b"junk")
    (tmp_path / ".cursor.tmp").write_bytes(b"half")
    (tmp_path / "sub").mkdir()
    with caplog.at_level(logging.WARNING):
        j = Journal(tmp_path, segment_bytes=SEG)
    assert len(drain(j)) == 20
    assert j.stats.stray_files == 3
    assert (tmp_path / "notes.txt").exists() and not (tmp_path / "abc.seg").exists()
    assert (tmp_path / "quarantine" / "abc.seg").read_bytes() == b"junk"
    assert not (tmp_path / ".cursor.tmp").exists()
    stray_lines = [r for r in caplog.records if "not segments" in r.getMessage()]
    assert len(stray_lines) == 1 and "notes.txt" in stray_lines[0].getMessage()


def test_corrupt_cursor_is_reported_and_redelivers(tmp_path: Path, caplog) -> None:
    write_journal(tmp_path, 30, acked=10)
    cursor = tmp_path / "cursor"
    raw = bytearray(cursor.read_bytes())
    raw[-1] ^= 0xFF
    cursor.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        j = Journal(tmp_path, segment_bytes=SEG)
    assert j.stats.cursor_corrupt == 1 and j.stats.lost_records == 0
    assert any("cursor file corrupt" in r.getMessage() for r in caplog.records)
    got = [i for i, _ in drain(j)]
    # at-least-once: everything still on disk comes again, the unacked ones certainly
    assert got == list(range(got[0], 30)) and got[0] <= 10


def test_old_cursor_format_still_reads(tmp_path: Path) -> None:
    write_journal(tmp_path, 30)
    body = struct.pack("<Q", 12)
    (tmp_path / "cursor").write_bytes(struct.pack("<I", zlib.crc32(body)) + body)
    j = Journal(tmp_path, segment_bytes=SEG)
    assert j.cursor == 12 and j.stats.lost_records == 0 and j.pending() == 18


def test_large_damage_is_resynchronised_exactly_and_quickly(tmp_path: Path) -> None:
    """Records of 116 bytes (16 header + 100): the records a byte range touches are
    floor(start / 116) .. floor((end - 1) / 116), by hand; the rest comes back."""
    j = Journal(tmp_path, segment_bytes=4 * 1024 * 1024, fsync="never")
    for i in range(10_000):
        j.append(b"%099d|" % i)
    j.close()
    (seg,) = tmp_path.glob("*.seg")
    data = bytearray(seg.read_bytes())
    data[1000:301_000] = bytes(300_000)                  # zeroed
    data[600_000:620_000] = os.urandom(20_000)           # garbage
    seg.write_bytes(bytes(data))
    again = Journal(tmp_path)
    expected = [[1000 // 116, 300_999 // 116], [600_000 // 116, 619_999 // 116]]
    assert again.stats.lost_ranges == expected
    got = drain(again)
    lost = {i for a, b in expected for i in range(a, b + 1)}
    assert [i for i, _ in got] == [i for i in range(10_000) if i not in lost]
    assert all(p == b"%099d|" % i for i, p in got)


def test_resync_across_an_index_block_boundary() -> None:
    """Indexes around 2**24 (where the index field's upper bytes change)."""
    from edge.rt.segments import encode, scan
    first = 2**24 - 4
    records = [encode(first + k, b"p%d" % k) for k in range(8)]
    data = bytearray(b"".join(records))
    at = sum(map(len, records[:2]))
    data[at:at + len(records[2]) + len(records[3])] = bytes(len(records[2]) + len(records[3]))
    found = scan(bytes(data), first)
    assert [i for i, _, _ in found.records] == [first, first + 1] + [first + k for k in range(4, 8)]

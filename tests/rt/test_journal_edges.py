"""Journal edges the other journal tests left open, each one found by a planted bug
(mutant) that survived them: the exact fsync-interval boundary, the record size limit,
what the size bound deletes, retries after an I/O error, the cursor saved after a
recovery, consumed segments deleted, and the messages a user reads."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from edge.rt import journal as journal_module
from edge.rt.journal import RETRY_S, Journal, StorageError, read_checked, write_checked
from edge.rt.segments import HEADER, MAX_RECORD_BYTES


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def drain(j: Journal) -> list[tuple[int, bytes]]:
    out = []
    while j.pending():
        batch = j.read(j.cursor, 100)
        assert batch, "pending records that read() does not return"
        out += batch
        j.ack(batch[-1][0])
    return out


def written(j: Journal, payloads) -> None:
    for p in payloads:
        j.append(p)
        j.flush()                   # on disk now (policy `never`: no fsync)


# -- fsync policy `interval`: due when fsync_interval_s has passed, not before ---------

def test_interval_append_fsyncs_at_exactly_the_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    j = Journal(tmp_path, fsync="interval", fsync_interval_s=0.5, clock=clock)
    j.append(b"a")                               # 0 s since the open: not due
    assert j.stats.fsyncs == 0
    clock.t += 0.5                               # 1000.5 - 1000.0 == 0.5 exactly
    j.append(b"b")
    assert j.stats.fsyncs == 1


def test_interval_flush_writes_but_fsyncs_only_when_due(tmp_path: Path) -> None:
    clock = FakeClock()
    j = Journal(tmp_path, fsync="interval", fsync_interval_s=0.5, clock=clock)
    j.append(b"a")
    j.flush()
    assert j.stats.fsyncs == 0 and segments(tmp_path)[0].stat().st_size == HEADER.size + 1
    clock.t += 0.4
    j.flush()
    assert j.stats.fsyncs == 0
    clock.t += 0.1
    j.append(b"b")                               # 0.5 s: due, written and fsynced
    assert j.stats.fsyncs == 1


# -- sizes ---------------------------------------------------------------------------

def test_a_record_of_exactly_the_maximum_size_is_taken(tmp_path: Path) -> None:
    j = Journal(tmp_path, max_bytes=2 * MAX_RECORD_BYTES, fsync="never")
    assert j.append(b"\0" * MAX_RECORD_BYTES) == 0
    with pytest.raises(StorageError, match="exceeds"):
        j.append(b"\0" * (MAX_RECORD_BYTES + 1))


def test_a_record_larger_than_the_whole_bound_is_refused_under_drop_oldest(tmp_path) -> None:
    j = Journal(tmp_path, max_bytes=1000, fsync="never")
    assert j.append(b"kept") == 0
    assert j.append(b"x" * 1000) is None          # 1000 + header > 1000: can never fit
    assert (j.stats.rejected_full, j.stats.dropped_full, j.pending()) == (1, 0, 1)
    assert drain(j) == [(0, b"kept")]


def test_drop_oldest_deletes_the_oldest_segments_and_logs_once(tmp_path: Path, caplog) -> None:
    # 100-byte payloads: records of 116 bytes; segments of 1024 bytes take 9 records
    # (the 9th crosses 1024); a bound of 4096 bytes holds at most 35 records.
    record = HEADER.size + 100
    j = Journal(tmp_path, max_bytes=4096, segment_bytes=1024, fsync="never")
    with caplog.at_level(logging.WARNING, logger="edge.rt.journal"):
        written(j, [i.to_bytes(2, "big") * 50 for i in range(200)])
    full = [r for r in caplog.records if "size bound" in r.getMessage()]
    assert len(full) == 1
    on_disk = sum(p.stat().st_size for p in segments(tmp_path))
    assert on_disk <= 4096
    # every file left holds only records still pending: the oldest went first
    assert len(segments(tmp_path)) == on_disk // (9 * record) + (on_disk % (9 * record) > 0)
    got = drain(j)
    assert [i for i, _ in got] == list(range(200 - len(got), 200))     # the newest, in order
    assert all(p == i.to_bytes(2, "big") * 50 for i, p in got)
    assert len(got) >= (4096 - 1024) // record                          # at most a segment less
    assert j.stats.dropped_full == 200 - len(got)


def test_dropping_the_live_segment_goes_on_writing_in_a_new_file(tmp_path: Path) -> None:
    # one segment bigger than the bound: making room deletes the file being written
    j = Journal(tmp_path, max_bytes=1000, segment_bytes=10_000, fsync="never")
    written(j, [bytes([i]) * 100 for i in range(30)])
    before = [i for i, _ in j.read(j.cursor, 100)]
    assert before and before[-1] == 29
    j.close()
    again = Journal(tmp_path, max_bytes=1000, segment_bytes=10_000, fsync="never")
    got = drain(again)
    assert [i for i, _ in got] == before
    assert all(p == bytes([i]) * 100 for i, p in got)


def test_acknowledged_segments_are_deleted(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(j, [b"r" * 50 for _ in range(40)])
    assert len(segments(tmp_path)) > 3
    j.ack(39)
    assert len(segments(tmp_path)) == 1 and j.stats_dict()["segments"] == 1


# -- I/O errors ------------------------------------------------------------------------

def failing_writes(monkeypatch, j: Journal, log: list[float], clock: FakeClock) -> dict:
    """os.write fails with EIO on the journal's segment while state['fail'] is true."""
    real, state = os.write, {"fail": True}

    def write(fd, data):
        if fd == j._fd:
            log.append(clock.t)
            if state["fail"]:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, data)
    monkeypatch.setattr(journal_module.os, "write", write)
    return state


def test_after_a_write_error_the_retry_waits_retry_s(tmp_path: Path, monkeypatch) -> None:
    clock = FakeClock()
    j = Journal(tmp_path, fsync="always", clock=clock)
    j.append(b"opens the segment")
    attempts: list[float] = []
    state = failing_writes(monkeypatch, j, attempts, clock)
    j.append(b"a")                               # fails: the episode starts
    assert attempts == [1000.0] and j.stats.io_errors == 1
    clock.t += RETRY_S / 2
    j.append(b"b")                               # too soon: no attempt
    assert attempts == [1000.0]
    state["fail"] = False
    clock.t += RETRY_S / 2
    j.append(b"c")                               # RETRY_S after the failure: written
    assert len(attempts) == 2 and j.stats.buffered_bytes == 0
    assert [p for _, p in drain(j)] == [b"opens the segment", b"a", b"b", b"c"]


def test_a_missing_segment_loses_only_its_own_records_while_writes_fail(tmp_path: Path,
                                                                        monkeypatch) -> None:
    clock = FakeClock()
    j = Journal(tmp_path, fsync="never", cache_records=0, clock=clock)
    written(j, [b"old"] * 10)                    # records 0..9 in the one segment
    segments(tmp_path)[0].unlink()               # deleted behind the journal's back
    state = failing_writes(monkeypatch, j, [], clock)
    for _ in range(10):
        j.append(b"new")                         # 10..19 stay in memory: writes fail
    j.flush()
    got = j.read(0, 100)
    assert [i for i, _ in got] == list(range(10, 20))
    assert j.stats.lost_records == 10 and j.stats.lost_ranges == [[0, 9]]
    state["fail"] = False


# -- recovery --------------------------------------------------------------------------

def test_a_loss_found_on_open_is_reported_once_even_without_a_clean_stop(tmp_path) -> None:
    j = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(j, [b"r" * 50 for _ in range(20)])      # 66-byte records: 5 per segment
    j.close()
    files = segments(tmp_path)
    assert len(files) == 4
    files[1].unlink()                               # records 5..9
    first = Journal(tmp_path, segment_bytes=300, fsync="never")
    assert (first.stats.lost_records, first.stats.lost_ranges) == (5, [[5, 9]])
    assert first.cursor == 0 and first.pending() == 15
    # the process dies here, without close(): the next open knows the loss already
    second = Journal(tmp_path, segment_bytes=300, fsync="never")
    assert second.stats.lost_records == 0 and second.pending() == 15


def test_the_cursor_moves_over_a_loss_it_stands_on(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(j, [b"r" * 50 for _ in range(20)])
    j.close()
    segments(tmp_path)[0].unlink()                  # records 0..4, at the cursor
    again = Journal(tmp_path, segment_bytes=300, fsync="never")
    assert again.cursor == 5 and again.pending() == 15
    assert [i for i, _ in drain(again)] == list(range(5, 20))


# -- messages --------------------------------------------------------------------------

def test_a_journal_path_that_is_a_file_is_one_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    with pytest.raises(StorageError) as exc:
        Journal(path)
    assert str(exc.value) == f"journal {path}: File exists"


def test_a_checked_file_with_a_bad_checksum_is_logged(tmp_path: Path, caplog) -> None:
    f = tmp_path / "cursor"
    write_checked(f, b"12345678")
    f.write_bytes(f.read_bytes()[:-1] + b"X")
    with caplog.at_level(logging.WARNING, logger="edge.rt.journal"):
        assert read_checked(f) is None
    assert [r.getMessage() for r in caplog.records] == [f"{f}: checksum mismatch, ignored"]


def test_policy_never_does_not_fsync_on_rotation_only_at_close(tmp_path: Path) -> None:
    j = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(j, [b"r" * 50 for _ in range(20)])      # 4 segments: 3 rotations
    assert len(segments(tmp_path)) == 4 and j.stats.fsyncs == 0
    j.close()                                        # a clean stop is durable
    assert j.stats.fsyncs == 1


def test_an_unknown_when_full_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="when_full must be drop_oldest or reject_new"):
        Journal(tmp_path, when_full="drop_newest")  # type: ignore[arg-type]


def test_records_still_in_memory_are_delivered_when_their_file_vanished(tmp_path) -> None:
    # An earlier loss (a deleted segment) sends read() down its general path; records of
    # this session whose file was deleted behind the journal's back are still in memory
    # and are delivered from there, not reported lost.
    j = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(j, [b"r" * 50 for _ in range(20)])      # 5 records per segment
    j.close()
    segments(tmp_path)[1].unlink()                  # records 5..9
    again = Journal(tmp_path, segment_bytes=300, fsync="never")
    written(again, [b"n" * 50 for _ in range(5)])   # 20..24, in a new segment
    (tmp_path / f"{20:020d}.seg").unlink()
    got = drain(again)
    assert [i for i, _ in got] == [*range(0, 5), *range(10, 25)]
    assert again.stats.lost_records == 5

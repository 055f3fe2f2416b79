"""The journal: order, recovery after a crash or a torn tail, the size bound, the cursor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.journal import Journal, StorageError, atomic_write, read_checked, write_checked


def payload(i: int) -> bytes:
    return f"record-{i}-".encode() * (1 + i % 7)


def test_append_read_ack_and_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path, fsync="always")
    for i in range(100):
        assert j.append(payload(i)) == i
    assert [p for _, p in j.read(0, 1000)] == [payload(i) for i in range(100)]
    j.ack(39)
    assert j.pending() == 60
    j.close()

    again = Journal(tmp_path)
    assert again.cursor == 40 and again.stats.recovered == 60
    got = again.read(again.cursor, 1000)
    assert [i for i, _ in got] == list(range(40, 100))
    assert [p for _, p in got] == [payload(i) for i in range(40, 100)]
    assert again.append(b"next") == 100


def test_torn_tail_is_cut_and_counted(tmp_path: Path) -> None:
    j = Journal(tmp_path, fsync="never")
    for i in range(10):
        j.append(payload(i))
    j.close()
    (seg,) = tmp_path.glob("*.seg")
    good_size = seg.stat().st_size
    with open(seg, "ab") as f:            # half a header and some garbage: a torn write
        f.write(b"\x10\x00\x00\x00\x99\x99")
    again = Journal(tmp_path)
    assert again.stats.torn_bytes_cut == 6
    assert seg.stat().st_size == good_size
    assert [p for _, p in again.read(0, 100)] == [payload(i) for i in range(10)]


def test_corrupt_record_is_skipped_and_reported(tmp_path: Path) -> None:
    """One bad record costs that record only: the scan resynchronises on record 6."""
    j = Journal(tmp_path, fsync="never")
    for _ in range(10):
        j.append(b"x" * 20)
    j.close()
    (seg,) = tmp_path.glob("*.seg")
    data = bytearray(seg.read_bytes())
    data[5 * 36 + 20] ^= 0xFF             # flip a payload byte of record 5 (16 B header + 20 B)
    seg.write_bytes(bytes(data))
    again = Journal(tmp_path)
    assert [i for i, _ in again.read(0, 100)] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert again.stats.lost_records == 1 and again.stats.lost_ranges == [[5, 5]]
    assert again.stats.quarantined_bytes == 36 and again.stats.torn_bytes_cut == 0
    assert (tmp_path / "quarantine" / seg.name).read_bytes() == bytes(data)


def test_killed_mid_write_recovers_a_contiguous_prefix(tmp_path: Path) -> None:
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from edge.rt.journal import Journal
        j = Journal({str(tmp_path)!r}, fsync="never", segment_bytes=64 * 1024)
        i = 0
        while True:
            j.append(("record-%d-" % i).encode() * (1 + i % 7))
            if i % 3 == 0:
                j.flush()
            if i == 2000:
                print("ready", flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    j = Journal(tmp_path)
    got = j.read(0, 10_000_000)
    assert len(got) > 2000
    assert [i for i, _ in got] == list(range(len(got)))
    assert all(p == payload(i) for i, p in got)


def test_drop_oldest_bound_counts_what_it_drops(tmp_path: Path) -> None:
    j = Journal(tmp_path, max_bytes=8192, segment_bytes=2048, fsync="never")
    for _ in range(1000):
        j.append(b"y" * 50)
        j.flush()
    assert j.stats_dict()["bytes"] <= 8192 + 2048
    assert j.stats.dropped_full > 0
    kept = j.read(0, 10_000)
    assert kept[-1][0] == 999
    assert [i for i, _ in kept] == list(range(kept[0][0], 1000))
    assert kept[0][0] == j.stats.dropped_full     # exactly the dropped ones are missing


def test_reject_new_bound_counts_refusals(tmp_path: Path) -> None:
    j = Journal(tmp_path, max_bytes=4096, fsync="never", when_full="reject_new")
    results = [j.append(b"z" * 100) for _ in range(100)]
    refused = results.count(None)
    assert refused > 0 and j.stats.rejected_full == refused
    assert results[: 100 - refused] == list(range(100 - refused))


def test_bad_policy_and_oversized_record_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="fsync policy"):
        Journal(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="exceeds"):
        Journal(tmp_path).append(b"\0" * (16 * 1024 * 1024 + 1))


def test_checked_files(tmp_path: Path) -> None:
    f = tmp_path / "counter"
    write_checked(f, b"hello")
    assert read_checked(f) == b"hello"
    f.write_bytes(f.read_bytes()[:-1] + b"X")
    assert read_checked(f) is None
    atomic_write(tmp_path / "plain", b"abc")
    assert (tmp_path / "plain").read_bytes() == b"abc"
    assert not list(tmp_path.glob(".*.tmp"))


ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.binary(max_size=300)),
    st.tuples(st.just("ack"), st.integers(0, 50)),
    st.tuples(st.just("reopen"), st.none())), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_unacked_records_survive_any_sequence(tmp_path_factory, sequence) -> None:
    """Model check: after any appends, acks and reopen cycles, the journal holds exactly the
    unacknowledged records, in order, with their payloads."""
    directory = tmp_path_factory.mktemp("j")
    j = Journal(directory, segment_bytes=512, fsync="never")
    model: list[tuple[int, bytes]] = []
    for op, arg in sequence:
        if op == "append":
            model.append((j.append(arg), arg))
        elif op == "ack" and model:
            upto = model[min(arg, len(model) - 1)][0]
            j.ack(upto)
            model = [(i, p) for i, p in model if i > upto]
        elif op == "reopen":
            j.close()
            j = Journal(directory, segment_bytes=512, fsync="never")
    assert j.read(j.cursor, 10_000) == model
    j.close()

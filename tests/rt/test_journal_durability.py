"""The journal contract: durable per fsync policy whether or not anyone reads, the size
bound over disk and memory, a real fsync under `always`."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rt.journal import WRITE_BEHIND_BYTES, Journal

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def on_disk(directory: Path) -> list[tuple[int, bytes]]:
    """Records in the segment files, parsed by hand from the documented format
    (length u32 | crc32(index u64 + payload) u32 | index u64 | payload)."""
    out = []
    for seg in sorted(directory.glob("*.seg")):
        data, pos = seg.read_bytes(), 0
        while pos + 16 <= len(data):
            length, crc, index = struct.unpack_from("<IIQ", data, pos)
            body = data[pos + 16:pos + 16 + length]
            assert len(body) == length
            assert zlib.crc32(body, zlib.crc32(struct.pack("<Q", index))) == crc
            out.append((index, body))
            pos += 16 + length
    return out


def test_always_fsyncs_the_segment_before_append_returns(tmp_path: Path, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:            # the real fsync, and where it went
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    j = Journal(tmp_path, fsync="always")
    monkeypatch.setattr(os, "fsync", spy)
    for i in range(20):
        before = len(synced)
        j.append(b"r%d" % i)
        segment_syncs = [p for p in synced[before:] if p.endswith(".seg")]
        assert len(segment_syncs) == 1, f"append {i}: {synced[before:]}"
        assert j.stats.fsyncs == i + 1
        assert on_disk(tmp_path)[-1] == (i, b"r%d" % i)


def child(code: str) -> subprocess.Popen:
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)


def kill_after_line(proc: subprocess.Popen) -> bytes:
    line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return line.strip()


def test_always_record_survives_kill_right_after_append(tmp_path: Path) -> None:
    proc = child(f"""
        from edge.rt.journal import Journal
        j = Journal({str(tmp_path)!r}, fsync="always")
        for i in range(50):
            j.append(b"x" * 100 + str(i).encode())
        print(j.append(b"the one"), flush=True)
        import time
        time.sleep(30)
    """)
    index = int(kill_after_line(proc))
    assert (index, b"the one") in on_disk(tmp_path)
    assert Journal(tmp_path).read(index, 1) == [(index, b"the one")]


def test_interval_written_by_append_when_due_without_flush(tmp_path: Path) -> None:
    clock = FakeClock()
    j = Journal(tmp_path, fsync="interval", fsync_interval_s=0.2, clock=clock)
    j.append(b"a")
    assert on_disk(tmp_path) == []           # not due yet: buffered
    clock.t += 0.2
    j.append(b"b")                           # due: this append writes and fsyncs both
    assert on_disk(tmp_path) == [(0, b"a"), (1, b"b")] and j.stats.fsyncs == 1
    j.append(b"c")
    clock.t += 0.25
    j.flush()                                # the bridge's timer, nothing appended
    assert on_disk(tmp_path)[-1] == (2, b"c") and j.stats.fsyncs == 2


def test_interval_record_survives_kill_once_the_interval_passed(tmp_path: Path) -> None:
    proc = child(f"""
        import time
        from edge.rt.journal import Journal
        j = Journal({str(tmp_path)!r}, fsync="interval", fsync_interval_s=0.05)
        j.append(b"old")
        t = time.monotonic()
        while time.monotonic() - t < 0.1:
            pass
        j.append(b"trigger")
        print("go", flush=True)
        time.sleep(30)
    """)
    kill_after_line(proc)
    assert [p for _, p in on_disk(tmp_path)] == [b"old", b"trigger"]


def test_never_writes_past_the_write_behind_size(tmp_path: Path) -> None:
    j = Journal(tmp_path, fsync="never")
    record = b"n" * 1000
    count = 0
    while not on_disk(tmp_path):
        j.append(record)
        count += 1
        assert count * (16 + len(record)) <= WRITE_BEHIND_BYTES + 16 + len(record)
    assert len(on_disk(tmp_path)) == count and j.stats.fsyncs == 0
    j.append(b"tail")
    j.flush()
    assert on_disk(tmp_path)[-1] == (count, b"tail")


@settings(max_examples=25, deadline=None)
@given(policy=st.sampled_from(["always", "interval", "never"]),
       when_full=st.sampled_from(["drop_oldest", "reject_new"]),
       sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=300))
def test_size_bound_holds_with_nothing_read(tmp_path_factory, policy, when_full, sizes) -> None:
    """Nobody reads, the clock stands still (no interval ever due): disk + memory stays
    under max_bytes after every append, and every record is kept or counted."""
    directory = tmp_path_factory.mktemp("b")
    max_bytes = 20_000
    j = Journal(directory, max_bytes=max_bytes, fsync=policy, when_full=when_full,
                clock=FakeClock())
    accepted = 0
    for n in sizes:
        if j.append(bytes(n)) is not None:
            accepted += 1
        stats = j.stats_dict()
        assert stats["bytes"] + stats["buffered_bytes"] <= max_bytes
        assert sum(f.stat().st_size for f in directory.glob("*.seg")) <= max_bytes
    assert accepted + j.stats.rejected_full == len(sizes)
    assert j.pending() + j.stats.dropped_full == accepted
    j.close()


def test_tiny_bound_with_a_long_outage(tmp_path: Path) -> None:
    """The issue's case: max_mb 0.1, 2 MB appended while nothing reads."""
    j = Journal(tmp_path, max_bytes=int(0.1 * 1024 * 1024), fsync="interval")
    for i in range(2000):
        j.append(bytes(1000) + str(i).encode())
    assert max(f.stat().st_size for f in tmp_path.glob("*.seg")) <= 0.1 * 1024 * 1024
    assert j.stats.dropped_full > 1800
    assert j.pending() + j.stats.dropped_full == 2000
    kept = j.read(j.cursor, 10_000)
    assert [i for i, _ in kept] == list(range(2000 - len(kept), 2000))


@pytest.mark.parametrize("policy", ["interval", "never"])
def test_clean_close_with_nothing_read_keeps_everything(tmp_path: Path, policy) -> None:
    j = Journal(tmp_path, fsync=policy)
    for i in range(10):
        j.append(b"%d" % i)
    j.close()
    assert on_disk(tmp_path) == [(i, b"%d" % i) for i in range(10)]


def test_memory_stays_within_the_bound_during_an_outage(tmp_path: Path) -> None:
    """8 MB appended, nothing read, bound 256 KiB: the process holds about the bound
    (buffer and read cache included), not the stream."""
    import tracemalloc
    j = Journal(tmp_path, max_bytes=256 * 1024, segment_bytes=64 * 1024, fsync="never")
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            j.append(os.urandom(4000))
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 2 * 256 * 1024 + 256 * 1024, f"{held} bytes held"
    assert j.pending() + j.stats.dropped_full == 2000

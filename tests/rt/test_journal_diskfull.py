"""Disk full on a real, small filesystem (a 256 KiB tmpfs): append never raises, no torn
record is left, one warning per episode, writing resumes when space returns."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path

import pytest

from edge.rt.journal import RETRY_S, Journal


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def small_fs(tmp_path: Path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """A ballast file taking all the space but about `leave_bytes`."""
    ballast = path / "ballast"
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(ballast, "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave_bytes))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def journal_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "edge.rt.journal" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_disk_full_then_space_returns(small_fs: Path, policy: str, caplog) -> None:
    directory = small_fs / "j"
    clock = FakeClock()
    j = Journal(directory, max_bytes=2 * 1024 * 1024, segment_bytes=32 * 1024, fsync=policy,
                fsync_interval_s=0.0, clock=clock)
    ballast = fill(small_fs, 40 * 1024)
    record = lambda i: (b"%06d" % i) * 300              # noqa: E731  1800 B, self-checking
    with caplog.at_level(logging.WARNING):
        for i in range(100):                            # 180 KB into ~40 KB of space
            assert j.append(record(i)) == i
            j.flush()
            clock.t += 0.01
        assert j.stats.disk_full_events == 1 and j.stats.io_errors >= 1
        assert len(journal_warnings(caplog)) == 1, journal_warnings(caplog)
        assert j.stats_dict()["buffered_bytes"] > 0
        on_disk = j.stats_dict()["bytes"]
        assert on_disk == sum(f.stat().st_size for f in directory.glob("*.seg"))
        ballast.unlink()                                # space returns
        clock.t += RETRY_S
        j.flush()
        assert j.stats_dict()["buffered_bytes"] == 0
        assert j.stats.disk_full_events == 1
        assert any("writing again" in m for m in journal_warnings(caplog))
    j.close()
    again = Journal(directory)
    got = again.read(0, 1000)
    assert [i for i, _ in got] == list(range(100))
    assert all(p == record(i) for i, p in got)
    assert again.stats.torn_bytes_cut == 0 and again.stats.lost_records == 0


def test_partial_writes_leave_only_whole_records(small_fs: Path) -> None:
    """A write cut short by ENOSPC is truncated back to the last whole record; a crash
    then (no close, the process just stops using it) recovers every written record."""
    directory = small_fs / "j"
    j = Journal(directory, max_bytes=2 * 1024 * 1024, segment_bytes=1024 * 1024,
                fsync="never", clock=FakeClock())
    fill(small_fs, 30 * 1024)
    record = lambda i: (b"%05d" % i) * 599              # noqa: E731  2995 B
    for i in range(200):
        j.append(record(i))                             # writes every 64 KiB: short writes
    j.flush()
    assert j.stats.io_errors > 0
    written = j.stats_dict()["bytes"]
    segs = list(directory.glob("*.seg"))
    assert sum(f.stat().st_size for f in segs) == written
    del j                                               # no close: as after kill -9
    again = Journal(directory)
    assert again.stats.torn_bytes_cut == 0 and again.stats.lost_records == 0
    got = again.read(0, 1000)
    assert got and [i for i, _ in got] == list(range(len(got)))
    assert all(p == record(i) for i, p in got)
    assert len(got) * (16 + 2995) == written


def test_drop_oldest_on_a_full_disk_frees_space_and_counts(small_fs: Path) -> None:
    """The bound is larger than the disk: records wait in memory up to the bound, then
    drop_oldest deletes the oldest segment, which frees space to write the rest."""
    directory = small_fs / "j"
    clock = FakeClock()
    j = Journal(directory, max_bytes=200 * 1024, segment_bytes=16 * 1024, fsync="interval",
                fsync_interval_s=0.0, clock=clock)
    fill(small_fs, 100 * 1024)
    for i in range(400):
        j.append(bytes(1000) + b"%d" % i)
        clock.t += RETRY_S
        stats = j.stats_dict()
        assert stats["bytes"] + stats["buffered_bytes"] <= 200 * 1024
    assert j.stats.dropped_full > 0
    assert j.pending() + j.stats.dropped_full == 400
    got = j.read(j.cursor, 1000)
    assert [i for i, _ in got] == list(range(400 - len(got), 400))

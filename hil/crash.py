"""Crash-consistency campaign for the journal: kill -9 a writer at random points.

A child process opens the journal (recovery), appends self-checking records, rotates
segments, flushes and acknowledges at random, and reports each step on stdout after it
returns. The parent kills it with SIGKILL after a seeded random delay (so some kills land
in start-up and recovery), reopens the journal as a restart would, and checks:
no torn or foreign record, nothing reordered, nothing acknowledged read again, every
record durable by the fsync policy present, nothing once present gone, no loss reported.

`python -m hil.crash --kills 200 --policy always DIR` runs a bench-sized campaign; the
test suite runs a small one through `run_campaign`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITE_BEHIND_BYTES = 64 * 1024     # the journal's documented write-behind size


def make_payload(run: int, seq: int) -> bytes:
    """Self-checking: a torn or mixed-up record cannot match its own header."""
    head = b"%d:%d:" % (run, seq)
    return head + head * (seq % 13)


def parse_payload(payload: bytes) -> tuple[int, int] | None:
    parts = payload.split(b":", 2)
    try:
        ident = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None
    return ident if make_payload(*ident) == payload else None


@dataclass
class CrashReport:
    policy: str
    kills: int = 0
    killed_in_startup: int = 0     # before the child said its journal was open
    confirmed: int = 0             # appends the child saw return
    guaranteed: int = 0            # of those, durable by the policy at the kill
    acked: int = 0                 # acknowledgements the child saw persisted
    checked: int = 0               # records read back and checked over all restarts
    redelivered: int = 0           # unacked records read again at a later restart
    torn_bytes_cut: int = 0
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"crash[{self.policy}]: {self.kills} kills ({self.killed_in_startup} in "
                f"start-up), {self.confirmed} appends confirmed, {self.guaranteed} durable by "
                f"policy, {self.acked} acks, {self.checked} records checked, "
                f"{self.redelivered} re-read unacked, {self.torn_bytes_cut} torn bytes cut, "
                f"{len(self.violations)} violations")


def _child_main(directory: str, run: int, policy: str, interval_s: float,
                segment_bytes: int, seed: int) -> None:
    from edge.rt.journal import Journal
    rng = random.Random(seed)
    out = sys.stdout
    j = Journal(directory, fsync=policy, fsync_interval_s=interval_s,
                segment_bytes=segment_bytes)
    out.write("O\n")
    out.flush()
    seq = 0
    while True:
        before = time.monotonic()
        j.append(make_payload(run, seq))
        out.write(f"A {seq} {before:.6f} {time.monotonic():.6f}\n")
        out.flush()
        if rng.random() < 0.0005:       # rare: append alone must keep the promise
            j.flush()
            out.write(f"F {seq}\n")
            out.flush()
        if rng.random() < 0.01:          # a consumer slower than the writer
            batch = j.read(j.cursor, rng.randint(1, 40))
            if batch:
                r, s = parse_payload(batch[-1][1]) or (-1, -1)
                out.write(f"k {r} {s}\n")         # about to ack: these may go
                out.flush()
                j.ack(batch[-1][0])
                j.save_cursor()
                out.write(f"K {r} {s}\n")         # acked and persisted: these must go
                out.flush()
        seq += 1


def _run_child(directory: Path, run: int, policy: str, interval_s: float,
               segment_bytes: int, seed: int, delay_s: float, in_startup: bool) -> list[str]:
    """The child's report lines; killed `delay_s` after its start (`in_startup`) or
    after it opened the journal."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from hil.crash import "
            f"_child_main; _child_main({str(directory)!r}, {run}, {policy!r}, "
            f"{interval_s}, {segment_bytes}, {seed})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    lines: list[str] = []
    opened = threading.Event()

    def read() -> None:
        for raw in proc.stdout:
            lines.append(raw.decode().strip())
            if lines[-1] == "O":
                opened.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not in_startup:
        opened.wait(30)
    time.sleep(delay_s)       # the random kill point, not a wait for a condition
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(5)
    return [line for line in lines if line]


def run_campaign(directory: str | os.PathLike, *, kills: int = 30, seed: int = 0,
                 policy: str = "always", interval_s: float = 0.05,
                 segment_bytes: int = 4096, max_run_s: float = 0.3,
                 startup_share: float = 0.2) -> CrashReport:
    """Kill a journal writer `kills` times in `directory`: a `startup_share` of the kills
    at a seeded random point of its start-up (imports, recovery), the others up to
    `max_run_s` s after it opened the journal. The report lists every invariant
    violated."""
    from edge.rt.journal import Journal
    rng = random.Random(seed)
    directory = Path(directory)
    report = CrashReport(policy)
    acked_upto = (-1, -1)          # acknowledged and persisted: must never come back
    may_be_acked = (-1, -1)        # acknowledgement begun: may be gone
    present_before: set[tuple[int, int]] = set()
    for run in range(kills):
        in_startup = rng.random() < startup_share
        lines = _run_child(directory, run, policy, interval_s, segment_bytes,
                           rng.randrange(1 << 30),
                           rng.uniform(0.0, 0.6 if in_startup else max_run_s), in_startup)
        report.kills += 1
        if "O" not in lines:
            report.killed_in_startup += 1
        appended = [(int(p[1]), float(p[2]), float(p[3]))
                    for p in (ln.split() for ln in lines) if p[0] == "A"]
        flushed = max((int(ln.split()[1]) for ln in lines if ln[0] == "F"), default=-1)
        for ln in lines:
            if ln[0] in "kK":
                ident = tuple(map(int, ln.split()[1:]))
                may_be_acked = max(may_be_acked, ident)
                if ln[0] == "K":
                    acked_upto = max(acked_upto, ident)
                    report.acked += 1
        report.confirmed += len(appended)
        guaranteed = _guaranteed(policy, run, appended, flushed, interval_s)
        report.guaranteed += len(guaranteed)

        j = Journal(directory, fsync=policy, fsync_interval_s=interval_s,
                    segment_bytes=segment_bytes)
        report.torn_bytes_cut += j.stats.torn_bytes_cut
        got = _read_all(j)
        j.close()
        where = f"restart after kill {run}"
        if j.stats.lost_records:
            report.violations.append(f"{where}: {j.stats.lost_records} records reported lost "
                                     f"{j.stats.lost_ranges}")
        idents = []
        for index, payload in got:
            ident = parse_payload(payload)
            if ident is None:
                report.violations.append(f"{where}: record {index} is torn or foreign")
            else:
                idents.append(ident)
        report.checked += len(idents)
        if idents != sorted(set(idents)):
            report.violations.append(f"{where}: records out of order or duplicated")
        if idents and idents[0] <= acked_upto:
            report.violations.append(f"{where}: acknowledged record {idents[0]} read again")
        now = set(idents)
        missing = [s for s in guaranteed if (run, s) > may_be_acked and (run, s) not in now]
        if missing:
            report.violations.append(f"{where}: {len(missing)} durable records missing, "
                                     f"first seq {missing[0]}")
        gone = sorted(i for i in present_before - now if i > may_be_acked)
        if gone:
            report.violations.append(f"{where}: {len(gone)} records present before vanished")
        report.redelivered += len(present_before & now)
        present_before = now
    return report


def _guaranteed(policy: str, run: int, appended: list[tuple[int, float, float]],
                flushed: int, interval_s: float) -> list[int]:
    """Seqs the policy promises on disk at the kill: `always`, every confirmed append;
    any policy, whatever a confirmed flush covered; `interval`, every record older than
    one interval when a later confirmed append started (that append was due, so it wrote
    it); `interval` and `never`, every record 64 KiB or more behind the last confirmed
    append. Times: (seq, clock before append, clock after it returned)."""
    if policy == "always":
        return [s for s, _, _ in appended]
    out = {s for s, _, _ in appended if s <= flushed}
    if policy == "interval" and appended:
        last_start = appended[-1][1]
        out |= {s for s, _, done in appended if last_start - done >= interval_s}
    # Write-behind: once the records from r to a confirmed append fill 64 KiB, the
    # buffer holding r passed that size at some append, which wrote it.
    behind = 0
    for s, _, _ in reversed(appended):
        behind += 16 + len(make_payload(run, s))
        if behind >= WRITE_BEHIND_BYTES:
            out.add(s)
    return sorted(out)


def _read_all(j) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    start = j.cursor
    while True:
        batch = j.read(start, 4096)
        if not batch:
            return got
        got += batch
        start = batch[-1][0] + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", help="journal directory (default: a temp dir)")
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", choices=["always", "interval", "never"], default="always")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = run_campaign(args.directory or tmp, kills=args.kills, seed=args.seed,
                              policy=args.policy)
    sys.stdout.write(report.line() + "\n")
    for violation in report.violations:
        sys.stdout.write(f"  {violation}\n")
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fuzz targets for what edge reads from files and board text: board files, logic
programs and expressions, journal segments and cursor files, usage-counter files.

Files are written under one scratch directory (on tmpfs when the machine has one: the
journal fsyncs, and a fuzzer must not fsync a shared disk a million times).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench.fuzz.targets_wire import OneInput

SCRATCH_ENV = "EDGE_FUZZ_SCRATCH"     # the bench and the tests point this at a folder they remove


def scratch_dir(prefix: str) -> Path:
    """A fresh private directory for one target, under $EDGE_FUZZ_SCRATCH if set, else on
    /dev/shm when it exists, else in the system temp folder."""
    base = os.environ.get(SCRATCH_ENV) or (
        "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None)
    return Path(tempfile.mkdtemp(prefix=f"edge-fuzz-{prefix}-", dir=base))


def _parts(data: bytes, sep: bytes, n: int) -> list[bytes]:
    """Split the input into up to `n` files at `sep` (a mutator keeps or breaks it)."""
    return data.split(sep, n - 1)


# -- board files -----------------------------------------------------------------------------
def make_board() -> OneInput:
    """The bytes as a board file on disk, through `edge check`'s load_board."""
    from edge.config import load_board
    from edge.errors import ConfigError

    path = scratch_dir("board") / "fuzz.yaml"

    def test_one_input(data: bytes) -> None:
        path.write_bytes(data)
        try:
            load_board(str(path))
        except ConfigError:
            pass
    return test_one_input


# -- logic ------------------------------------------------------------------------------------
LOGIC_SIGNALS = {"speed": "REAL", "force": "REAL", "estop": "BOOL", "door": "BOOL",
                 "mode": "INT", "t": "TIME"}
_SAMPLES = [{"speed": 0.0, "force": 0.0, "estop": False, "door": True, "mode": 0, "t": 0},
            {"speed": -1e308, "force": float("nan"), "estop": True, "door": False,
             "mode": -(2 ** 31), "t": 2 ** 62},
            {"speed": float("inf"), "force": 5e-324, "estop": False, "door": True,
             "mode": 2 ** 31 - 1, "t": -1}]


def _text(data: bytes) -> str:
    """Board text is UTF-8 and YAML strings hold no surrogates."""
    return data.decode("utf-8", "replace")


def make_logic_expression() -> OneInput:
    """parse -> check -> compile, then evaluate on ordinary and extreme values: a math
    fault is counted in the function's Faults word, never raised."""
    from edge.errors import LogicError
    from edge.logic import compile_expression

    def test_one_input(data: bytes) -> None:
        try:
            fn = compile_expression(_text(data), LOGIC_SIGNALS, source="fuzz")
        except LogicError:
            return
        for values in _SAMPLES:
            fn(values)
    return test_one_input


def make_logic_program() -> OneInput:
    """A whole program: compile, then a few scans over ordinary and extreme inputs."""
    from edge.errors import LogicError
    from edge.logic import compile_program

    def test_one_input(data: bytes) -> None:
        try:
            program = compile_program(_text(data), LOGIC_SIGNALS, source="fuzz")
        except LogicError:
            return
        for tick, values in enumerate(_SAMPLES * 2):
            program.scan(values, tick)
    return test_one_input


# -- journal segments and cursor ----------------------------------------------------------
SEGMENT_SEP = b"|SEG|"


def make_journal() -> OneInput:
    """Input: cursor file, then up to 3 segments, separated by SEGMENT_SEP. The first byte
    of a segment part names it: below 0xF0 its first record index, from 0xF0 a name that
    is not a number (a stray file). Then what the bridge does: open (recovery), drain
    everything pending with read/ack, append, close, reopen and drain again. A drain that
    gets nothing while records are pending is a hang: the bridge's send loop would spin."""
    from edge.errors import StorageError
    from edge.rt.journal import Journal

    root = scratch_dir("journal")

    def drain(journal: Journal) -> None:
        for _ in range(10_000):
            if journal.pending() <= 0:
                return
            batch = journal.read(journal.cursor, 64)
            if not batch:
                raise StuckJournal(f"read() returned nothing with {journal.pending()} "
                                   f"pending at cursor {journal.cursor}")
            journal.ack(batch[-1][0])
        raise StuckJournal("pending never reached 0 in 10,000 reads")

    def test_one_input(data: bytes) -> None:
        directory = root / "j"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        cursor, *segments = _parts(data, SEGMENT_SEP, 4)
        if cursor:
            (directory / "cursor").write_bytes(cursor)
        for seg in segments:
            if not seg:
                continue
            name = f"{seg[0]:020d}" if seg[0] < 0xF0 else f"stray-{seg[0]:x}"
            (directory / f"{name}.seg").write_bytes(seg[1:])
        try:
            journal = Journal(directory, max_bytes=1 << 20, fsync="never")
            drain(journal)
            journal.append(b"after recovery")
            journal.close()
            journal = Journal(directory, max_bytes=1 << 20, fsync="never")
            drain(journal)
            journal.close()
        except StorageError:
            pass
    return test_one_input


class StuckJournal(Exception):
    """The journal kept reporting pending records that read() would not return."""


# -- usage counters -------------------------------------------------------------------------
USAGE_SEP = b"|PREV|"


def make_usage() -> OneInput:
    """Input: the counter file, then (after USAGE_SEP) its previous generation."""
    from edge.acquisition.usage import UsageStore
    from edge.errors import StorageError

    root = scratch_dir("usage")
    store = UsageStore(root / "usage.json")

    def test_one_input(data: bytes) -> None:
        for p in (store.path, store.prev):
            p.unlink(missing_ok=True)
        current, *prev = _parts(data, USAGE_SEP, 2)
        store.path.write_bytes(current)
        if prev:
            store.prev.write_bytes(prev[0])
        try:
            store.load()
        except StorageError:
            pass
    return test_one_input

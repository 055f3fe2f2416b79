"""Usage counters kept durably: running hours and power cycles of the device.

The counters live in a small JSON document with a SHA-256 of its body, replaced by
edge.rt.journal.atomic_write (temporary file, fsync, rename, directory fsync). Two
generations are kept (`<file>` and `<file>.prev`): a torn or corrupted file is detected
by its checksum and the other generation is used; both bad is an error, never a silent
reset to zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StorageError
from edge.rt.journal import atomic_write

log = logging.getLogger(__name__)
FORMAT = "edge.usage/1"


@dataclass
class UsageCounters:
    running_s: float = 0.0        # accumulated running time
    power_cycles: int = 0         # starts of the controller
    generation: int = 0           # saves so far

    @property
    def running_hours(self) -> float:
        return self.running_s / 3600.0

    def to_data(self) -> dict:
        return {"running_s": self.running_s, "running_hours": self.running_hours,
                "power_cycles": self.power_cycles, "generation": self.generation}


MAX_FILE_BYTES = 4096


def _encode(c: UsageCounters) -> bytes:
    body = {"format": FORMAT, "running_s": c.running_s, "power_cycles": c.power_cycles,
            "generation": c.generation}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canon.encode()).hexdigest()
    return (json.dumps({"body": body, "sha256": digest}, sort_keys=True) + "\n").encode()


def _decode(raw: bytes) -> UsageCounters:
    """Parse and verify; raises ValueError when the file is not a whole, valid record."""
    if len(raw) > MAX_FILE_BYTES:       # a few hundred bytes when edge wrote it
        raise ValueError(f"{len(raw)} bytes, more than a counter file holds")
    try:
        doc = json.loads(raw)
    except RecursionError:              # nested past what json can parse: not our record
        raise ValueError("nested too deep to be a counter record") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("body"), dict):
        raise ValueError("not a counter record")
    body = doc["body"]
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"))
    if hashlib.sha256(canon.encode()).hexdigest() != doc["sha256"]:
        raise ValueError("checksum mismatch")
    if body.get("format") != FORMAT:
        raise ValueError(f"unknown format {body.get('format')!r}")
    return UsageCounters(float(body["running_s"]), int(body["power_cycles"]),
                         int(body["generation"]))


class UsageStore:
    """Loads and saves UsageCounters at `path` (and `path`.prev)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.prev = self.path.with_name(self.path.name + ".prev")
        self.recovered_from: str | None = None     # set when a bad file was skipped

    def load(self) -> UsageCounters:
        """The newest valid generation; zeros when none was ever written."""
        found: list[UsageCounters] = []
        bad: list[str] = []
        for p in (self.path, self.prev):
            try:
                raw = p.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                bad.append(f"{p}: {exc}")
                continue
            try:
                found.append(_decode(raw))
            except (ValueError, KeyError, TypeError) as exc:
                bad.append(f"{p}: {exc}")
        if bad and not found:
            raise StorageError(f"usage counters unreadable ({'; '.join(bad)}); refusing to "
                               "restart them from zero")
        if bad:
            self.recovered_from = "; ".join(bad)
            log.warning("usage counters: skipped a bad generation (%s)", self.recovered_from)
        return max(found, key=lambda c: c.generation) if found else UsageCounters()

    def save(self, counters: UsageCounters) -> None:
        """Write the next generation durably; the previous one becomes `.prev`."""
        counters.generation += 1
        data = _encode(counters)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                os.replace(self.path, self.prev)
            atomic_write(self.path, data)          # the one durable-write path (journal.py)
        except (OSError, StorageError) as exc:
            counters.generation -= 1
            raise StorageError(f"cannot save usage counters to {self.path}: {exc}") from None


class UsageTracker:
    """Counts one power cycle at start, then running time while `running` is true."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store
        self.counters = store.load()
        self.counters.power_cycles += 1
        self.store.save(self.counters)
        self.dirty = False
        # Saves run in worker threads (real time); at stop the final save can start while
        # a cancelled periodic one is still writing: one at a time, so the newest lands last.
        self._saving = threading.Lock()

    def add_running(self, seconds: float) -> None:
        if seconds > 0:
            self.counters.running_s += seconds
            self.dirty = True

    def flush(self) -> None:
        """Save if anything was counted since the last save. Thread-safe: running time
        added during a save makes the next flush save again. Raises StorageError."""
        with self._saving:
            if not self.dirty:
                return
            self.dirty = False
            try:
                self.store.save(self.counters)
            except StorageError:
                self.dirty = True
                raise

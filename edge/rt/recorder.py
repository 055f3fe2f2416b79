"""The flight recorder: board section `record:` (or `edge run --record DIR`).

It writes every input that crosses into the controller with the tick it took effect, and
an 8-byte digest of the controller's outputs at every tick, through the append-only
journal (docs/flight-recorder.md). Inputs: bus messages from outside (MQTT commands, rigs),
device polls with their quality, commands pushed from outside, and the facts the cycle's
timing decides (the tick each command without a tick of its own was applied, watchdog
kicks, deadline misses). edge.rt.replay feeds them to the same board in virtual time.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import logging
import os
import platform
import queue
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from edge import __version__
from edge.config import Board, Node, check_writable_dir
from edge.errors import ConfigError, StorageError
from edge.rt.bus import Message
from edge.rt.contract import CycleCommand
from edge.rt.journal import Journal, write_checked
from edge.rt.native import TARGET_CYCLE, TICK_ASAP, logical_states
from edge.sections import Section

log = logging.getLogger(__name__)

FORMAT = 1
HEADER_FILE = "header"           # JSON, CRC-checked, replaced atomically (write_checked)
JOURNAL_DIR = "journal"
DIGEST_BYTES = 8
FSYNC_POLICIES = ("always", "interval", "never")
CYCLE_CMD_KICK = CycleCommand.KICK

# Journal records: msgpack lists, the kind first, then the tick the fact took effect.
BUS = "bus"          # [BUS, tick delivered, topic, seq, publish tick, data]
POLL = "poll"        # [POLL, tick stamped, device, t_ns, values, error, refused]
PUSH = "push"        # [PUSH, tick applied, target, kind, args]: pushed from outside
KICK = "kick"        # [KICK, tick applied]: the executor's watchdog kick
APPLIED = "at"       # [APPLIED, tick applied, n]: the n-th command the controller pushed
#                      was applied at that tick, not at the tick it asked for (none or late)
MISS = "miss"        # [MISS, release tick, task]: a release that missed its deadline
STATUS = "status"    # [STATUS, release tick, device, stats]: a device poller's status as
#                      the acquisition release saw it when it changed (timing, not inputs:
#                      the replay shows the release the same poller state)
DIGESTS = "hash"     # [DIGESTS, first tick, digests]: DIGEST_BYTES per tick from first on
END = "end"          # [END, ticks hashed, released until]: the run ended cleanly; the
#                      ticks from `released until` on had no releases (real time, stopped)


@dataclasses.dataclass(frozen=True)
class RecordConfig:
    """`record:` settings. dir: where the recording goes (an empty or new directory);
    ring_minutes: keep only about the last N minutes (whole old segments are dropped);
    hash_every_ticks: how often the output digests are written; fsync: the journal's
    policy; max_mb: the journal's size bound."""

    dir: str
    ring_minutes: float | None = None
    hash_every_ticks: int = 10
    fsync: str = "interval"
    max_mb: float = 1024.0
    check_only: bool = False         # `edge check`: validate, write nothing


def parse_record(node: Node, board: Board) -> RecordConfig:
    node.only("dir", "ring_minutes", "hash_every_ticks", "fsync", "max_mb")
    directory = node.get("dir", str)
    if not directory.strip():
        raise node.error("the directory is empty", "dir")
    ring = node.get("ring_minutes", float, None, min=0.01)
    return RecordConfig(dir=directory, ring_minutes=ring,
                        hash_every_ticks=node.get("hash_every_ticks", int, 10, min=1,
                                                  max=100_000),
                        fsync=node.get("fsync", str, "interval", choices=FSYNC_POLICIES),
                        max_mb=node.get("max_mb", float, 1024.0, min=1.0))


def record_from_option(value: str, board: Board) -> RecordConfig:
    """`edge run --record DIR`: the board's `record:` settings (if any) with DIR."""
    if not value.strip():
        raise ConfigError("--record: the directory is empty")
    current = board.sections.get("record")
    if isinstance(current, RecordConfig):
        return dataclasses.replace(current, dir=value)
    return RecordConfig(dir=value)


def record_for_check(cfg: RecordConfig) -> RecordConfig:
    return dataclasses.replace(cfg, check_only=True)


def check_record_dir(path: Path) -> None:
    """Refuse a directory that cannot be written or already holds a recording (one
    recording per directory: a replay must not mix two runs). Raises ConfigError."""
    check_writable_dir(path, "record directory")
    if (path / HEADER_FILE).exists() or (path / JOURNAL_DIR).exists():
        raise ConfigError(f"record directory {path} already holds a recording; give a new "
                          "or empty directory")


# -- the output digest (the replay computes the same) ----------------------------------

def _plain(value: Any) -> Any:
    """Bus data as the digest sees it: wall-clock stamps (`t_ns`) left out, like the
    state record's timing fields."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "t_ns"}
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, list, tuple)):
        return [_plain(v) for v in value]
    return value


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return ["ndarray", obj.dtype.str, list(obj.shape), obj.tobytes()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    # no repr: it may hold an address, which differs between runs
    return ["object", f"{type(obj).__module__}.{type(obj).__qualname__}"]


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=_encode_default)


def message_bytes(msg: Message) -> bytes:
    """One delivered message as the digest takes it: topic, seq, publish tick, data."""
    return pack([msg.topic, msg.seq, msg.tick, _plain(msg.data)])


class OutputDigest:
    """Per tick, DIGEST_BYTES of blake2b over the tick's state record without its timing
    fields, then every message the controller delivered at that tick, in delivery order
    (messages from outside are inputs, not outputs). `on_block(first tick, digests)` gets
    them every `every` ticks, from a state listener."""

    def __init__(self, every: int, on_block) -> None:
        self.every = every
        self.on_block = on_block
        self._delivered: dict[int, list[bytes]] = {}
        self.ticks = 0                     # ticks digested so far (from tick 0)
        self.chain = hashlib.sha256()      # over every digest, in tick order

    def on_delivery(self, tick: int, delivered: list[Message], arrived: list[Message]) -> None:
        outside = {id(m) for m in arrived}
        out = [message_bytes(m) for m in delivered if id(m) not in outside]
        if out:
            self._delivered.setdefault(tick, []).extend(out)

    def on_records(self, tick: int, records: np.ndarray) -> None:
        first = tick - len(records) + 1
        logical = logical_states(records)
        raw, size = logical.tobytes(), logical.dtype.itemsize
        out = bytearray()
        for i in range(len(records)):
            h = hashlib.blake2b(raw[i * size:(i + 1) * size], digest_size=DIGEST_BYTES)
            for m in self._delivered.pop(first + i, ()):
                h.update(m)
            out += h.digest()
        for stale in [t for t in self._delivered if t < first]:   # none in a whole run
            del self._delivered[stale]
        digests = bytes(out)
        self.chain.update(digests)
        self.ticks = tick + 1
        self.on_block(first, digests, records)


# -- the recorder ----------------------------------------------------------------------

def _segment_bytes(cfg: RecordConfig, period_ns: int) -> int:
    """Segments small enough that the ring drops in steps of about an eighth of it."""
    if cfg.ring_minutes is None:
        return 4 * 1024 * 1024
    per_s = (1e9 / period_ns) * (DIGEST_BYTES + 32 / cfg.hash_every_ticks) + 2000
    return int(min(4 * 1024 * 1024, max(4096, per_s * cfg.ring_minutes * 60 / 8)))


class _Writer(threading.Thread):
    """Owns the journal: appends what the event loop hands over, so no write or fsync
    ever runs in the executor's path; acks what the ring lets go (the journal then drops
    the whole segments before it)."""

    def __init__(self, journal: Journal, ring_ticks: int | None) -> None:
        super().__init__(name="flight-recorder", daemon=True)
        self.journal = journal
        self.ring_ticks = ring_ticks
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self._appended: deque[tuple[int, int]] = deque()    # (index, tick), for the ring
        self.failed: str | None = None

    def run(self) -> None:
        journal = self.journal
        idle_s = max(0.01, journal.fsync_interval_s)
        try:
            while True:
                try:
                    item = self.queue.get(timeout=idle_s)
                except queue.Empty:
                    journal.flush()
                    continue
                if item is None:
                    break
                tick, payload = item
                if payload is None:                      # the ring's cut: drop before it
                    self._cut(tick)
                    continue
                index = journal.append(payload)
                if index is not None and self.ring_ticks is not None:
                    self._appended.append((index, tick))
        except Exception as exc:                         # noqa: BLE001 - reported in summary
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("flight recorder: writing %s failed", journal.dir)
        finally:
            journal.close()

    def _cut(self, cutoff: int) -> None:
        last = None
        while self._appended and self._appended[0][1] < cutoff:
            last = self._appended.popleft()[0]
        if last is not None:
            self.journal.ack(last)


class Recorder:
    """Installed on a runtime by the `record` section; see the module docstring."""

    def __init__(self, runtime, cfg: RecordConfig) -> None:
        self.runtime = runtime
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        check_record_dir(self.dir)
        self.period_ns = runtime.period_ns
        self.ring_ticks = (None if cfg.ring_minutes is None
                           else int(cfg.ring_minutes * 60e9 / self.period_ns))
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create record directory {self.dir}: "
                               f"{exc.strerror or exc}") from None
        self.journal = Journal(self.dir / JOURNAL_DIR, max_bytes=int(cfg.max_mb * 1024 ** 2),
                               segment_bytes=_segment_bytes(cfg, self.period_ns),
                               fsync=cfg.fsync, when_full="drop_oldest")
        self._write_header()
        self._writer = _Writer(self.journal, self.ring_ticks)
        self._writer.start()
        self._pending: deque[tuple[int, str, int, Any]] = deque()   # pushes not yet popped
        self._internal_pushes = 0
        self._status_topics: dict[str, tuple[str, int]] = {}   # topic -> device, lag
        self.digest = OutputDigest(cfg.hash_every_ticks, self._block)
        self.inputs = 0
        self.closed = False
        bus, executor = runtime.bus, runtime.executor
        bus.tap = self._delivery
        executor.on_missed = self._missed
        executor.add_state_listener(self.digest.on_records, cfg.hash_every_ticks)
        runtime.on_connect(self._connect)
        runtime.add_stop_hook(self.close)
        runtime.add_summary("record", self.summary)
        atexit.register(_close_at_exit, weakref.ref(self))   # an exit without the stop hook

    def _write_header(self) -> None:
        board = self.runtime.board
        text = board.text
        if text is None:
            raise ConfigError("record: the board was not parsed from a file's text "
                              "(edge.config.parse_board keeps it), so it cannot be replayed")
        options = board.options
        header = {
            "format": FORMAT, "edge_version": __version__,
            "board": board.name, "board_file": board.file, "board_text": text,
            "board_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "options": {k: v for k, v in options.items() if k != "record"},
            "period_ns": self.period_ns, "hash_every_ticks": self.cfg.hash_every_ticks,
            "ring_minutes": self.cfg.ring_minutes, "digest_bytes": DIGEST_BYTES,
            "started_unix_ns": time.time_ns(), "python": sys.version.split()[0],
            "machine": platform.machine(),
            "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        }
        write_checked(self.dir / HEADER_FILE, json.dumps(header, indent=1).encode())

    # -- hooks ---------------------------------------------------------------------
    def _connect(self) -> None:
        """After every section is built: pushes and polls from now on are recorded
        (what sections pushed while built happens the same way in a replay)."""
        self.runtime.cycle.push_hook = self._push
        sampler = self.runtime.lookup("acquisition", None)
        for name, poller in getattr(sampler, "pollers", {}).items():
            poller.sink = self._poll_sink(name, poller.sink)
            # published at the release's deadline: r + D - 1 is the tick it is stamped with
            self._status_topics[sampler.status_topic(name)] = (
                name, sampler.task.deadline_ticks - 1)

    def _append(self, tick: int, record: list) -> None:
        self._writer.queue.put((tick, pack(record)))

    def _delivery(self, tick: int, delivered: list[Message], arrived: list[Message]) -> None:
        for m in arrived:
            self.inputs += 1
            self._append(tick, [BUS, tick, m.topic, m.seq, m.tick, m.data])
        if self._status_topics:
            for m in delivered:
                device = self._status_topics.get(m.topic)
                if device is not None:
                    self._append(tick, [STATUS, m.tick - device[1], device[0], m.data])
        self.digest.on_delivery(tick, delivered, arrived)

    def _poll_sink(self, device: str, sink):
        def recorded(values, tick: int, t_ns: int, error: str | None = None,
                     refused=None) -> None:
            self.inputs += 1
            self._append(tick, [POLL, tick, device, t_ns, dict(values), error,
                                dict(refused) if refused else None])
            sink(values, tick, t_ns, error, refused)
        return recorded

    def _push(self, tick: int, target: int, kind: int, args) -> int:
        """Every push: its number (the ring takes them in order), and what to record once
        the cycle says which tick took it from the ring. A push the ring refused is
        replaced by the next one, which gets its number."""
        if target == TARGET_CYCLE and kind == CYCLE_CMD_KICK:
            entry = (KICK, tick, None)
        elif not self.runtime.bus.internal:
            entry = (PUSH, tick, (int(target), int(kind), [float(a) for a in args]))
        else:
            entry = (APPLIED, tick, self._internal_pushes)
            self._internal_pushes += 1
        n = self.runtime.cycle.pushes
        if self._pending and self._pending[-1][0] == n:
            self._pending.pop()
        self._pending.append((n, *entry))
        return tick

    def _missed(self, task: str, tick: int) -> None:
        self._append(tick, [MISS, tick, task])

    def _resolve(self, first: int, records: np.ndarray) -> None:
        """The tick each pending push was applied at, from the records' pop counts."""
        popped = records["commands_popped"]
        pending = self._pending
        while pending:
            n, what, due, detail = pending[0]
            i = int(np.searchsorted(popped, n, side="right"))
            if i >= len(popped):
                return                                   # not taken from the ring yet
            pending.popleft()
            taken = first + i
            applied = taken if due == TICK_ASAP else max(taken, due)
            if what == KICK:
                self._append(applied, [KICK, applied])
            elif what == PUSH:
                self.inputs += 1
                self._append(applied, [PUSH, applied, *detail])
            elif applied != due:
                self._append(applied, [APPLIED, applied, detail])

    def _block(self, first: int, digests: bytes, records: np.ndarray) -> None:
        self._resolve(first, records)
        self._append(first, [DIGESTS, first, digests])
        if self.ring_ticks is not None:
            self._writer.queue.put((first - self.ring_ticks, None))

    # -- end -----------------------------------------------------------------------
    def close(self) -> None:
        """Write what is buffered, mark a clean end, fsync (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.runtime.cycle.push_hook = None
        self._append(self.digest.ticks, [END, self.digest.ticks,
                                         self.runtime.executor.released_until])
        self._writer.queue.put(None)
        self._writer.join(timeout=30)

    def summary(self) -> dict[str, Any]:
        out = {"dir": str(self.dir), "inputs": self.inputs, "ticks_hashed": self.digest.ticks,
               "output_hash": self.digest.chain.hexdigest()[:16]}
        if self.closed and not self._writer.is_alive():      # the journal is the writer's
            stats = self.journal.stats_dict()
            out.update(segments=stats["segments"], bytes=stats["bytes"],
                       dropped_by_ring=stats["acked"], io_errors=stats["io_errors"])
        if self._writer.failed:
            out["failed"] = self._writer.failed
        return out


def _close_at_exit(ref: weakref.ref) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.close()


def attach(runtime, cfg: RecordConfig) -> Recorder | None:
    if cfg.check_only:
        check_record_dir(Path(cfg.dir))
        return None
    recorder = Recorder(runtime, cfg)
    runtime.add_component("recorder", recorder)
    return recorder


SECTIONS = (Section("record", parse_record, attach, from_option=record_from_option,
                    for_check=record_for_check),)

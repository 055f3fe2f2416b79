"""Replay a flight recording (edge.rt.recorder) in virtual time, and say whether the
controller did bit for bit what it did live, or from which tick it did not.

The recorded board is built again (as `edge check` builds it: no service, nothing durable
written), the recorded inputs are fed at exactly their ticks, the commands whose tick the
live cycle's timing decided are applied at the recorded ticks, and the output digest of
every tick is compared with the recorded one (docs/flight-recorder.md). The recording is
only read, never repaired: a damaged one is refused with one line naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack

from edge import __version__
from edge.errors import EdgeError, StorageError
from edge.rt.native import TARGET_CYCLE, TICK_ASAP
from edge.rt.recorder import (
    APPLIED,
    BUS,
    CYCLE_CMD_KICK,
    DIGEST_BYTES,
    DIGESTS,
    END,
    FORMAT,
    HEADER_FILE,
    JOURNAL_DIR,
    KICK,
    MISS,
    POLL,
    PUSH,
    STATUS,
    OutputDigest,
)
from edge.rt.segments import HEADER, parse_segment_name, scan

NEVER = 2 ** 62      # the tick for a command the live run never applied within the recording
INPUT_KINDS = (BUS, POLL, PUSH, KICK, MISS, STATUS)


@dataclasses.dataclass
class Recording:
    """What a recording directory holds, checked: the header, the journal's records in
    order (decoded), and how its end looks."""

    dir: Path
    header: dict[str, Any]
    records: list[list[Any]]
    first_index: int          # the journal's cursor; > 0: the ring let go of those before
    torn_bytes: int           # a torn last record cut off (the recorder was killed)

    @property
    def clean_end(self) -> bool:
        return bool(self.records) and self.records[-1][0] == END

    @property
    def released_until(self) -> int | None:
        """With a clean end of a real-time run: the ticks before this had their task
        releases (those opened after the thread stopped had none, a replay would)."""
        if self.clean_end and len(self.records[-1]) > 2:
            return self.records[-1][2]
        return None

    @property
    def blocks(self) -> list[tuple[int, bytes]]:
        """(first tick, digests) of every output digest record, in tick order."""
        return sorted((r[1], r[2]) for r in self.records if r[0] == DIGESTS)

    @property
    def inputs(self) -> int:
        return sum(1 for r in self.records if r[0] in (BUS, POLL, PUSH))

    def span(self) -> tuple[int, int]:
        """The ticks [first, end) whose output digests the recording holds."""
        blocks = self.blocks
        if not blocks:
            return 0, 0
        return blocks[0][0], blocks[-1][0] + len(blocks[-1][1]) // DIGEST_BYTES


def _read_header(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StorageError(f"{path}: missing: not a recording (edge run --record DIR "
                           "writes it first)") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != zlib.crc32(raw[4:]):
        raise StorageError(f"{path}: checksum mismatch: the header is damaged or truncated")
    try:
        header = json.loads(raw[4:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StorageError(f"{path}: not a recording header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise StorageError(f"{path}: recording format {found!r}, this edge reads {FORMAT}")
    for key in ("board_text", "board_file", "period_ns", "hash_every_ticks"):
        if key not in header:
            raise StorageError(f"{path}: the header has no {key!r}")
    return header


def _read_cursor(path: Path) -> int:
    """The journal's cursor: the records before it were let go by the ring."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) < 12 or struct.unpack_from("<I", raw)[0] != zlib.crc32(raw[4:]):
        raise StorageError(f"{path}: checksum mismatch: the journal's cursor is damaged")
    return struct.unpack_from("<Q", raw, 4)[0]


def read_recording(directory: str | Path) -> Recording:
    """Read and check a recording without changing it. Raises StorageError, one line
    naming the file, for a missing or damaged header, a damaged or missing segment, or a
    record that does not decode; a torn last record (a killed recorder) is cut off and
    counted in `torn_bytes`."""
    root = Path(directory)
    if not root.is_dir():
        raise StorageError(f"{root}: no such recording directory")
    header = _read_header(root / HEADER_FILE)
    journal = root / JOURNAL_DIR
    if not journal.is_dir():
        raise StorageError(f"{journal}: missing: the recording has no journal")
    cursor = _read_cursor(journal / "cursor")
    segments = sorted((first, p) for p in journal.iterdir()
                      if (first := parse_segment_name(p.name)) is not None)
    records: list[list[Any]] = []
    torn = 0
    expected = cursor                 # the ring let go of the records before the cursor
    for n, (first, path) in enumerate(segments):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        found = scan(data, first)
        last = n == len(segments) - 1
        for start, end in found.bad_ranges:
            if last and end == len(data) and start == found.good_end:
                torn = end - start                      # the record being written
                continue
            raise StorageError(f"{path}: {end - start} damaged bytes at offset {start}: "
                               "the recording is corrupt (a replay needs every record)")
        for index, offset, length in found.records:
            if index < cursor:
                continue
            if index != expected:
                raise StorageError(f"{path}: records {expected} to {index - 1} are missing "
                                   "before it: the recording is incomplete")
            expected = index + 1
            try:
                record = msgpack.unpackb(data[offset + HEADER.size:offset + length],
                                         raw=False, strict_map_key=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError,
                    msgpack.StackError) as exc:
                raise StorageError(f"{path}: record {index} does not decode "
                                   f"({type(exc).__name__})") from None
            if not isinstance(record, list) or len(record) < 2 or \
                    not isinstance(record[0], str) or not isinstance(record[1], int):
                raise StorageError(f"{path}: record {index} is not a recorder record")
            records.append(record)
    return Recording(root, header, records, cursor, torn)


@dataclasses.dataclass
class ReplayResult:
    ticks: int                        # ticks compared, from `first_tick`
    first_tick: int
    recorded_hash: str                # sha256 over the compared ticks' digests
    replayed_hash: str
    divergence: int | None            # the first tick whose outputs differ
    notes: list[str]                  # inputs that did not land as recorded, failures

    @property
    def identical(self) -> bool:
        return self.divergence is None


class _RecordedPoller:
    """Stands in for a device poller: what the acquisition release reads of it
    (connected, error counts, stats) as the live poller showed it at that release."""

    def __init__(self, device: str) -> None:
        self._stats: dict[str, Any] = {"device": device, "connected": False, "errors": {}}

    def show(self, stats: dict[str, Any]) -> None:
        self._stats = dict(stats)

    @property
    def connected(self) -> bool:
        return bool(self._stats.get("connected"))

    @property
    def errors(self) -> dict[str, int]:
        return dict(self._stats.get("errors") or {})

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)


class _Replayer:
    def __init__(self, rec: Recording) -> None:
        from edge.config import parse_board
        from edge.rt.runtime import Runtime

        header = rec.header
        self.rec = rec
        self.notes: list[str] = []
        if header.get("edge_version") != __version__:
            self.notes.append(f"recorded by edge {header.get('edge_version')}, replayed "
                              f"by edge {__version__}")
        options = {k: v for k, v in (header.get("options") or {}).items() if k != "record"}
        board = parse_board(header["board_text"], header["board_file"], options or None)
        board.sections.pop("record", None)
        self.runtime = runtime = Runtime.for_check(board, virtual_time=True)
        if runtime.period_ns != header["period_ns"]:
            raise StorageError(f"{rec.dir / HEADER_FILE}: period {header['period_ns']} ns "
                               f"recorded, the board builds {runtime.period_ns} ns")
        self.bus, self.cycle, self.executor = runtime.bus, runtime.cycle, runtime.executor
        self.blocks: dict[int, bytes] = {}
        self.digest = OutputDigest(int(header["hash_every_ticks"]),
                                   lambda first, digests, _: self.blocks.__setitem__(first,
                                                                                   digests))
        self.bus.tap = self.digest.on_delivery
        self.executor.add_state_listener(self.digest.on_records, self.digest.every)
        self.applied = {r[2]: r[1] for r in rec.records if r[0] == APPLIED}
        self._internal = 0
        self._driving = False
        self.cycle.push_hook = self._push
        sampler = runtime.lookup("acquisition", None)
        self.sinks = ({name: sampler.sink_for(name) for name in sampler.pollers}
                      if sampler is not None else {})
        self.pollers: dict[str, _RecordedPoller] = {}
        if self.sinks:                 # no poller runs: each shows what the live one showed
            self.pollers = {name: _RecordedPoller(name) for name in sampler.pollers}
            sampler.pollers.update(self.pollers)

    def _push(self, tick: int, target: int, kind: int, args) -> int | None:
        if self._driving:
            return tick
        if target == TARGET_CYCLE and kind == CYCLE_CMD_KICK:
            return None                        # the recorded kicks land at their ticks
        if not self.bus.internal:
            return tick
        n = self._internal
        self._internal += 1
        at = self.applied.get(n)
        if at is not None:
            return at
        return NEVER if tick == TICK_ASAP else tick

    def _advance(self, tick: int) -> None:
        if tick > self.cycle.tick:
            self.executor.step(tick - self.cycle.tick)

    def _note(self, tick: int, what: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(f"tick {tick}: {what}")

    def _feed(self, record: list[Any]) -> None:
        kind, tick = record[0], record[1]
        if kind == BUS:
            _, _, topic, seq, published, data = record
            msg = self.bus.publish(topic, data)
            if (msg.seq, msg.tick) != (seq, published):
                self._note(tick, f"input on {topic} got seq {msg.seq} at tick {msg.tick}, "
                                 f"recorded seq {seq} at tick {published}")
        elif kind == POLL:
            _, _, device, t_ns, values, error, refused = record
            sink = self.sinks.get(device)
            if sink is None:
                self._note(tick, f"a poll of device {device!r}, which the board does not "
                                 "poll")
            else:
                sink(values, tick, t_ns, error, refused)
        elif kind in (PUSH, KICK):
            target, command, args = (record[2], record[3], record[4]) if kind == PUSH else \
                (TARGET_CYCLE, CYCLE_CMD_KICK, ())
            self._driving = True
            try:
                self.cycle.push_command(tick, target, command, args)
            finally:
                self._driving = False
        elif kind == STATUS:
            poller = self.pollers.get(record[2])
            if poller is None:
                self._note(tick, f"the status of device {record[2]!r}, which the board "
                                 "does not poll")
            else:
                poller.show(record[3])
        elif kind == MISS:
            task = next((t for t in self.executor.tasks if t.name == record[2]), None)
            if task is None or not task.released_at(tick):
                self._note(tick, f"a recorded deadline miss of task {record[2]!r}, which "
                                 "is not released then")
            else:
                self.executor.inject_deadline_miss(task.name)

    def run(self, end: int) -> None:
        inputs = sorted((r[1], i, r) for i, r in enumerate(self.rec.records)
                        if r[0] in INPUT_KINDS and r[1] < end)
        for tick, _, record in inputs:
            self._advance(tick)
            self._feed(record)
        self._advance(end)


def replay(rec: Recording, *, until_tick: int | None = None) -> ReplayResult:
    """Replay `rec` in virtual time up to the last tick it holds digests for (or
    `until_tick`) and compare tick by tick. Raises StorageError when the recording cannot
    be replayed from the start (the ring dropped its beginning); a replay that fails on
    the way is a divergence at the tick it reached, with the error in `notes`."""
    first, end = rec.span()
    if rec.first_index > 0 or first > 0:
        raise StorageError(f"{rec.dir}: the ring (ring_minutes "
                           f"{rec.header.get('ring_minutes')}) let go of the recording's "
                           f"start: it holds ticks {first} to {end - 1}, and a replay starts "
                           "from the board's initial state, so it needs every input from "
                           "tick 0")
    if rec.released_until is not None:
        end = min(end, rec.released_until)
    if until_tick is not None:
        end = min(end, until_tick)
    replayer = _Replayer(rec)
    every = replayer.digest.every
    try:
        replayer.run(-(-end // every) * every)        # to the end of the block holding end
    except EdgeError as exc:
        replayer.notes.append(f"the replay stopped at tick {replayer.cycle.tick}: "
                              f"{exc.one_line()}")
    except Exception as exc:                   # noqa: BLE001 - reported as a divergence
        replayer.notes.append(f"the replay stopped at tick {replayer.cycle.tick}: "
                              f"{type(exc).__name__}: {exc}")
    return _compare(rec, replayer.blocks, end, replayer.notes)


def _compare(rec: Recording, replayed: dict[int, bytes], end: int,
             notes: list[str]) -> ReplayResult:
    recorded_hash, replayed_hash = hashlib.sha256(), hashlib.sha256()
    divergence = None
    ticks = 0
    for first, digests in rec.blocks:
        if first >= end:
            break
        n = min(len(digests) // DIGEST_BYTES, end - first)
        mine = replayed.get(first, b"")[:n * DIGEST_BYTES]
        theirs = digests[:n * DIGEST_BYTES]
        recorded_hash.update(theirs)
        replayed_hash.update(mine)
        ticks += n
        if divergence is None and mine != theirs:
            divergence = first + next((i for i in range(n) if
                                       mine[i * DIGEST_BYTES:(i + 1) * DIGEST_BYTES]
                                       != theirs[i * DIGEST_BYTES:(i + 1) * DIGEST_BYTES]),
                                      len(mine) // DIGEST_BYTES)
    return ReplayResult(ticks, 0, recorded_hash.hexdigest(), replayed_hash.hexdigest(),
                        divergence, notes)

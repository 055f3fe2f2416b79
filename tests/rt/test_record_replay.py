"""The flight recorder and its replay: a recorded run replays bit for bit in virtual time
(real time with MQTT commands under CPU load, and virtual time with inputs of every kind);
a tampered input diverges at the tick the LET rule says its effect appears; a damaged
recording is refused with one line naming the file; the ring keeps the last N minutes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import yaml

from edge.config import load_board, parse_board
from edge.errors import ConfigError, StorageError
from edge.rt.recorder import APPLIED, BUS, JOURNAL_DIR, MISS, PUSH
from edge.rt.replay import read_recording, replay
from edge.rt.runtime import Runtime
from edge.rt.segments import encode, parse_segment_name, scan
from hil import replay as hil_replay

REPO = Path(__file__).resolve().parents[2]
PREFIX = "edge/v1/dev1"
POSE_A = [0.3, -1.3, 1.6, -1.87, -1.57, 0.0]
POSE_B = [-0.3, -1.5708, 1.5708, 0.0, 0.0, 0.0]


def arm_board(extra: str = "") -> str:
    """The shipped sim_arm board (motion, safety, logic, acquisition) without its demo
    program, so the commands sent are the only motion requests."""
    board = yaml.safe_load((REPO / "edge/boards/sim_arm.yaml").read_text())
    board.pop("program")
    return yaml.safe_dump(board, sort_keys=False) + extra


def hil_run(directory: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser(prog="edge hil replay")
    hil_replay.add_arguments(parser)
    return hil_replay.run(parser.parse_args([str(directory), *extra]))


def command(name: str, i: int, **args) -> dict:
    return {"id": i, "args": args}


def record_virtual(tmp_path: Path, name: str = "rec") -> tuple[Path, Runtime]:
    """A recorded virtual-time run fed from outside between steps: MQTT-shaped commands
    on the bus, a stop pushed from outside, a deadline miss injected by a rig, a
    protective stop asked on the bus (applied at the next boundary, its tick decided by
    the cycle), then a reset and a move."""
    rec = tmp_path / name
    board_file = tmp_path / f"{name}.yaml"
    board_file.write_text(arm_board(f"record: {{dir: '{rec}', hash_every_ticks: 7}}\n"))
    runtime = Runtime(load_board(str(board_file)), virtual_time=True)
    ex, bus = runtime.executor, runtime.bus

    def at(tick: int) -> None:
        ex.step(tick - runtime.cycle.tick)

    at(100)
    bus.publish("cmd/enable", command("enable", 1))
    at(600)
    bus.publish("cmd/move_joint", command("move_joint", 2, positions=POSE_A))
    at(1500)
    ex.inject_deadline_miss("logic")
    at(1800)
    bus.publish("cmd/move_joint", command("move_joint", 3, positions=POSE_B, speed_scale=0.5))
    at(2300)
    bus.publish("cmd/stop", command("stop", 4, category=2))
    at(2700)
    runtime.request_stop(1)
    runtime.run_virtual(0.5)
    return rec, runtime


def records(rec: Path) -> list[list]:
    return read_recording(rec).records


# -- virtual time ----------------------------------------------------------------------

def test_a_virtual_run_with_every_kind_of_input_replays_identical(tmp_path, capsys) -> None:
    rec, runtime = record_virtual(tmp_path)
    kinds = [r[0] for r in records(rec)]
    # four bus commands, one push from outside, one injected miss: what the run was fed
    assert kinds.count(BUS) == 4 and kinds.count(PUSH) == 1 and kinds.count(MISS) == 1
    # the protective stop asked on the bus has no tick of its own: the tick the cycle
    # applied it at is recorded
    assert kinds.count(APPLIED) >= 1
    result = replay(read_recording(rec))
    assert result.identical, result.notes
    # digests are written every 7 ticks: the ticks of the whole blocks of 3,200
    assert result.ticks == 3200 // 7 * 7 and result.recorded_hash == result.replayed_hash
    assert result.notes == []
    assert hil_run(rec) == 0
    out = capsys.readouterr().out
    assert f"ticks replayed: {3200 // 7 * 7}" in out and out.rstrip().endswith("identical")
    assert runtime.summary()["record"]["inputs"] == 5      # 4 on the bus, 1 push


def _rewrite(rec: Path, change) -> None:
    """Apply `change(record) -> record | None` to the journal's records, re-encoded with
    valid checksums: a recording edited on purpose, not a damaged one."""
    for seg in (rec / JOURNAL_DIR).glob("*.seg"):
        data = seg.read_bytes()
        out = bytearray()
        for index, offset, length in scan(data, parse_segment_name(seg.name)).records:
            record = msgpack.unpackb(data[offset + 16:offset + length], raw=False)
            record = change(record) or record
            out += encode(index, msgpack.packb(record, use_bin_type=True))
        seg.write_bytes(bytes(out))


def test_a_tampered_command_diverges_where_the_controller_first_acts_on_it(tmp_path,
                                                                           capsys) -> None:
    rec, runtime = record_virtual(tmp_path)
    tampered = tmp_path / "tampered"
    shutil.copytree(rec, tampered)

    def change(r: list) -> list | None:
        if r[0] == BUS and r[2] == "cmd/move_joint" and r[5]["id"] == 2:
            r[5]["args"]["positions"] = [0.2, -1.4, 1.5, -1.7, -1.5, 0.1]
            return r
        return None

    _rewrite(tampered, change)
    # The command arrived at tick 600 (published before that tick opened). The motion
    # controller takes requests at its releases r (period P from offset O) and its
    # command reaches the trajectory at r + D: the first output that differs.
    task = next(t for t in runtime.executor.tasks if t.name == "motion_controller")
    r = next(k for k in range(600, 600 + task.period_ticks)
             if k >= task.offset_ticks and (k - task.offset_ticks) % task.period_ticks == 0)
    expected = r + task.deadline_ticks
    result = replay(read_recording(tampered))
    assert result.divergence == expected
    assert hil_run(tampered) == 1
    out = capsys.readouterr().out
    assert f"diverged: first divergent tick {expected}" in out
    # the untouched copy still replays identical
    assert replay(read_recording(rec)).identical


def test_a_damaged_recording_is_refused_with_one_line_naming_the_file(tmp_path,
                                                                      capsys) -> None:
    rec, _ = record_virtual(tmp_path)
    seg = sorted((rec / JOURNAL_DIR).glob("*.seg"))[0]

    flipped = tmp_path / "flipped"
    shutil.copytree(rec, flipped)
    target = flipped / JOURNAL_DIR / seg.name
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0x40
    target.write_bytes(bytes(data))
    assert hil_run(flipped) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "damaged bytes" in err[0], err

    no_header = tmp_path / "no_header"
    shutil.copytree(rec, no_header)
    header = no_header / "header"
    header.write_bytes(header.read_bytes()[:-20])
    started = time.monotonic()
    assert hil_run(no_header) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(header) in err[0] and "checksum" in err[0], err
    assert time.monotonic() - started < 10


def test_a_recording_cut_mid_record_replays_what_it_holds(tmp_path, capsys) -> None:
    """A recorder killed while writing leaves a torn last record: cut off, the rest
    replays identical (no clean end said)."""
    rec, _ = record_virtual(tmp_path)
    last = sorted((rec / JOURNAL_DIR).glob("*.seg"))[-1]
    data = last.read_bytes()
    last.write_bytes(data[:-5])
    recording = read_recording(rec)
    assert recording.torn_bytes > 0 and not recording.clean_end
    result = replay(recording)
    assert result.identical and 0 < result.ticks <= 3200
    assert hil_run(rec) == 0
    assert "no clean end" in capsys.readouterr().out


def test_the_ring_keeps_about_the_last_minutes_and_a_cut_start_is_refused(tmp_path,
                                                                          capsys) -> None:
    rec = tmp_path / "ring"
    board_file = tmp_path / "ring.yaml"
    board_file.write_text(arm_board(f"record: {{dir: '{rec}', ring_minutes: 0.05}}\n"))
    runtime = Runtime(load_board(str(board_file)), virtual_time=True)
    runtime.run_virtual(20.0)                           # 20,000 ticks; the ring is 3,000
    recording = read_recording(rec)
    first, end = recording.span()
    assert end == 20_000
    window = 3_000
    # whole segments go, each about an eighth of the window: what is kept starts at most
    # a segment and a bit before the window, and the window is all there
    assert end - window - window // 2 <= first <= end - window, (first, end)
    assert recording.first_index > 0
    with pytest.raises(StorageError, match="ring"):
        replay(recording)
    assert hil_run(rec) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "let go of the recording's start" in err[0], err
    # a segment gone from the middle of what the ring kept: refused, naming where
    # (the next to last: the oldest files may be wholly before the cursor, waiting for
    # the ring's next rotation to delete them)
    segments = sorted((rec / JOURNAL_DIR).glob("*.seg"))
    assert len(segments) >= 4
    segments[-2].unlink()
    assert hil_run(rec) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0] and str(segments[-1]) in err[0], err


# -- board validation -------------------------------------------------------------------

@pytest.mark.parametrize("section, line, field, message", [
    ("record: {dir: ''}\n", None, "record.dir", "empty"),
    ("record: {dir: x, ring_minutes: -1}\n", None, "record.ring_minutes", ">= 0.01"),
    ("record: {dir: x, fsync: sometimes}\n", None, "record.fsync", "must be one of"),
    ("record: {dir: x, hash_every: 3}\n", None, "record.hash_every", "unknown field"),
])
def test_a_bad_record_section_names_file_line_and_field(section, line, field,
                                                        message) -> None:
    text = arm_board()
    with pytest.raises(ConfigError) as info:
        parse_board(text + section, "b.yaml")
    err = info.value
    assert err.file == "b.yaml" and err.field == field and message in str(err)
    assert err.line == len(text.splitlines()) + 1


def test_a_directory_holding_a_recording_is_refused(tmp_path) -> None:
    rec, _ = record_virtual(tmp_path)
    board_file = tmp_path / "again.yaml"
    board_file.write_text(arm_board(f"record: {{dir: '{rec}'}}\n"))
    with pytest.raises(ConfigError, match="already holds a recording"):
        Runtime.for_check(load_board(str(board_file)))


# -- real time --------------------------------------------------------------------------

@pytest.mark.slow
async def test_a_real_time_run_with_mqtt_commands_under_cpu_load_replays_identical(
        mosquitto, tmp_path, capsys) -> None:
    """`edge run --record` for 8 s on the real-time thread, commands arriving over a real
    mosquitto from an independent client, a CPU burner beside it: the replay in virtual
    time gives the same output digest at every tick."""
    from hil.mqtt_peer import PahoPeer

    board = tmp_path / "b.yaml"
    board.write_text(arm_board(f"mqtt:\n  url: {mosquitto.url}\n  device_id: dev1\n"
                               f"  state_dir: {tmp_path / 'state'}\n"
                               "  commands: [stop, enable, move_joint]\n"))
    rec = tmp_path / "rec"
    peer = PahoPeer(mosquitto.port, [f"{PREFIX}/state", f"{PREFIX}/reply/#"], "operator",
                    clean_session=True)
    burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 15\n"
                               "while time.time() < end: pass"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--board", str(board), "--duration", "8",
         "--record", str(rec), "--stats-json", str(tmp_path / "stats.json")], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    sent = [("enable", {}), ("move_joint", {"positions": POSE_A}),
            ("move_joint", {"positions": POSE_B, "speed_scale": 0.5}),
            ("stop", {"category": 2})]
    try:
        def online() -> bool:
            states = peer.on(f"{PREFIX}/state")
            return bool(states) and states[-1]["online"]

        await peer.wait_for(online, 30)
        for i, (name, args) in enumerate(sent):
            peer.publish(f"{PREFIX}/cmd/{name}", json.dumps({"id": i, "args": args}).encode())
            await asyncio.sleep(0.8)
        _, stderr = await asyncio.wait_for(asyncio.to_thread(proc.communicate), 30)
        # the stop latched at the end: the run ends faulted, as a run with a stop does
        assert proc.returncode in (0, 3), stderr
        accepted = sum(1 for name in {n for n, _ in sent}
                       for reply in peer.on(f"{PREFIX}/reply/{name}")
                       if reply.get("status") == "accepted")
    finally:
        proc.kill()
        burner.kill()
        peer.close()
    recording = read_recording(rec)
    assert recording.clean_end
    assert sum(1 for r in recording.records if r[0] == BUS) == accepted == len(sent)
    result = replay(recording)
    assert result.identical, (result.divergence, result.notes)
    assert result.ticks == 8000 and result.notes == []
    summary = json.loads((tmp_path / "stats.json").read_text())
    assert summary["record"]["output_hash"] == result.recorded_hash[:16]
    assert hil_run(rec) == 0
    assert capsys.readouterr().out.rstrip().endswith("identical")


def test_edge_run_record_in_virtual_time_and_a_used_directory_refused(tmp_path,
                                                                      capsys) -> None:
    from edge.cli import main

    rec = tmp_path / "cli"
    assert main(["run", "--virtual-time", "--duration", "1", "--record", str(rec)]) == 0
    assert "record: dir" in capsys.readouterr().out           # the summary's line
    result = replay(read_recording(rec))
    assert result.identical and result.ticks == 1000
    assert main(["run", "--virtual-time", "--duration", "1", "--record", str(rec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a recording" in err[0], err


@pytest.mark.slow
async def test_a_recorder_killed_with_sigkill_loses_at_most_the_fsync_interval(tmp_path) -> None:
    """kill -9 of a real-time `edge run --record`: what it wrote replays identical, and it
    holds the ticks the run had digested up to about the fsync interval (0.2 s) before."""
    rec, stats = tmp_path / "rec", tmp_path / "stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--record", str(rec), "--stats-json",
         str(stats), "--stats-every", "0.25"], cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 30
        digested = 0
        while digested < 3000 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if stats.exists():
                digested = json.loads(stats.read_text())["record"]["ticks_hashed"]
        assert digested >= 3000, "the run did not get going"
        proc.kill()
        proc.wait(10)
    finally:
        proc.kill()
    recording = read_recording(rec)
    assert not recording.clean_end
    _, end = recording.span()
    # the summary was written before the kill: at most 0.2 s (200 ticks) plus what was
    # queued for the writer (a few ticks) are missing from what it said was digested
    assert end >= digested - 250, (end, digested)
    result = replay(recording)
    assert result.identical, (result.divergence, result.notes)
    assert result.ticks == end

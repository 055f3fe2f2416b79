"""Writes the seed corpora kept in bench/fuzz/corpus/ (a few valid and near-valid
inputs per target). Run `python -m bench.fuzz.seeds` after changing an input format;
the files are committed so that a fuzz run starts from the same place everywhere.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import msgpack

from bench.fuzz import CORPUS_DIR
from bench.fuzz.targets_files import SEGMENT_SEP, USAGE_SEP

BOARD_MIN = b"""name: tiny
axes:
  - {name: a, max_velocity: 1.0, max_acceleration: 2.0}
"""

BOARD_MQTT = BOARD_MIN + b"""cycle: {period_us: 500, busy_tail_us: 50, watchdog_ms: 20}
bus: {order: ["safety/#"], queue: 64, state: {topic: state/joints, every_ticks: 5}}
mqtt:
  url: mqtt://127.0.0.1:1883
  device_id: arm-07
  forward: ["state/#", "events/#"]
  journal: {max_mb: 1, fsync: always, when_full: reject_new}
  commands:
    stop:
    set_lamp:
      level: {type: int, min: 0, max: 100}
"""

BOARD_ACQ = BOARD_MIN + b"""acquisition:
  devices:
    - {name: plc, kind: modbus_tcp, host: 127.0.0.1, port: 502, unit: 1, timeout_ms: 200}
    - {name: hygro, kind: serial, port: /dev/null, terminator: "\\r\\n", format: keyvalue}
  channels:
    - {name: i, device: plc, table: holding, address: 10, type: float32, word_order: little}
    - {name: rh, device: hygro, field: rh, valid: [0, 100], filter: {kind: median, window: 5}}
  thresholds:
    - {name: wet, channel: rh, above: 80.0, hysteresis: 2.0}
logic:
  signals: {q: {state: q.0, type: REAL}}
  program: |
    WHEN q > 1.0 THEN EVENT "far"; STOP 2; END_WHEN
"""

EXPRESSIONS = [b"speed < 0.5 AND NOT estop", b"ABS(speed - force) * 2.0 + force / 4.0 > 3.0",
               b"IF mode = 2 THEN speed * 10.0 ELSE force - 1.0 END_IF > 3.0",
               b"t > T#500ms OR (door AND mode <> 3)", b"MAX(speed, force) >= MIN(1.0, 2.0",
               b"mode / 0 = 1", b"SQRT(force) + LN(speed) > EXP(88.0)"]

PROGRAMS = [b"""VAR_OUTPUT moving : BOOL; END_VAR
moving := ABS(speed) > 0.01;
WHEN ABS(speed) > 1.9 FOR 100ms THEN EVENT "near_limit"; END_WHEN
WHEN force > 40.0 OR estop THEN EVENT "stop"; STOP 2; END_WHEN
WHEN MATH_FAULT THEN EVENT "math"; END_WHEN
""", b"""VAR n : INT; on : TON; END_VAR
n := n + 1;
on(IN := door, PT := T#50ms);
WHEN on.Q THEN EVENT "door_open"; END_WHEN
WHEN n > 3 THEN EVENT "counted"; END_WHEN
""", b"""VAR x : REAL; END_VAR
x := speed / force;
WHEN x > 1.0e300 THEN STOP 1; END_WHEN
"""]


def _commands() -> list[bytes]:
    pos = [0.0, -1.5, 1.5, 0.0, 0.0, 0.0]
    bodies = [(0, {"id": 1, "args": {"category": 1}}), (0, {"args": {}}), (1, {"id": "r-1"}),
              (4, {"id": 7, "args": {"positions": pos, "speed_scale": 0.5}}),
              (5, {"id": 8, "args": {"axis": 2, "velocity": -0.5}}),
              (5, {"id": 9, "args": {"axis": 9, "velocity": 99}})]
    out = []
    for cmd, body in bodies:
        out.append(bytes([cmd]) + json.dumps(body).encode())
        out.append(bytes([cmd]) + msgpack.packb(body))
    out.append(b"\x03" + b'{"id": 1, "args": {"x": [[[[[[1]]]]]]}}')
    return out


def _modbus(rtu: bool) -> list[bytes]:
    from pymodbus.framer import FramerRTU, FramerSocket
    from pymodbus.pdu import DecodePDU
    from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
    from pymodbus.pdu.register_message import (
        ReadHoldingRegistersResponse,
        ReadInputRegistersResponse,
    )

    framer = (FramerRTU if rtu else FramerSocket)(DecodePDU(is_server=False))
    answers = [(0, ReadHoldingRegistersResponse(registers=[1, 65535, 0x4049, 0x0FDB, 7, 8, 9])),
               (1, ReadHoldingRegistersResponse(registers=[0, 0x4049, 2, 3])),
               (2, ReadInputRegistersResponse(registers=[5, 0, 0, 0x7FC0, 0])),
               (3, ReadCoilsResponse(bits=[True] * 3 + [False] * 7)),
               (4, ReadDiscreteInputsResponse(bits=[True])),
               (0, ReadHoldingRegistersResponse(registers=[1, 2]))]      # too few
    out = []
    for device, pdu in answers:
        pdu.dev_id, pdu.transaction_id = 1, 1
        frame = framer.buildFrame(pdu)
        out += [bytes([device, 0]) + frame, bytes([device, 5]) + frame]
    err = bytes([0x83, 0x02])                                   # exception answer
    out.append(b"\x00\x00" + (framer.encode(err, 1, 1)))
    return out


def _serial_ascii() -> list[bytes]:
    from edge.acquisition.sources.serial import nmea_checksum

    def nmea(body: bytes) -> bytes:
        return body + b"*" + nmea_checksum(body).encode()
    return [b"\x00\x00" + b"21.5,1013.2,0.7\n22.0,1013.0,0.8\n",
            b"\x01\x03" + nmea(b"21.5,1013.2,0.7") + b"\r\n",
            b"\x02\x00t=21.5;p=1013;flow=0.1\n",
            b"\x03\x00" + nmea(b"t=1e3,p=-0,flow=nan") + b"\n", b"\x00\x00,,\n\xff\n"]


def _serial_binary() -> list[bytes]:
    from edge.acquisition.sources.serial import SerialLink, encode_frame

    payload = struct.pack(">Hh", 513, -2) + struct.pack(">f", 3.5) + struct.pack("<iI", -7, 9)
    out = []
    for i, (cs, sync, most) in enumerate((("sum8", b"\xaa\x55", 255), ("xor8", b"\x7e", 32),
                                          ("crc16", b"\xaa\x55", 64))):
        link = SerialLink("/dev/null", protocol="binary", checksum=cs, sync=sync,
                          max_payload=most)
        frame = encode_frame(link, payload[:min(most, 16)])
        out += [bytes([i, 0]) + frame * 2, bytes([i, 3]) + frame[:-1] + b"\x00" + frame]
    return out


def _journal() -> list[bytes]:
    from edge.rt.journal import Journal

    tmp = Path(tempfile.mkdtemp())
    try:
        j = Journal(tmp / "j", segment_bytes=4096, fsync="never")
        for i in range(6):
            j.append(f"record {i}".encode() * 3)
        j.flush()
        j.ack(1)
        j.close()
        cursor = (tmp / "j" / "cursor").read_bytes()
        seg = (tmp / "j" / f"{0:020d}.seg").read_bytes()
    finally:
        shutil.rmtree(tmp)
    flipped = bytearray(seg)
    flipped[20] ^= 1
    half = len(seg) // 2
    return [cursor + SEGMENT_SEP + b"\x00" + seg,
            cursor + SEGMENT_SEP + b"\x00" + seg[:half] + SEGMENT_SEP + b"\x03" + seg[half:],
            b"" + SEGMENT_SEP + b"\x00" + bytes(flipped),
            cursor[:-1] + SEGMENT_SEP + b"\x00" + seg + SEGMENT_SEP + b"\x06"]


def _usage() -> list[bytes]:
    from edge.acquisition.usage import UsageCounters, _encode

    good = _encode(UsageCounters(3600.5, 12, 40))
    older = _encode(UsageCounters(3000.0, 11, 39))
    return [good, good + USAGE_SEP + older, good[:-10] + USAGE_SEP + older,
            good.replace(b"12", b"13") + USAGE_SEP + b"{}", b'{"body": [], "sha256": 1}']


def corpora() -> dict[str, list[bytes]]:
    sim_arm = (Path(__file__).resolve().parents[2] / "edge/boards/sim_arm.yaml").read_bytes()
    return {
        "json_loads": [b'{"a": [1, 2.5, "x", null, true]}', b"[]", b'"\\u00e9"'],
        "commands": _commands(),
        "modbus_tcp": _modbus(rtu=False),
        "modbus_rtu": _modbus(rtu=True),
        "serial_ascii": _serial_ascii(),
        "serial_binary": _serial_binary(),
        "logic_expression": EXPRESSIONS,
        "logic_program": PROGRAMS,
        "board": [BOARD_MIN, BOARD_MQTT, BOARD_ACQ, sim_arm,
                  b"a: &x [1, 2]\nb: [*x, *x]\nname: n\naxes: *x\n",
                  BOARD_MIN.replace(b"1.0", b"1e12"), b"name: [\n"],
        "journal": _journal(),
        "usage": _usage(),
        "mqtt_url": [b"mqtt://127.0.0.1:1883", b"mqtts://broker.ward3.local",
                     b"mqtt://[::1]:1884", b"mqtt://host:0", b"mqtt://u:p@h", b"tcp://h:1"],
    }


def main() -> None:
    for name, items in corpora().items():
        folder = CORPUS_DIR / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i, data in enumerate(items):
            (folder / f"seed-{i:02d}").write_bytes(data)


if __name__ == "__main__":
    main()

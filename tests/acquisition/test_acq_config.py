"""The acquisition section: a full board parses; mistakes name file, line and field."""

import pytest

from edge.config import load_board, parse_board
from edge.errors import ConfigError

HEAD = """name: t
cycle: {period_us: 1000}
axes:
  - {name: a, max_velocity: 1.0, max_acceleration: 1.0}
"""

FULL = HEAD + """acquisition:
  task: {period_ms: 10, deadline_ms: 5, priority: 3}
  devices:
    - {name: plc, kind: modbus_tcp, host: 10.0.0.2, port: 1502, unit: 3, timeout_ms: 200,
       period_ms: 20, max_gap: 2, backoff: {initial_ms: 20, max_ms: 2000}}
    - {name: psu, kind: modbus_rtu, port: /dev/ttyUSB0, baudrate: 38400, unit: 2}
    - {name: hygro, kind: serial, port: /dev/ttyS1, request: "M?\\r\\n", terminator: "\\r\\n",
       format: csv, fields: [t, h], nmea_checksum: true}
    - {name: tracker, kind: serial, port: /dev/ttyS2, protocol: binary, sync: "AA 55",
       checksum: crc16}
    - {name: sim, kind: simulated, period_ms: 5, dropout_s: [1.0, 2.0]}
  channels:
    - {name: current, device: plc, table: holding, address: 10, type: float32,
       word_order: little, unit: A, valid: [0, 30], filter: {kind: lowpass, cutoff_hz: 5}}
    - {name: volts, device: psu, table: input, address: 0, type: uint16, scale: 0.01}
    - {name: temp, device: hygro, field: t, unit: degC, sensitive: true}
    - {name: x, device: tracker, byte_offset: 4, type: int32, byte_order: little}
    - {name: s, device: sim, signal: {shape: sine, mean: 1, amplitude: 2, period_s: 3}}
  thresholds:
    - {name: hot, channel: temp, above: 40, hysteresis: 1}
  usage: {file: /tmp/edge-test-usage.json, running_channel: current, running_above: 0.5}
  crypto: {algorithm: aes-gcm, key_file: keys/acq.key, key_id: k1}
"""


def test_full_section_parses():
    board = parse_board(FULL, "/etc/edge/t.yaml")
    acq = board.sections["acquisition"]
    plc, psu, hygro, tracker, sim = acq.devices
    assert (plc.link.host, plc.link.port, plc.link.unit, plc.link.timeout_s) == \
        ("10.0.0.2", 1502, 3, 0.2)
    assert plc.backoff.initial_s == pytest.approx(0.02) and psu.link.transport == "rtu"
    assert hygro.link.request == b"M?\r\n" and hygro.link.nmea and hygro.link.fields == ["t", "h"]
    assert tracker.link.sync == b"\xaa\x55" and tracker.link.checksum == "crc16"
    assert sim.dropout_s == (1.0, 2.0)
    cur = acq.channels[0]
    assert cur.source == {"table": "holding", "address": 10, "type": "float32",
                          "byte_order": "big", "word_order": "little"}
    assert cur.filter.cutoff_hz == 5 and cur.period_ms == 20.0      # default: device period
    assert acq.channels[3].source == {"offset": 4, "type": "int32", "byte_order": "little"}
    assert acq.crypto.key_file == "/etc/edge/keys/acq.key"            # beside the board
    assert acq.task.deadline_ms == 5 and acq.thresholds[0].above == 40


def test_shipped_board_has_an_acquisition_section():
    acq = load_board("sim_arm").sections["acquisition"]
    assert {d.kind for d in acq.devices} == {"simulated"}
    assert len(acq.channels) >= 3 and len(acq.thresholds) >= 3


def error_for(section: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        parse_board(HEAD + section, "b.yaml")
    return exc.value


@pytest.mark.parametrize("section,line,field,words", [
    ("acquisition:\n  devices:\n    - {name: d, kind: modbus_tcp}\n  channels: []\n",
     7, "acquisition.devices[0].host", "missing"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated}\n  channels:\n"
     "    - {name: c, device: nope}\n", 9, "acquisition.channels[0].device", "no device"),
    ("acquisition:\n  devices:\n    - {name: d, kind: modbus_tcp, host: h}\n  channels:\n"
     "    - name: c\n      device: d\n      table: holding\n      address: 1\n"
     "      type: int64\n", 13, "acquisition.channels[0].type", "must be one of"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated, period_ms: 10}\n  channels:\n"
     "    - name: c\n      device: d\n      filter: {kind: lowpass, cutoff_hz: 80}\n",
     11, "acquisition.channels[0].filter.cutoff_hz", "Nyquist"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated}\n  channels:\n"
     "    - {name: c, device: d, sensitive: true}\n", 9, "acquisition.channels[0].sensitive",
     "crypto"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated}\n  channels:\n"
     "    - {name: c, device: d}\n  thresholds:\n    - {name: r, channel: c}\n",
     11, "acquisition.thresholds[0]", "above"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated}\n"
     "    - {name: d, kind: simulated}\n  channels: []\n",
     8, "acquisition.devices[1].name", "unique"),
    ("acquisition:\n  devices:\n    - {name: d, kind: simulated, adress: 3}\n  channels: []\n",
     7, "acquisition.devices[0].adress", "unknown field"),
    ("acquisition:\n  devices:\n    - {name: d, kind: serial, port: p, protocol: binary,"
     " sync: ZZ}\n  channels: []\n", 7, "acquisition.devices[0].sync", "hex"),
    ("acquisition:\n  devices:\n    - {name: 'a/b', kind: simulated}\n  channels: []\n",
     7, "acquisition.devices[0].name", "letters"),
    ("acquisition:\n  devices:\n    - {name: a, kind: modbus_rtu, port: /dev/ttyS0}\n"
     "    - {name: b, kind: modbus_rtu, port: /dev/ttyS0}\n  channels: []\n",
     8, "acquisition.devices[1].unit", "already device 'a'"),
    ("acquisition:\n  devices:\n    - {name: a, kind: modbus_rtu, port: /dev/ttyS0}\n"
     "    - {name: b, kind: serial, port: /dev/ttyS0, fields: [x]}\n  channels: []\n",
     8, "acquisition.devices[1].port", "only Modbus RTU units share"),
])
def test_errors_name_file_line_and_field(section, line, field, words):
    err = error_for(section)
    assert (err.file, err.line, err.field) == ("b.yaml", line, field), err.one_line()
    assert words in err.message

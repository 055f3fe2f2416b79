"""Coverage-guided fuzzing of every parser that takes outside input (`edge bench fuzz`).

TARGETS is the one table: name -> where its `make_*` lives (imported when used), what
the target lets through as the entry point's documented error, and the longest input
worth generating. `corpus/<name>/` beside this file holds each target's seeds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Target:
    make: str            # "module:function" returning test_one_input(data)
    allowed: str         # the documented error, for the report
    max_len: int = 4096  # bytes

    def build(self) -> Callable[[bytes], None]:
        module, func = self.make.split(":")
        return getattr(importlib.import_module(module), func)()


_W, _F = "bench.fuzz.targets_wire", "bench.fuzz.targets_files"
BASELINE = "json_loads"
TARGETS: dict[str, Target] = {
    BASELINE: Target(f"{_W}:make_json_baseline", "ValueError, RecursionError"),
    "commands": Target(f"{_W}:make_commands", "CommandRejected", max_len=20_000),
    "modbus_tcp": Target(f"{_W}:make_modbus_tcp", "DeviceCommError, ModbusException", 512),
    "modbus_rtu": Target(f"{_W}:make_modbus_rtu", "DeviceCommError, ModbusException", 512),
    "serial_ascii": Target(f"{_W}:make_serial_ascii", "none (Corrupt frames, refused)"),
    "serial_binary": Target(f"{_W}:make_serial_binary", "none (Corrupt frames, refused)"),
    "logic_expression": Target(f"{_F}:make_logic_expression", "LogicError"),
    "logic_program": Target(f"{_F}:make_logic_program", "LogicError", max_len=8192),
    "board": Target(f"{_F}:make_board", "ConfigError", max_len=16_384),
    "journal": Target(f"{_F}:make_journal", "StorageError", max_len=8192),
    "usage": Target(f"{_F}:make_usage", "StorageError"),
    "mqtt_url": Target(f"{_W}:make_mqtt_url", "ConfigError", max_len=512),
}


def seeds(name: str) -> list[bytes]:
    """The seed inputs kept in the repository for target `name`, in name order."""
    folder = CORPUS_DIR / name
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] \
        if folder.is_dir() else []

"""The C↔Python contract: every number both sides share, read from the library at import.

Fault codes and block kinds come from the X-macro tables of native/codes.h (faults.def,
block_kinds.def); command ids, flags and the other enums from the `#define`s of the
block headers, gathered by prefix. Nothing here types a number: adding a fault or a
command to C adds it here. Importing this module without the native extension raises
NativeError (the `edge` command reports it in one line).
"""

from __future__ import annotations

import enum

from edge.rt.native import require_native

_ffi, _lib = require_native()


def _table(read) -> list[tuple[int, str, str]]:
    """(code, name, message) rows of one edge_code_info table."""
    rows = _ffi.new("edge_code_info **")
    count = read(rows)
    return [(int(r.code), _ffi.string(r.name).decode(), _ffi.string(r.message).decode())
            for r in rows[0][0:count]]


def _prefixed(prefix: str) -> dict[str, int]:
    """The library's constants named PREFIX_X, as {X: value} in value order."""
    found = {name[len(prefix):]: getattr(_lib, name) for name in dir(_lib)
             if name.startswith(prefix) and isinstance(getattr(_lib, name), int)}
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


_FAULTS = _table(_lib.edge_fault_table)
_KINDS = _table(_lib.edge_block_kind_table)

FaultCode = enum.IntEnum("FaultCode", [(name.upper(), code) for code, name, _ in _FAULTS])
FaultCode.__doc__ = "Every fault code a state record, a fault history or a stop carries."
FAULT_MESSAGES: dict[int, str] = {code: message for code, _, message in _FAULTS}

BlockKind = enum.IntEnum("BlockKind", [(name.upper(), code) for code, name, _ in _KINDS])
BlockKind.__doc__ = "The kind of a native block (edge_block.kind); 0 is an integrator's."

CycleCommand = enum.IntEnum("CycleCommand", _prefixed("CYCLE_CMD_"))
TrajCommand = enum.IntEnum("TrajCommand", _prefixed("TRAJ_CMD_"))
TrajError = enum.IntEnum("TrajError", _prefixed("TRAJ_ERR_"))
PathCommand = enum.IntEnum("PathCommand", _prefixed("PATH_CMD_"))
SafetyCommand = enum.IntEnum("SafetyCommand", _prefixed("SAFETY_CMD_"))
SetpointCommand = enum.IntEnum("SetpointCommand", _prefixed("SETPOINT_CMD_"))
DriveSimCommand = enum.IntEnum("DriveSimCommand", _prefixed("DRIVE_SIM_CMD_"))
WallKind = enum.IntEnum("WallKind", _prefixed("SAFETY_WALL_"))
StopProfile = enum.IntEnum("StopProfile", _prefixed("SAFETY_STOP_"))
# edge_image.inputs bits: the cycle's own (EDGE_IN_*) and the safety block's (SAFETY_IN_*)
Input = enum.IntFlag("Input", {**_prefixed("EDGE_IN_"), **_prefixed("SAFETY_IN_")})

# Every enum above with the C prefix its members come from (tests check them against C).
FROM_PREFIX: dict[str, type[enum.IntEnum]] = {
    "CYCLE_CMD_": CycleCommand, "TRAJ_CMD_": TrajCommand, "TRAJ_ERR_": TrajError,
    "PATH_CMD_": PathCommand, "SAFETY_CMD_": SafetyCommand,
    "SETPOINT_CMD_": SetpointCommand, "DRIVE_SIM_CMD_": DriveSimCommand,
    "SAFETY_WALL_": WallKind, "SAFETY_STOP_": StopProfile,
}

ERR_KIND: int = _lib.EDGE_ERR_KIND


def fault_name(code: int) -> str:
    """The stable name of a fault code ("position_limit"; "unknown" if C defines none)."""
    return FaultCode(code).name.lower() if code in FAULT_MESSAGES else "unknown"


def fault_message(code: int) -> str:
    """The human message for a fault code ("unknown fault N" if C defines none)."""
    return FAULT_MESSAGES.get(code, f"unknown fault {code}")


def fault_label(code: int) -> str:
    """A fault code as people read it in one line: "320 (force_limit)"."""
    return f"{code} ({fault_name(code)})"


def block_kind_name(kind: int) -> str:
    """The name of a block kind ("safety"), or "kind N" for one C does not define."""
    return BlockKind(kind).name.lower() if kind in BlockKind._value2member_map_ else \
        f"kind {kind}"

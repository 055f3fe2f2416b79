"""The drive contract (native/drive.h) seen from Python: the CiA 402 constants as enums
built from the library (never typed here), the drive block's commands and how a state is
read from a statusword.

Every drive — the simulated arm (`arm_sim`), the simulated servo drive (`cia402_sim`), a
fieldbus drive later — is one native block the cycle runs; the motion controller speaks
only this contract: power (the controlword sequence, run in C), modes of operation, and
the statusword, error code and fault reset it reads back (docs/motion-drives.md). The
kinds a board may name are in edge.motion.drive_kinds.
"""

from __future__ import annotations

import enum

from edge.rt.contract import FaultCode
from edge.rt.native import require_native

_ffi, _lib = require_native()


def _enum_from_c(name: str, c_type: str, prefix: str) -> type[enum.IntEnum]:
    """An IntEnum whose members are the C enum's, without the prefix."""
    members = sorted(_ffi.typeof(c_type).relements.items(), key=lambda kv: kv[1])
    return enum.IntEnum(name, {k[len(prefix):]: v for k, v in members})


DriveState = _enum_from_c("DriveState", "drive_state", "DRIVE_STATE_")
DriveMode = _enum_from_c("DriveMode", "drive_mode", "DRIVE_MODE_")
StatusBit = _enum_from_c("StatusBit", "drive_status_bit", "DRIVE_SW_")
Control = _enum_from_c("Control", "drive_control", "DRIVE_CW_")
QuickStopOption = _enum_from_c("QuickStopOption", "drive_quick_stop_option", "DRIVE_QS_")
DriveError = _enum_from_c("DriveError", "drive_error", "DRIVE_ERROR_")
DriveObject = _enum_from_c("DriveObject", "drive_object", "DRIVE_OBJ_")

DRIVE_CMD_POWER, DRIVE_CMD_MODE = _lib.DRIVE_CMD_POWER, _lib.DRIVE_CMD_MODE
DRIVE_CMD_CONTROLWORD = _lib.DRIVE_CMD_CONTROLWORD
POWER_OFF, POWER_ON, POWER_QUICK_STOP = (_lib.DRIVE_POWER_OFF, _lib.DRIVE_POWER_ON,
                                         _lib.DRIVE_POWER_QUICK_STOP)
FAULT_DRIVE_STATE = FaultCode.DRIVE_FAULT                 # faults.def, like every fault code
FAULT_DRIVE_ENABLE_TIMEOUT = FaultCode.DRIVE_ENABLE_TIMEOUT
FAULT_DRIVE_ENABLE_LOST = FaultCode.DRIVE_ENABLE_LOST


def state_of(statusword: int) -> DriveState | None:
    """The power state a statusword shows (the standard's table), None for no pattern."""
    s = _lib.drive_state_of(int(statusword) & 0xFFFF)
    return None if s < 0 else DriveState(s)

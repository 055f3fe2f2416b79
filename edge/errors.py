"""The one exception family of edge: every error a user can cause or meet is an EdgeError.

Each carries the context a user needs (file, line, field, device, code) so that the
`edge` command can print it as one line.
"""

from __future__ import annotations

# Exit codes of the `edge` command (documented in the README and docs/quickstart.md).
EXIT_OK = 0             # done; a run stopped by its duration, Ctrl-C or SIGTERM
EXIT_BUG = 1            # an unexpected exception (a traceback): a bug in edge
EXIT_ERROR = 2          # an EdgeError or a usage error: one line on stderr
EXIT_FAULTED = 3        # the run ended faulted: its program failed or a stop is latched
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT) before the run started (128 + SIGINT)
EXIT_TERMINATED = 143   # SIGTERM before the run started (128 + SIGTERM)
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (a run stopped by --duration, Ctrl-C or SIGTERM included)",
    EXIT_BUG: "unexpected error with a traceback: a bug in edge, please report it",
    EXIT_ERROR: "bad board, option or setup (one line on stderr names what and where)",
    EXIT_FAULTED: "the run ended faulted: its program failed or a stop is latched "
                  "(one 'run faulted' line on stderr per cause)",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C during start-up (summary printed if the "
                      "controller was built)",
    EXIT_TERMINATED: "stopped by SIGTERM during start-up (summary printed if the "
                     "controller was built)",
}


class EdgeError(Exception):
    """Root of every error edge raises on purpose."""

    exit_code = EXIT_ERROR

    def one_line(self) -> str:
        """The message as the command line prints it."""
        return str(self)


class ConfigError(EdgeError):
    """A board file or setting is wrong; names the file, line and field when known (and
    the column, for an error inside a value such as an expression)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, column: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.column = column
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.file:
            at = self.file if self.line is None else f"{self.file}:{self.line}"
            where.append(at if self.column is None or self.line is None
                         else f"{at}:{self.column}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class NativeError(EdgeError):
    """The native extension is missing, or refused a setup call."""


class UnreachableError(EdgeError):
    """Inverse kinematics found no joint position within limits reaching a target;
    `result` (an edge.motion.kinematics.IKResult) holds the closest answer and the reason."""

    def __init__(self, result) -> None:
        self.result = result
        super().__init__(f"target unreachable: {result.reason}")


class SchedulingError(EdgeError):
    """A period, deadline or task set that the executor cannot honour."""


class SafetyFault(EdgeError):
    """A latched safety fault reported to Python (code, message, tick)."""

    def __init__(self, code: int, message: str, tick: int | None = None) -> None:
        self.code = code
        self.message = message
        self.tick = tick
        super().__init__(f"safety fault {code} at tick {tick}: {message}")


class DeviceError(EdgeError):
    """A device (Modbus, serial, simulated) failed; names the device."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        self.message = message
        super().__init__(f"device '{device}': {message}")


class BusError(EdgeError):
    """A topic, subscription or bridge setting is invalid."""


class TrajectoryError(EdgeError):
    """A trajectory request is invalid (limits, target beyond limits, bad shapes)."""


class LogicError(EdgeError):
    """A logic program or expression is wrong; names the line and column (1-based)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 *, source: str | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.source or "logic"
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.message}"


class DeviceCommError(DeviceError):
    """A device exchange failed; `kind` is one of the counted error kinds (connect,
    timeout, disconnect, corrupt, exception, decode, other)."""

    def __init__(self, device: str, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(device, f"{kind}: {message}")


class StorageError(EdgeError):
    """A durable write or read failed (disk full, permissions, a record too large), or a
    durable file is unreadable or failed its checksum (and no good copy remains)."""


class CryptoError(EdgeError):
    """A key is missing or malformed, or a sealed message failed authentication."""

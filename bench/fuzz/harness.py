"""Runs one fuzz target on one input and says what happened: fine, crash or hang.

Each target's `test_one_input(data)` handles the one error its entry point documents
(ConfigError, LogicError, ...); anything else escaping it is a crash. An input running
longer than `hang_s` is interrupted by a timer (SIGALRM, pure-Python code only) and run
once more to tell a real hang from a slow moment of a loaded machine. Crashes and hangs
are grouped by signature (exception type and innermost frame); the first input of each
signature is saved so it can become a regression test.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


class Hang(BaseException):
    """Raised by the timer inside an input that ran past the hang limit (a BaseException
    so that a target's `except Exception` cannot swallow it)."""


@dataclass
class Finding:
    kind: str                  # "crash" | "hang"
    signature: str             # exception type and innermost frame
    summary: str               # the last frames of the traceback
    count: int = 0
    artifact: str | None = None
    example: bytes = b""

    def to_data(self) -> dict:
        return {"kind": self.kind, "signature": self.signature, "summary": self.summary,
                "count": self.count, "artifact": self.artifact,
                "example_hex": self.example[:256].hex()}


@dataclass
class Outcome:
    """What one target did over a run."""

    target: str
    executed: int = 0
    crashes: int = 0
    hangs: int = 0
    slow: int = 0                   # past the limit once, under it when run again
    slowest_s: float = 0.0
    first_t: float | None = None    # wall clock of the first input (time.time())
    last_t: float | None = None
    findings: dict[str, Finding] = field(default_factory=dict)

    def to_data(self) -> dict:
        return {"target": self.target, "executed": self.executed, "crashes": self.crashes,
                "hangs": self.hangs, "slow": self.slow, "slowest_s": self.slowest_s,
                "first_t": self.first_t, "last_t": self.last_t,
                "findings": [f.to_data() for f in self.findings.values()]}


def _signature(exc: BaseException) -> tuple[str, str]:
    frames = traceback.extract_tb(exc.__traceback__)
    inner = frames[-1] if frames else None
    where = f"{Path(inner.filename).name}:{inner.lineno} in {inner.name}" if inner else "?"
    summary = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                          for f in reversed(frames[-4:]))
    message = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__} at {where}", f"{type(exc).__name__}: {message} [{summary}]"


class Runner:
    """Calls `fn` on inputs under the hang timer and keeps the Outcome.

    artifacts: a directory to save the first input of each finding in (None: kept in
    memory only, as `Finding.example`)."""

    def __init__(self, target: str, fn: Callable[[bytes], None], *, hang_s: float = 1.0,
                 artifacts: Path | None = None,
                 on_finding: Callable[[Outcome], None] | None = None) -> None:
        self.fn = fn
        self.hang_s = hang_s
        self.artifacts = artifacts
        self.on_finding = on_finding
        self.outcome = Outcome(target)
        self._armed = False
        signal.signal(signal.SIGALRM, self._alarm)

    def _alarm(self, signum, frame) -> None:
        if self._armed:
            self._armed = False
            raise Hang()

    def _timed(self, data: bytes, limit_s: float) -> tuple[float, BaseException | None]:
        t0 = time.perf_counter()
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            self.fn(data)
            error = None
        except (Exception, Hang) as exc:      # KeyboardInterrupt and SystemExit pass
            error = exc
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return time.perf_counter() - t0, error

    def __call__(self, data: bytes) -> None:
        out = self.outcome
        now = time.time()
        if out.first_t is None:
            out.first_t = now
        out.executed += 1
        elapsed, error = self._timed(data, self.hang_s)
        out.slowest_s = max(out.slowest_s, elapsed)
        if isinstance(error, Hang):
            again, error2 = self._timed(data, 5 * self.hang_s)
            if not isinstance(error2, Hang) and again <= self.hang_s:
                out.slow += 1
                error = error2
            else:
                out.hangs += 1
                self._record("hang", data, error2 if error2 is not None else error)
                error = None
        if error is not None:
            out.crashes += 1
            self._record("crash", data, error)
        out.last_t = time.time()

    def _record(self, kind: str, data: bytes, exc: BaseException) -> None:
        signature, summary = _signature(exc)
        if kind == "hang":
            signature, summary = f"hang > {self.hang_s:g} s {signature}", summary
        found = self.outcome.findings.get(signature)
        if found is None:
            found = Finding(kind, signature, summary, example=bytes(data))
            if self.artifacts is not None:
                self.artifacts.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha1(data).hexdigest()[:12]
                path = self.artifacts / f"{kind}-{self.outcome.target}-{digest}"
                path.write_bytes(data)
                path.with_suffix(".txt").write_text(summary + "\n" + "".join(
                    traceback.format_exception(exc)))
                found.artifact = str(path)
            self.outcome.findings[signature] = found
        found.count += 1
        if self.on_finding is not None:
            self.on_finding(self.outcome)

    def run(self, inputs: Iterable[bytes]) -> Outcome:
        for data in inputs:
            self(data)
        return self.outcome


def write_outcome(outcome: Outcome, path: Path) -> None:
    """Write the outcome atomically (the bench reads it while the child still runs)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(outcome.to_data()))
    tmp.replace(path)

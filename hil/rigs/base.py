"""What every rig resource shares: one error type that reads as one line, an `async with`
lifecycle whose start is bounded in time and undone on any failure, and a port check.

A resource is something that exists on the rig (a broker, a device on a line, an `edge
run` process), kept apart from the faults injected into it (hil.rigs.faults) and from the
strategy that brings a whole rig into a state (hil.rigs.strategy), as labgrid keeps
resources, drivers and strategies apart.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable

from edge.errors import EdgeError


class RigError(EdgeError, RuntimeError):
    """A rig resource could not start or serve: one line naming the resource and why
    (port taken, program missing, not ready in time). A RuntimeError too, so callers of
    the older hil helpers, which raised RuntimeError, still catch it."""


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise RigError when `port` on `host` cannot be bound (0 always can)."""
    if not port:
        return
    with socket.socket() as s:
        # as the servers themselves bind: a port left in TIME_WAIT by a stopped server is
        # free, one with a listener is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            why = "is taken" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise RigError(f"{what}: port {port} on {host} {why}") from None


async def wait_for_condition(predicate: Callable[[], bool], timeout_s: float, what: str,
                             poll_s: float = 0.02) -> None:
    """Poll `predicate` until true; RigError `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RigError(f"{what} within {timeout_s:g} s")
        await asyncio.sleep(poll_s)


class Resource(abc.ABC):
    """`async with SomeResource(...) as r:` starts it, the block uses it, leaving the
    block (normally or by an exception) stops it. Subclasses write `_open(stack)`, which
    enters whatever they hold into `stack`; a start that fails or takes longer than
    `start_timeout_s` closes what was already opened and raises one RigError."""

    kind = "resource"               # how errors name it
    start_timeout_s = 10.0

    def __init__(self) -> None:
        self._stack: contextlib.AsyncExitStack | None = None

    @abc.abstractmethod
    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        """Start what the resource holds, entering each part into stack."""

    @property
    def running(self) -> bool:
        return self._stack is not None

    async def __aenter__(self):
        if self._stack is not None:
            raise RigError(f"{self.kind}: already started")
        stack = contextlib.AsyncExitStack()
        try:
            await asyncio.wait_for(self._open(stack), self.start_timeout_s)
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, RigError):
                raise
            if isinstance(exc, TimeoutError):
                raise RigError(f"{self.kind}: did not start within "
                               f"{self.start_timeout_s:g} s") from None
            if isinstance(exc, (OSError, RuntimeError)):
                raise RigError(f"{self.kind}: {exc}") from exc
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

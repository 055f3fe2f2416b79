"""The broker resource: a real mosquitto (hil.broker.Mosquitto) on a loopback port, in a
`with` or an `async with` block. A port that is taken or a mosquitto that is missing is
one RigError before anything starts, never a hang."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hil.broker import Mosquitto, find_mosquitto
from hil.rigs.base import RigError, check_port_free


class Broker(Mosquitto):
    """mosquitto with persistence, stoppable and restartable on the same port (`stop`,
    `start`, `kill`, `freeze`, `thaw` as in hil.broker.Mosquitto). Keyword arguments are
    Mosquitto's (tls, users, require_client_cert, log_all)."""

    kind = "broker"

    def __init__(self, port: int | None = None, directory: str | None = None,
                 start_timeout_s: float = 5.0, **options) -> None:
        if find_mosquitto() is None:
            raise RigError("broker: mosquitto is not installed (apt-get install mosquitto; "
                           "./dev test installs it)")
        check_port_free("127.0.0.1", port or 0, self.kind)
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        super().__init__(port, directory, **options)
        self.start_timeout_s = start_timeout_s

    def start(self, timeout_s: float | None = None) -> None:
        """Start (or start again after `stop`/`kill`) on the same port; RigError when the
        port is taken by then or mosquitto does not listen within the timeout."""
        check_port_free("127.0.0.1", self.port, self.kind)
        try:
            super().start(timeout_s or self.start_timeout_s)
        except RuntimeError as exc:
            self.kill()
            raise RigError(f"{self.kind}: {exc}") from None

    def __enter__(self) -> Broker:
        super().__enter__()
        return self

    async def __aenter__(self) -> Broker:
        # the start polls a socket for up to the timeout: off the loop, so devices served
        # on it keep answering meanwhile
        await asyncio.to_thread(self.__enter__)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await asyncio.to_thread(self.__exit__, *exc_info)

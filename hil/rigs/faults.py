"""Fault injectors, kept apart from the resources they act on.

A device's faults bend what it sends back on its line (hil.faults.Faults: silent, late,
corrupt) or hang the line up; for a TCP device the line is a proxy put in front of it
(`TcpFaultLink`), for a pty device the line it owns. A broker's faults are an outage
(stopped, sessions saved), a SIGKILL, a freeze (SIGSTOP: sockets open, no answers) or a
cut network link, the campaigns of hil.broker_faults. Each family has one table of kinds
by name, so a scenario can say `silent` or `freeze` and mean the same as a test does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator

from hil.broker_faults import FAULTS as _BROKER_CAMPAIGN_FAULTS
from hil.faults import Faults, TcpFaultProxy
from hil.rigs.base import Resource, RigError

# fault kind -> what it does to the device (the table `DeviceFaults.set` reads)
DEVICE_FAULTS = {
    "silent": "the device stops answering (requests still reach it)",
    "late": "answers arrive `delay_s` seconds late",
    "corrupt": "one byte of every answer flipped (`index`, default 2)",
    "disconnect": "the device hangs up every connection (TCP; clients reconnect)",
}


class DeviceFaults:
    """The faults of one device's line. Attributes set while traffic flows take effect
    on the next answer: `silent`, `delay_s`, `corrupt`, `corrupt_index`; counters
    `answers`, `dropped`, `corrupted` count what the line saw since the start, and `slow`
    the answers handed on more than `slow_after_s` after their request (when set)."""

    def __init__(self, faults: Faults, *, where: str,
                 hang_up: Callable[[], Awaitable[None]] | None = None) -> None:
        self._faults = faults
        self._where = where
        self._hang_up = hang_up

    silent = property(lambda self: self._faults.silent,
                      lambda self, on: setattr(self._faults, "silent", bool(on)))
    delay_s = property(lambda self: self._faults.delay_s,
                       lambda self, s: setattr(self._faults, "delay_s", float(s)))
    corrupt = property(lambda self: self._faults.corrupt,
                       lambda self, on: setattr(self._faults, "corrupt", bool(on)))
    corrupt_index = property(lambda self: self._faults.corrupt_index,
                             lambda self, i: setattr(self._faults, "corrupt_index", int(i)))
    answers = property(lambda self: self._faults.answers)
    dropped = property(lambda self: self._faults.dropped)
    corrupted = property(lambda self: self._faults.corrupted)
    slow = property(lambda self: self._faults.slow)
    slow_after_s = property(lambda self: self._faults.slow_after_s,
                            lambda self, s: setattr(self._faults, "slow_after_s", s))

    def clear(self) -> None:
        """Every fault off (the counters stay)."""
        self._faults.clear()

    async def disconnect(self) -> None:
        """Hang up every connection now; RigError on a line that cannot (a serial line:
        use `silent`, which is what a pulled cable looks like there)."""
        if self._hang_up is None:
            raise RigError(f"{self._where}: a serial line cannot hang up; use 'silent'")
        await self._hang_up()

    async def set(self, kind: str, on: bool = True, *, delay_s: float | None = None,
                  index: int | None = None) -> None:
        """Switch fault `kind` (a key of DEVICE_FAULTS) on or off by name."""
        if kind not in DEVICE_FAULTS:
            raise RigError(f"{self._where}: unknown device fault {kind!r}; known: "
                           f"{', '.join(DEVICE_FAULTS)}")
        if kind == "silent":
            self.silent = on
        elif kind == "late":
            if on and not (delay_s and delay_s > 0):
                raise RigError(f"{self._where}: fault 'late' needs delay_s > 0")
            self.delay_s = delay_s if on else 0.0
        elif kind == "corrupt":
            self.corrupt = on
            if index is not None:
                self.corrupt_index = index
        elif on:
            await self.disconnect()


class TcpFaultLink(Resource):
    """`async with TcpFaultLink(device.port) as link:` a relay on 127.0.0.1:`link.port`
    to the TCP service at upstream_host:upstream_port (a Modbus device, a broker). Its
    `faults` bend the answers; `cut` holds all bytes back both ways with every socket
    open, as a pulled cable does, until `restore`."""

    kind = "tcp fault link"
    start_timeout_s = 5.0

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        super().__init__()
        self.proxy = TcpFaultProxy(upstream_host, upstream_port, Faults())
        self.faults = DeviceFaults(self.proxy.faults, where=f"link to {upstream_host}:"
                                   f"{upstream_port}", hang_up=self.proxy.drop_connections)

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await stack.enter_async_context(self.proxy.running())

    @property
    def port(self) -> int | None:
        return self.proxy.port

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        return self.proxy.connections

    async def drop_connections(self) -> None:
        await self.proxy.drop_connections()

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()


class _SameLoop:
    """What hil.broker_faults expects of its proxy thread, for a link on this loop."""

    def __init__(self, link: TcpFaultLink | None) -> None:
        self.proxy = link.proxy if link is not None else None

    def call(self, fn: Callable[[], object]) -> None:
        fn()


def _kill(broker, proxy) -> tuple[Callable, Callable]:
    return broker.kill, broker.start


# fault kind -> (begin, end) actions on (broker, link); the campaigns' kinds plus a kill
BROKER_FAULTS = {**{k: v for k, v in _BROKER_CAMPAIGN_FAULTS.items() if k != "none"},
                 "kill": _kill}


class BrokerFaults:
    """Faults of a broker, by name (a key of BROKER_FAULTS): `with faults.during("restart"):`
    is an outage for as long as the block runs. `cut` needs the edge side to reach the
    broker through `link`."""

    def __init__(self, broker, link: TcpFaultLink | None = None) -> None:
        self.broker = broker
        self.link = link
        self.active: set[str] = set()

    def _actions(self, kind: str) -> tuple[Callable, Callable]:
        if kind not in BROKER_FAULTS:
            raise RigError(f"broker: unknown fault {kind!r}; known: {', '.join(BROKER_FAULTS)}")
        if kind == "cut" and self.link is None:
            raise RigError("broker: fault 'cut' needs a TcpFaultLink between edge and the "
                           "broker")
        return BROKER_FAULTS[kind](self.broker, _SameLoop(self.link))

    def begin(self, kind: str) -> None:
        begin, _ = self._actions(kind)
        begin()
        self.active.add(kind)

    def end(self, kind: str) -> None:
        _, end = self._actions(kind)
        end()
        self.active.discard(kind)

    @contextlib.contextmanager
    def during(self, kind: str) -> Iterator[BrokerFaults]:
        self.begin(kind)
        try:
            yield self
        finally:
            self.end(kind)

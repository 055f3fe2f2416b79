"""The serial device resource: an ASCII-line or binary-frame device on a pseudo-terminal
(hil.slave_sim.SerialDeviceSim), answering requests or streaming. Its bytes are written by
hil.wire; the link settings (framing, fields, request) only say which framing to write."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from hil.rigs.base import Resource
from hil.rigs.faults import DeviceFaults
from hil.slave_sim import SerialDeviceSim


class SerialDevice(Resource):
    """`async with SerialDevice(link, {"temp": 23.5}) as dev:` a device on the pty
    `dev.path`. `link` is a serial link description with the fields of edge's SerialLink
    (protocol, format, fields, separator, terminator, nmea, request, sync, checksum);
    `values` is what it reports (change it while it runs); `payload(values) -> bytes`
    builds a binary frame's payload; with `stream_period_s` it sends unasked. `faults`
    bend its answers; `requests` counts the requests it answered."""

    kind = "serial device"
    start_timeout_s = 5.0

    def __init__(self, link, values: Mapping[str, object], *,
                 stream_period_s: float | None = None,
                 payload: Callable[[Mapping[str, object]], bytes] | None = None) -> None:
        super().__init__()
        self.sim = SerialDeviceSim(link, dict(values), stream_period_s=stream_period_s,
                                   payload=payload)
        self.faults = DeviceFaults(self.sim.faults, where=self.kind)

    @property
    def path(self) -> str:
        return self.sim.path

    @property
    def values(self) -> dict:
        return self.sim.values

    @property
    def requests(self) -> int:
        return self.sim.requests

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await stack.enter_async_context(self.sim.running())

"""The strategy that brings a rig into its working state: a broker up, then `edge run` of
a board against it with the bridge connected, optionally through a TCP link that can be
cut. It owns the order (broker before controller, controller stopped before broker) and
hands out the resources and their fault injectors."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hil.rigs.base import Resource
from hil.rigs.broker import Broker
from hil.rigs.edge_process import EdgeProcess
from hil.rigs.faults import BrokerFaults, TcpFaultLink


class EdgeRig(Resource):
    """`async with EdgeRig("sim_arm", workdir) as rig:` rig.broker (given, or started and
    owned here), rig.edge (an EdgeProcess, ready and connected), rig.broker_faults
    (outage, kill, freeze and, with `via_link`, cut). Other EdgeProcess options pass
    through `edge_options`."""

    kind = "edge rig"

    def __init__(self, board: str | os.PathLike = "sim_arm",
                 workdir: str | os.PathLike | None = None, *, broker: Broker | None = None,
                 via_link: bool = False, **edge_options) -> None:
        super().__init__()
        self.board = board
        self.workdir = Path(workdir) if workdir else None
        self.broker = broker
        self._own_broker = broker is None
        self.via_link = via_link
        self.link: TcpFaultLink | None = None
        self.edge: EdgeProcess | None = None
        self.edge_options = edge_options
        self.broker_faults: BrokerFaults | None = None
        self.start_timeout_s = edge_options.get("ready_timeout_s", 60.0) + 30.0

    @property
    def url(self) -> str:
        """The broker URL edge was given (the link's when there is one)."""
        port = self.link.port if self.link is not None else self.broker.port
        return f"mqtt://127.0.0.1:{port}"

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        if self._own_broker:
            directory = None
            if self.workdir is not None:
                directory = self.workdir / "broker"
                directory.mkdir(parents=True, exist_ok=True)
            self.broker = await stack.enter_async_context(
                Broker(directory=str(directory) if directory else None))
        if self.via_link:
            self.link = await stack.enter_async_context(TcpFaultLink(self.broker.port))
        self.broker_faults = BrokerFaults(self.broker, self.link)
        self.edge = EdgeProcess(self.board, mqtt=self.url,
                                workdir=self.workdir / "edge" if self.workdir else None,
                                **self.edge_options)
        await stack.enter_async_context(self.edge)

"""Modbus device resources: a pymodbus server (hil.slave_sim.SlaveSimulator) over TCP on
a loopback port, or over RTU on a pseudo-terminal line. The registers are encoded by
hil.wire from the protocol text, never by edge's codec."""

from __future__ import annotations

import contextlib
import logging

from hil.faults import Faults, PtyLink
from hil.rigs.base import Resource, RigError, check_port_free
from hil.rigs.faults import DeviceFaults
from hil.slave_sim import SlaveSimulator


class _Registers(Resource):
    """The register access both transports share (the simulator's own datastore)."""

    def __init__(self, unit: int, size: int, more_units: tuple[int, ...]) -> None:
        super().__init__()
        self.sim = SlaveSimulator(unit=unit, size=size, more_units=more_units)

    @property
    def unit(self) -> int:
        return self.sim.unit

    def _serving(self) -> SlaveSimulator:
        if not self.running:
            raise RigError(f"{self.kind}: not started (use it inside `async with`)")
        return self.sim

    async def set_value(self, table: str, address: int, value: float, dtype: str = "uint16",
                        byte_order: str = "big", word_order: str = "big",
                        unit: int | None = None) -> None:
        """Store a typed value as the device presents it (table: coil, discrete, holding,
        input; dtype: int16, uint16, int32, uint32, float32; orders 'big' or 'little')."""
        await self._serving().set_value(table, address, value, dtype, byte_order, word_order,
                                        unit)

    async def set_registers(self, table: str, address: int, values: list[int] | list[bool],
                            unit: int | None = None) -> None:
        await self._serving().set_registers(table, address, values, unit)

    async def get_registers(self, table: str, address: int, count: int = 1) -> list:
        return await self._serving().get_registers(table, address, count)


class ModbusTcpDevice(_Registers):
    """`async with ModbusTcpDevice() as dev:` a Modbus TCP server for unit `unit` (and
    `more_units`) with `size` coils, inputs and registers each, on `dev.host`:`dev.port`
    (port 0: a free one). Faults go in front of it: hil.rigs.faults.TcpFaultLink."""

    kind = "modbus tcp device"
    start_timeout_s = 5.0

    def __init__(self, unit: int = 1, size: int = 1000, more_units: tuple[int, ...] = (), *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(unit, size, more_units)
        self.host = host
        self._want_port = port
        self.port: int | None = None

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        check_port_free(self.host, self._want_port, self.kind)
        try:
            await stack.enter_async_context(self.sim.tcp(self.host, self._want_port))
        except RuntimeError:      # pymodbus: "Could not start listen, please check address."
            raise RigError(f"{self.kind}: cannot listen on {self.host}:{self._want_port}") \
                from None
        self.port = self.sim.port


class ModbusRtuDevice(_Registers):
    """`async with ModbusRtuDevice() as dev:` a Modbus RTU server on one end of a
    null-modem pty link; a client opens `dev.path`. Several units may share the line
    (`more_units`); a frame for an absent unit goes unanswered, as on RS-485. What the
    device sends back passes through the line's faults: `dev.faults`."""

    kind = "modbus rtu device"
    start_timeout_s = 5.0

    def __init__(self, unit: int = 1, size: int = 1000, more_units: tuple[int, ...] = (), *,
                 baudrate: int = 115200) -> None:
        super().__init__(unit, size, more_units)
        self.baudrate = baudrate
        self.line = PtyLink(Faults())
        self.faults = DeviceFaults(self.line.faults, where=self.kind)

    @property
    def path(self) -> str:
        """The serial device a client opens (the other end of the line)."""
        return self.line.client_path

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        await stack.enter_async_context(self.line.running())
        await stack.enter_async_context(self.sim.rtu(self.line.device_path, self.baudrate))


@contextlib.contextmanager
def quiet_pymodbus():
    """pymodbus logs every fault a rig injects on purpose as an error: quiet while a rig
    runs, restored after."""
    logger = logging.getLogger("pymodbus")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)

"""A Modbus device simulator: a real pymodbus server over TCP or RTU on a serial line.

The registers live in the server's own datastore; a rig sets and reads them with
`set_value` / `get_registers` while clients poll over the wire. As a program
(`python -m hil.slave_sim --port 0`) it serves TCP and prints its port, for benchmarks
that want the server out of their own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import AsyncIterator

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.wire import FUNCTION_CODES, ascii_line, binary_frame, registers


class SlaveSimulator:
    """One Modbus device (unit id `unit`) with `size` coils, inputs and registers each."""

    def __init__(self, unit: int = 1, size: int = 1000, more_units: tuple[int, ...] = ()) -> None:
        self.unit = unit
        self.units = (unit, *more_units)     # several units: an RS-485 line of devices
        self.size = size
        self.port: int | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    def _device(self, unit: int) -> SimDevice:
        bits = [SimData(0, count=self.size, values=False, datatype=DataType.BITS)]
        regs = [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)]
        return SimDevice(id=unit, simdata=(bits, list(bits), regs, list(regs)))

    def _devices(self) -> list[SimDevice]:
        return [self._device(u) for u in self.units]

    @contextlib.asynccontextmanager
    async def tcp(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[SlaveSimulator]:
        """Serve Modbus TCP on host:port (0: a free port, then in self.port)."""
        server = ModbusTcpServer(self._devices(), address=(host, port))
        await server.serve_forever(background=True)
        self.port = server.transport.sockets[0].getsockname()[1]
        self._server = server
        try:
            yield self
        finally:
            await server.shutdown()
            self._server = None

    @contextlib.asynccontextmanager
    async def rtu(self, serial_port: str, baudrate: int = 115200) -> AsyncIterator[SlaveSimulator]:
        """Serve Modbus RTU on a serial device (a pty end from hil.faults.PtyLink)."""
        def silent_for_absent_units(sending: bool, data: bytes) -> bytes:
            # pymodbus answers an absent unit with an exception; on a real RS-485 line
            # nobody answers it (the first byte of an RTU frame is the unit id)
            if sending and data and data[0] not in self.units:
                return b""
            return data

        server = ModbusSerialServer(self._devices(), framer=FramerType.RTU, port=serial_port,
                                    baudrate=baudrate, timeout=0.05,
                                    trace_packet=silent_for_absent_units)
        await server.serve_forever(background=True)
        self._server = server
        try:
            yield self
        finally:
            await server.shutdown()
            self._server = None

    async def set_registers(self, table: str, address: int, values: list[int] | list[bool],
                            unit: int | None = None) -> None:
        if self._server is None:
            raise RuntimeError("the simulator is not serving")
        await self._server.async_setValues(unit or self.unit, FUNCTION_CODES[table], address,
                                           values)

    async def get_registers(self, table: str, address: int, count: int = 1) -> list:
        if self._server is None:
            raise RuntimeError("the simulator is not serving")
        return await self._server.async_getValues(self.unit, FUNCTION_CODES[table], address,
                                                  count)

    async def set_value(self, table: str, address: int, value: float, dtype: str = "uint16",
                        byte_order: str = "big", word_order: str = "big",
                        unit: int | None = None) -> None:
        """Store a typed value the way a device would present it (encoded by hil.wire,
        not by edge's codec)."""
        if table in ("coil", "discrete"):
            await self.set_registers(table, address, [bool(value)], unit)
            return
        if dtype != "float32":
            value = int(value)
        await self.set_registers(table, address,
                                 registers(value, dtype, byte_order, word_order), unit)


async def _serve(host: str, port: int, unit: int) -> None:
    sim = SlaveSimulator(unit=unit)
    async with sim.tcp(host, port):
        print(sim.port, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Modbus TCP device simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port, printed")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.uvloop:
        import uvloop

        uvloop.run(_serve(args.host, args.port, args.unit))
    else:
        asyncio.run(_serve(args.host, args.port, args.unit))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()


class SerialDeviceSim:
    """A serial line device on the master end of a pty: answers each request (or streams
    every `stream_period_s`) with its current `values`, through `faults`. `link` (an
    edge SerialLink) says which framing; hil.wire writes the bytes."""

    def __init__(self, link, values: dict, faults=None, stream_period_s: float | None = None,
                 payload=None) -> None:
        from hil.faults import Faults

        self.link = link
        self.values = values
        self.faults = faults or Faults()
        self.stream_period_s = stream_period_s
        self.payload = payload          # binary: values -> payload bytes
        self.requests = 0
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        self._pending = bytearray()

    def _answer(self) -> bytes:
        link = self.link
        if link.protocol == "ascii":
            return ascii_line(self.values, fields=link.fields if link.format == "csv" else None,
                              separator=link.separator, terminator=link.terminator,
                              nmea=link.nmea)
        return binary_frame(link.sync, self.payload(self.values), link.checksum)

    async def _send(self, data: bytes) -> None:
        out = self.faults.apply(data)
        if out is None:
            return
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        with contextlib.suppress(OSError):
            os.write(self._master, out)

    def _readable(self) -> None:
        try:
            self._pending += os.read(self._master, 4096)
        except OSError:
            return
        req = self.link.request
        while req and (i := self._pending.find(req)) >= 0:
            del self._pending[:i + len(req)]
            self.requests += 1
            asyncio.get_running_loop().create_task(self._send(self._answer()))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SerialDeviceSim]:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._master, self._readable)
        streamer = None
        if self.stream_period_s:
            async def stream() -> None:
                while True:
                    await self._send(self._answer())
                    await asyncio.sleep(self.stream_period_s)
            streamer = asyncio.create_task(stream())
        try:
            yield self
        finally:
            loop.remove_reader(self._master)
            if streamer:
                streamer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await streamer
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

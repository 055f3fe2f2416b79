"""Fault injection between a client and a device: a TCP proxy and a pty link.

Both carry bytes both ways and apply the same `Faults` to what the device sends back:
stop answering (`silent`), answer late (`delay_s`), or corrupt frames (`corrupt`: one
byte of every answer flipped). Faults can be changed while traffic flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class Faults:
    silent: bool = False        # swallow the device's answers
    delay_s: float = 0.0        # deliver the device's answers this late
    corrupt: bool = False       # flip one byte of each answer
    corrupt_index: int = 2      # which byte (clamped to the answer's length)
    answers: int = 0            # answers seen from the device
    dropped: int = 0
    corrupted: int = 0
    # answers handed on later than this after the request before them crossed the line:
    # ones a client with a timeout near it may have given up on (None: not counted)
    slow_after_s: float | None = None
    slow: int = 0
    _asked_at: float | None = None

    def clear(self) -> None:
        self.silent, self.delay_s, self.corrupt = False, 0.0, False

    def asked(self) -> None:
        """A request crossed the line towards the device (now)."""
        self._asked_at = asyncio.get_running_loop().time()

    def handed_on(self) -> None:
        """An answer left the line towards the client (now): slow if late after its
        request. The devices here answer one request at a time, so the last one is it."""
        if self.slow_after_s is not None and self._asked_at is not None:
            if asyncio.get_running_loop().time() - self._asked_at > self.slow_after_s:
                self.slow += 1
            self._asked_at = None

    def apply(self, data: bytes) -> bytes | None:
        """What to forward for `data` from the device (None: nothing)."""
        self.answers += 1
        if self.silent:
            self.dropped += 1
            return None
        if self.corrupt and data:
            i = min(self.corrupt_index, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
            self.corrupted += 1
        return data


class _DelayedPipe:
    """Forwards chunks in order, each no earlier than `delay_s` after it arrived."""

    def __init__(self, write, faults: Faults) -> None:
        self._write = write
        self._faults = faults
        self._queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    def feed(self, data: bytes) -> None:
        out = self._faults.apply(data)
        if out is not None:
            due = asyncio.get_running_loop().time() + self._faults.delay_s
            self._queue.put_nowait((due, out))

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self._queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._write(data)
            except (OSError, ConnectionError):
                return
            self._faults.handed_on()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class TcpFaultProxy:
    """Listens on 127.0.0.1:port and relays to upstream, applying `faults` to answers."""

    def __init__(self, upstream_host: str, upstream_port: int,
                 faults: Faults | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = faults or Faults()
        self.port: int | None = None
        self.connections = 0
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None    # cleared while the link is cut

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter):
        self.connections += 1
        await self._flowing.wait()
        try:
            u_reader, u_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.close()
            return
        self._writers |= {c_writer, u_writer}

        async def to_client(data: bytes) -> None:
            c_writer.write(data)
            await c_writer.drain()

        pipe = _DelayedPipe(to_client, self.faults)

        async def upstream_to_pipe() -> None:
            while data := await u_reader.read(65536):
                await self._flowing.wait()
                pipe.feed(data)

        async def client_to_upstream() -> None:
            while data := await c_reader.read(65536):
                await self._flowing.wait()
                self.faults.asked()
                u_writer.write(data)
                await u_writer.drain()

        tasks = [asyncio.create_task(upstream_to_pipe()), asyncio.create_task(client_to_upstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await pipe.close()
            for w in (c_writer, u_writer):
                w.close()
                self._writers.discard(w)

    async def drop_connections(self) -> None:
        """Close every relayed connection now (a device that hangs up)."""
        for w in list(self._writers):
            w.close()

    def cut(self) -> None:
        """Cut the link: nothing is relayed either way and new connections hang, but no
        socket is closed, as when a cable is pulled (TCP holds the bytes back)."""
        self._flowing.clear()

    def restore(self) -> None:
        """End a `cut`: what was held back flows again, in order."""
        self._flowing.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TcpFaultProxy]:
        self._flowing = asyncio.Event()
        self._flowing.set()

        def spawn(r, w):
            t = asyncio.create_task(self._handle(r, w))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

        server = await asyncio.start_server(spawn, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for t in list(self._tasks):
                t.cancel()
            for t in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            with contextlib.suppress(Exception):
                await server.wait_closed()


class PtyLink:
    """Two pseudo-terminal pairs wired back to back, like a null-modem cable.

    The client opens `client_path`, the device opens `device_path`; bytes from the
    device to the client go through `faults`."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._fds: list[int] = []
        self.client_path = self.device_path = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PtyLink]:
        loop = asyncio.get_running_loop()
        m_client, s_client = os.openpty()
        m_device, s_device = os.openpty()
        self._fds = [m_client, s_client, m_device, s_device]
        for fd in (s_client, s_device):
            tty.setraw(fd)
        for fd in (m_client, m_device):
            os.set_blocking(fd, False)
        self.client_path, self.device_path = os.ttyname(s_client), os.ttyname(s_device)

        async def write_to(fd: int, data: bytes) -> None:
            while data:
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    await asyncio.sleep(0.001)
                    continue
                data = data[n:]

        answers = _DelayedPipe(lambda d: write_to(m_client, d), self.faults)

        def pump(src: int, dst: int | None) -> None:
            try:
                data = os.read(src, 65536)
            except (BlockingIOError, OSError):
                return
            if dst is None:
                answers.feed(data)
            else:
                self.faults.asked()
                loop.create_task(write_to(dst, data))

        loop.add_reader(m_client, pump, m_client, m_device)   # requests: untouched
        loop.add_reader(m_device, pump, m_device, None)       # answers: through faults
        try:
            yield self
        finally:
            loop.remove_reader(m_client)
            loop.remove_reader(m_device)
            await answers.close()
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

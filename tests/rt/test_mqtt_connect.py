"""A broker behind a proxy or load balancer that is down: the TCP connect succeeds and
the socket is closed at once. The bridge's connect must fail at once too (aiomqtt alone
waits out its 10 s timeout, which kept the bridge away long after a broker restart)."""

import asyncio
import time

import aiomqtt
import pytest

from edge.rt.mqtt import fail_connect_on_close


async def _closing_listener() -> tuple[asyncio.AbstractServer, int]:
    async def close_at_once(reader, writer) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_connection_closed_before_connack_fails_the_connect_at_once():
    server, port = await _closing_listener()
    async with server:
        client = aiomqtt.Client("127.0.0.1", port, timeout=10)
        fail_connect_on_close(client)
        t0 = time.monotonic()
        with pytest.raises(aiomqtt.MqttError, match="closed before CONNACK"):
            async with client:
                pass
        assert time.monotonic() - t0 < 2.0       # not the 10 s connect timeout

"""RabbitMQ only: the bus carries on after losing the broker.

Two ways of losing it: the broker closes every connection of the test vhost
(rabbitmqctl close_all_connections), and a full outage simulated with a TCP proxy between the
bus and the broker that is cut (connections reset, new ones refused) and then restored; the
shared broker itself is never stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from yarl import URL

from nimbus.bus import Bus, BusTimeout, Target, create_bus
from nimbus.bus.rabbit import RabbitBus

RABBIT_HOST_PORT = ("127.0.0.1", 5672)


class Endpoint:
    def __init__(self, name: str, seen: Any = None) -> None:
        self.name = name
        self.seen = seen

    async def whoami(self, context: dict[str, Any]) -> str:
        return self.name

    async def add(self, context: dict[str, Any], a: int, b: int) -> int:
        return a + b

    async def record(self, context: dict[str, Any], n: int) -> None:
        self.seen.add(n)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the broker; cut() starts an outage, restore() ends it.

    During an outage established links are reset and new connections are accepted and
    reset at once (counted in `refused`), as if the broker were down.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._up = True
        self._refusal = asyncio.Event()
        self.refused = 0
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()

    async def cut(self) -> None:
        self._up = False
        for writer in self._links:
            writer.transport.abort()
        self._links.clear()

    async def restore(self) -> None:
        self._up = True

    async def wait_refused(self, count: int) -> None:
        """Wait until `count` connection attempts were refused in total."""
        while self.refused < count:
            self._refusal.clear()
            await self._refusal.wait()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            writer.transport.abort()
            self.refused += 1
            self._refusal.set()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def two_buses(rabbit_url: str) -> AsyncIterator[tuple[Bus, Bus]]:
    server_bus = create_bus(rabbit_url, stop_grace=2.0)
    client_bus = create_bus(rabbit_url, stop_grace=2.0)
    await server_bus.start()
    await client_bus.start()
    yield server_bus, client_bus
    await client_bus.stop()
    await server_bus.stop()


async def wait_reconnected(*buses: Bus, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait (with a deadline) until every bus has re-established its connection once."""
    async with asyncio.timeout(timeout):
        for bus in buses:
            assert isinstance(bus, RabbitBus)
            await bus.wait_for_reconnect(1)


async def test_bus_resumes_after_broker_drops_connections(
    two_buses: tuple[Bus, Bus], drop_rabbit_connections: Any, collector: Any
) -> None:
    server_bus, client_bus = two_buses
    await server_bus.serve(Target("resume", server="r1"), Endpoint("r1"))
    plain, pooled = collector(), collector()
    await server_bus.subscribe("resume.*", plain.handler)
    await server_bus.subscribe("resume.*", pooled.handler, pool="resumers")

    assert await client_bus.call(Target("resume"), "add", a=1, b=2, timeout=5) == 3
    await client_bus.notify("resume.before", {"n": 0}, publisher_id="test")
    await plain.wait_for(1)
    await pooled.wait_for(1)

    await drop_rabbit_connections()
    # a call made during the outage may only succeed or time out, never fail otherwise
    during = asyncio.create_task(client_bus.call(Target("resume"), "whoami", timeout=3))

    await wait_reconnected(server_bus, client_bus)

    # messages sent after the reconnect: the server re-consumed, subscribers resumed
    assert await client_bus.call(Target("resume"), "add", a=2, b=3, timeout=5) == 5
    assert await client_bus.call(Target("resume", server="r1"), "whoami", timeout=5) == "r1"
    await client_bus.notify("resume.after", {"n": 1}, publisher_id="test")
    assert [n["event_type"] for n in await plain.wait_for(2)][-1] == "resume.after"
    assert [n["event_type"] for n in await pooled.wait_for(2)][-1] == "resume.after"

    try:
        assert await during == "r1"
    except BusTimeout:
        pass


async def test_bus_rides_out_a_broker_outage(rabbit_url: str, collector: Any) -> None:
    proxy = TcpProxy(RABBIT_HOST_PORT[0], RABBIT_HOST_PORT[1])
    await proxy.start()
    url = str(URL(rabbit_url).with_host("127.0.0.1").with_port(proxy.port))
    server_bus = create_bus(url, stop_grace=2.0)
    client_bus = create_bus(url, stop_grace=2.0)
    await server_bus.start()
    await client_bus.start()
    try:
        seen, plain, pooled = collector(), collector(), collector()
        await server_bus.serve(Target("outage", server="o1"), Endpoint("o1", seen))
        await server_bus.subscribe("outage.*", plain.handler)
        await server_bus.subscribe("outage.*", pooled.handler, pool="outage-pool")
        assert await client_bus.call(Target("outage"), "whoami", timeout=5) == "o1"

        await proxy.cut()
        # sent while the broker is unreachable: they wait for the reconnect, then go out
        cast = asyncio.create_task(client_bus.cast(Target("outage"), "record", n=1))
        notify = asyncio.create_task(
            client_bus.notify("outage.during", {"n": 1}, publisher_id="test")
        )
        # both buses have tried to reconnect and failed; the messages are still waiting
        await asyncio.wait_for(proxy.wait_refused(2), 10)
        assert not cast.done() and not notify.done()
        await proxy.restore()
        await wait_reconnected(server_bus, client_bus)
        await asyncio.wait_for(asyncio.gather(cast, notify), 10)

        # the cast waited in the topic's queue; the pool's durable queue kept the notification
        assert await seen.wait_for(1) == [1]
        assert [n["event_type"] for n in await pooled.wait_for(1)] == ["outage.during"]
        # everything sent after the reconnect arrives
        assert await client_bus.call(Target("outage", server="o1"), "add", a=1, b=1, timeout=5) == 2
        await client_bus.notify("outage.after", {"n": 2}, publisher_id="test")
        assert "outage.after" in [n["event_type"] for n in await plain.wait_for(1)]
        assert [n["event_type"] for n in await pooled.wait_for(2)][-1] == "outage.after"

        # stopping while the broker is unreachable does not hang
        await proxy.cut()
        async with asyncio.timeout(5):
            await server_bus.stop()
            await client_bus.stop()
    finally:
        await client_bus.stop()
        await server_bus.stop()
        await proxy.close()

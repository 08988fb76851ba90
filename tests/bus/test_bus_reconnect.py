"""RabbitMQ only: the broker drops every connection and the bus carries on after reconnecting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nimbus.bus import Bus, BusTimeout, Target, create_bus
from nimbus.bus.rabbit import RabbitBus


class Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name

    async def whoami(self, context: dict[str, Any]) -> str:
        return self.name

    async def add(self, context: dict[str, Any], a: int, b: int) -> int:
        return a + b


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

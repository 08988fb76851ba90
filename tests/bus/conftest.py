"""Fixtures for the bus suite: every test runs against the memory and the RabbitMQ backend.

RabbitMQ tests use a private vhost created for the session and deleted afterwards. If RabbitMQ
is unreachable they are skipped, or fail when CI=true.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from nimbus.bus import Bus, create_bus
from tests.support.services import unavailable

RABBIT_HOST = "127.0.0.1"
RABBIT_PORT = 5672
RABBIT_UNREACHABLE = f"RabbitMQ not reachable at {RABBIT_HOST}:{RABBIT_PORT}"


def rabbit_reachable(
    host: str = RABBIT_HOST, port: int = RABBIT_PORT, timeout: float = 1.0
) -> bool:
    """True if something accepts TCP connections on the RabbitMQ port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_rabbit(reason: str = RABBIT_UNREACHABLE) -> None:
    """Skip the test (or fail it when CI=true) because RabbitMQ cannot be used."""
    unavailable(reason)


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl quietly and return its output; raise on failure."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


async def rabbitmqctl_async(*args: str) -> str:
    """rabbitmqctl from async code, without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode()


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost for this test session, deleted afterwards."""
    if not rabbit_reachable():
        require_rabbit()
    if shutil.which("rabbitmqctl") is None:
        require_rabbit(f"{RABBIT_UNREACHABLE} (rabbitmqctl not found to create a test vhost)")
    vhost = f"nimbus-test-{secrets.token_hex(4)}"
    try:
        rabbitmqctl("add_vhost", vhost)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        require_rabbit(f"cannot create a RabbitMQ test vhost with rabbitmqctl: {stderr.strip()}")
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def rabbit_url(rabbit_vhost: str) -> str:
    """amqp URL of the session's test vhost."""
    return f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{quote(rabbit_vhost, safe='')}"


@pytest.fixture
def drop_rabbit_connections(rabbit_vhost: str) -> Callable[[], Awaitable[str]]:
    """An async callable that makes the broker close every connection to the test vhost."""

    async def drop() -> str:
        return await rabbitmqctl_async(
            "close_all_connections", "-p", rabbit_vhost, "nimbus bus test: dropping connections"
        )

    return drop


@pytest.fixture(params=["memory", "rabbit"])
def bus_url(request: pytest.FixtureRequest) -> str:
    """The bus URL of each backend in turn."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("rabbit_url"))


BusFactory = Callable[[], Awaitable[Bus]]


@pytest.fixture
async def make_bus(bus_url: str) -> AsyncIterator[BusFactory]:
    """Build started buses on bus_url; all are stopped at teardown."""
    buses: list[Bus] = []

    async def factory() -> Bus:
        bus = create_bus(bus_url, stop_grace=2.0)
        await bus.start()
        buses.append(bus)
        return bus

    yield factory
    for bus in reversed(buses):
        await bus.stop()


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    """A started bus; tests serve and subscribe on it."""
    return await make_bus()


@pytest.fixture
async def peer(bus: Bus, bus_url: str, make_bus: BusFactory) -> Bus:
    """The bus a caller uses to reach `bus`'s servers.

    memory: the same bus (two memory buses never see each other); rabbit: a second
    connection, as another process would have.
    """
    if bus_url.startswith("memory"):
        return bus
    return await make_bus()


class Collector:
    """Collects items from handlers and lets tests wait for a count without sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def handler(self, notification: dict[str, Any]) -> None:
        """Usable directly as a notification handler."""
        self.add(notification)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """Wait until at least `count` items arrived; return them."""
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


@pytest.fixture
def collector() -> Callable[[], Collector]:
    """Factory of Collector objects."""
    return Collector

"""RPC behaviour (call, cast, fanout, versions, errors), identical on both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from nimbus.bus import (
    Bus,
    BusTimeout,
    NoSuchMethod,
    RemoteError,
    Target,
    UnsupportedVersion,
    create_bus,
)


class QuotaExceeded(Exception):
    def __init__(self, resource: str, limit: int) -> None:
        super().__init__(f"quota exceeded for {resource}")
        self.resource = resource
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "limit": self.limit}


class Endpoint:
    """Records what it is asked to do; `seen` gets (server name, method, kwargs)."""

    version = "1.3"

    def __init__(self, name: str, seen: Any = None) -> None:
        self.name = name
        self.seen = seen
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()

    async def echo(self, context: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"server": self.name, "context": context, "kwargs": kwargs}

    async def record(self, context: dict[str, Any], n: int) -> str:
        if self.seen is not None:
            self.seen.add((self.name, n))
        return self.name

    async def whoami(self, context: dict[str, Any]) -> str:
        return self.name

    async def boom(self, context: dict[str, Any], message: str) -> None:
        raise ValueError(message)

    async def over_quota(self, context: dict[str, Any]) -> None:
        raise QuotaExceeded("cores", 20)

    async def slow(self, context: dict[str, Any]) -> str:
        self.slow_started.set()
        await self.release.wait()
        return "slow done"

    async def fast(self, context: dict[str, Any]) -> str:
        return "fast done"

    async def _secret(self, context: dict[str, Any]) -> str:
        return "never"


async def test_call_round_trip_with_kwargs_and_context(bus: Bus, peer: Bus) -> None:
    await bus.serve(Target("echo", server="host-1"), Endpoint("host-1"))
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    result = await peer.call(
        Target("echo"),
        "echo",
        context={"request_id": "req-1", "project_id": "p1"},
        timeout=5,
        name="vm1",
        flavor={"vcpus": 2, "tags": ["a", "b"]},
        when=when,
        ident=ident,
    )
    assert result == {
        "server": "host-1",
        "context": {"request_id": "req-1", "project_id": "p1"},
        "kwargs": {
            "name": "vm1",
            "flavor": {"vcpus": 2, "tags": ["a", "b"]},
            "when": "2024-05-01T12:30:00+00:00",
            "ident": str(ident),
        },
    }
    # no context: the endpoint gets an empty dict
    result = await peer.call(Target("echo", version="1.1"), "echo", timeout=5)
    assert result["context"] == {} and result["kwargs"] == {}


async def test_unencodable_argument_fails_in_caller(bus: Bus) -> None:
    with pytest.raises(TypeError):
        await bus.call(Target("echo"), "echo", timeout=1, thing=object())


async def test_cast_runs_without_waiting(bus: Bus, peer: Bus, collector: Any) -> None:
    seen = collector()
    await bus.serve(Target("casting"), Endpoint("only", seen))
    await peer.cast(Target("casting"), "record", context={"x": 1}, n=7)
    assert await seen.wait_for(1) == [("only", 7)]


async def test_fanout_reaches_every_server(bus: Bus, peer: Bus, collector: Any) -> None:
    seen = collector()
    await bus.serve(Target("fan", server="a"), Endpoint("a", seen))
    await bus.serve(Target("fan", server="b"), Endpoint("b", seen))
    await bus.serve(Target("other", server="c"), Endpoint("c", seen))
    await peer.fanout("fan", "record", n=1)
    items = await seen.wait_for(2)
    # a round trip through both servers after the fanout: nothing more turned up
    assert await peer.call(Target("fan", server="a"), "whoami", timeout=5) == "a"
    assert await peer.call(Target("fan", server="b"), "whoami", timeout=5) == "b"
    assert sorted(items) == [("a", 1), ("b", 1)]


async def test_work_queue_each_message_handled_once(bus: Bus, peer: Bus, collector: Any) -> None:
    seen = collector()
    await bus.serve(Target("work", server="w1"), Endpoint("w1", seen))
    await bus.serve(Target("work", server="w2"), Endpoint("w2", seen))
    for n in range(20):
        await peer.cast(Target("work"), "record", n=n)
    items = await seen.wait_for(20)
    assert sorted(n for _, n in items) == list(range(20))
    per_server = {name: sum(1 for s, _ in items if s == name) for name in ("w1", "w2")}
    assert per_server["w1"] > 0 and per_server["w2"] > 0, per_server
    # calls are spread too, and each gets exactly one answer
    answers = await asyncio.gather(
        *(peer.call(Target("work"), "record", n=100 + n, timeout=5) for n in range(10))
    )
    assert set(answers) == {"w1", "w2"}
    assert len(seen.items) == 30


async def test_server_addressed_call_goes_only_to_that_server(bus: Bus, peer: Bus) -> None:
    await bus.serve(Target("addr", server="node-a"), Endpoint("node-a"))
    await bus.serve(Target("addr", server="node-b.example.com"), Endpoint("node-b"))
    for _ in range(6):
        assert await peer.call(
            Target("addr", server="node-b.example.com"), "whoami", timeout=5
        ) == ("node-b")
        assert await peer.call(Target("addr", server="node-a"), "whoami", timeout=5) == "node-a"
    with pytest.raises(BusTimeout):
        await peer.call(Target("addr", server="node-c"), "whoami", timeout=0.3)


async def test_remote_exception_becomes_remote_error(bus: Bus, peer: Bus) -> None:
    await bus.serve(Target("errors"), Endpoint("e"))
    with pytest.raises(RemoteError) as info:
        await peer.call(Target("errors"), "boom", message="it broke", timeout=5)
    assert info.value.exc_type == "ValueError"
    assert info.value.message == "it broke"
    assert info.value.data == {}

    with pytest.raises(RemoteError) as info:
        await peer.call(Target("errors"), "over_quota", timeout=5)
    assert info.value.exc_type == "QuotaExceeded"
    assert info.value.message == "quota exceeded for cores"
    assert info.value.data == {"resource": "cores", "limit": 20}

    # bad arguments are the endpoint's TypeError
    with pytest.raises(RemoteError) as info:
        await peer.call(Target("errors"), "boom", wrong="x", timeout=5)
    assert info.value.exc_type == "TypeError"

    for method in ("missing", "_secret", "version"):
        with pytest.raises(NoSuchMethod) as nsm:
            await peer.call(Target("errors"), method, timeout=5)
        assert isinstance(nsm.value, RemoteError) and nsm.value.exc_type == "NoSuchMethod"

    # the server survived all of it, casts that raise included
    await peer.cast(Target("errors"), "boom", message="cast failure is only logged")
    assert await peer.call(Target("errors"), "whoami", timeout=5) == "e"


async def test_call_times_out_when_nobody_listens(peer: Bus) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BusTimeout):
        await peer.call(Target("nobody-home"), "whoami", timeout=0.4)
    assert loop.time() - started >= 0.35


async def test_version_refusal(bus: Bus, peer: Bus) -> None:
    await bus.serve(Target("versioned"), Endpoint("v"))  # version = "1.3"
    for ok in ("1.0", "1.3"):
        assert await peer.call(Target("versioned", version=ok), "whoami", timeout=5) == "v"
    for refused in ("1.4", "2.0", "0.9"):
        with pytest.raises(UnsupportedVersion) as info:
            await peer.call(Target("versioned", version=refused), "whoami", timeout=5)
        assert isinstance(info.value, RemoteError)
        assert info.value.data["offered"] == "1.3"
        assert info.value.data["requested"] == refused


async def test_slow_handler_does_not_block_others(bus: Bus, peer: Bus) -> None:
    endpoint = Endpoint("s")
    await bus.serve(Target("slowfast"), endpoint)
    slow = asyncio.create_task(peer.call(Target("slowfast"), "slow", timeout=10))
    await asyncio.wait_for(endpoint.slow_started.wait(), 5)
    assert await peer.call(Target("slowfast"), "fast", timeout=5) == "fast done"
    assert not slow.done()
    endpoint.release.set()
    assert await asyncio.wait_for(slow, 5) == "slow done"


async def test_stopped_server_gets_nothing_more(bus: Bus, peer: Bus) -> None:
    first = await bus.serve(Target("stopping"), Endpoint("first"))
    assert await peer.call(Target("stopping"), "whoami", timeout=5) == "first"
    await first.stop()
    await first.stop()  # idempotent
    with pytest.raises(BusTimeout):
        await peer.call(Target("stopping"), "whoami", timeout=0.3)
    await bus.serve(Target("stopping"), Endpoint("second"))
    assert await peer.call(Target("stopping"), "whoami", timeout=5) == "second"


def test_target_validation() -> None:
    assert Target("compute", "host1").routing_key == "compute:host1"
    for bad in ({"topic": ""}, {"topic": "a*"}, {"topic": "a:b"}, {"topic": "x", "version": "1"}):
        with pytest.raises(ValueError):
            Target(**bad)  # type: ignore[arg-type]


async def test_memory_buses_are_isolated() -> None:
    one, two = create_bus("memory://"), create_bus("memory://")
    await one.start()
    await two.start()
    try:
        await one.serve(Target("iso"), Endpoint("one"))
        assert await one.call(Target("iso"), "whoami", timeout=1) == "one"
        with pytest.raises(BusTimeout):
            await two.call(Target("iso"), "whoami", timeout=0.2)
    finally:
        await one.stop()
        await two.stop()


def test_unknown_url_scheme() -> None:
    with pytest.raises(ValueError):
        create_bus("kafka://localhost")

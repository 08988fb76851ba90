"""Notifications: patterns, envelope, pools, concurrency; identical on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from nimbus.bus import Bus


async def test_notify_reaches_matching_subscribers(bus: Bus, peer: Bus, collector: Any) -> None:
    identity, instances, everything = collector(), collector(), collector()
    await bus.subscribe("identity.*", identity.handler)
    await bus.subscribe("compute.instance.*", instances.handler)
    await bus.subscribe("*", everything.handler)

    await peer.notify(
        "identity.user.created",
        {"id": "u1", "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)},
        publisher_id="identity.host1",
        context={"request_id": "req-9"},
    )
    await peer.notify(
        "compute.instance.create.end",
        {"id": "i1"},
        publisher_id="compute.host2",
        priority="error",
    )
    await peer.notify("network.port.create.end", {"id": "p1"}, publisher_id="network")
    await peer.notify("identity", {"not": "matched by identity.*"}, publisher_id="x")

    everything_items = await everything.wait_for(4)
    assert [n["event_type"] for n in everything_items] == [
        "identity.user.created",
        "compute.instance.create.end",
        "network.port.create.end",
        "identity",
    ]
    [user] = await identity.wait_for(1)
    [instance] = await instances.wait_for(1)
    assert user["payload"] == {"id": "u1", "at": "2024-01-02T03:04:05+00:00"}
    assert user["publisher_id"] == "identity.host1"
    assert user["priority"] == "INFO"
    assert user["context"] == {"request_id": "req-9"}
    assert datetime.fromisoformat(user["timestamp"]).tzinfo is not None
    assert set(user) == {
        "event_type",
        "payload",
        "publisher_id",
        "priority",
        "timestamp",
        "message_id",
        "context",
    }
    assert instance["priority"] == "ERROR" and instance["context"] == {}
    assert len({n["message_id"] for n in everything_items}) == 4
    # nothing extra arrived for the narrower patterns
    assert len(identity.items) == 1 and len(instances.items) == 1


async def test_pools_share_work_plain_subscribers_get_all(
    bus: Bus, peer: Bus, collector: Any
) -> None:
    shared, plain, other_pool = collector(), collector(), collector()

    def member(name: str) -> Any:
        async def handler(notification: dict[str, Any]) -> None:
            shared.add((name, notification["payload"]["n"]))

        return handler

    await bus.subscribe("job.*", member("a"), pool="workers")
    await bus.subscribe("job.*", member("b"), pool="workers")
    await bus.subscribe("job.*", plain.handler)
    await bus.subscribe("job.*", other_pool.handler, pool="auditors")

    for n in range(20):
        await peer.notify("job.done", {"n": n}, publisher_id="test")

    assert sorted(i["payload"]["n"] for i in await plain.wait_for(20)) == list(range(20))
    assert sorted(i["payload"]["n"] for i in await other_pool.wait_for(20)) == list(range(20))
    items = await shared.wait_for(20)
    assert sorted(n for _, n in items) == list(range(20))
    assert {name for name, _ in items} == {"a", "b"}


async def test_slow_subscriber_does_not_block_others(bus: Bus, peer: Bus, collector: Any) -> None:
    release = asyncio.Event()
    slow_started = asyncio.Event()
    done = collector()

    async def handler(notification: dict[str, Any]) -> None:
        if notification["payload"]["slow"]:
            slow_started.set()
            await release.wait()
        done.add(notification["payload"]["n"])

    await bus.subscribe("work.*", handler)
    await peer.notify("work.item", {"slow": True, "n": 0}, publisher_id="t")
    await asyncio.wait_for(slow_started.wait(), 5)
    await peer.notify("work.item", {"slow": False, "n": 1}, publisher_id="t")
    assert await done.wait_for(1) == [1]
    release.set()
    assert await done.wait_for(2) == [1, 0]


async def test_failing_handler_keeps_subscription_alive(
    bus: Bus, peer: Bus, collector: Any
) -> None:
    got = collector()

    async def handler(notification: dict[str, Any]) -> None:
        if notification["payload"].get("fail"):
            raise RuntimeError("handler bug")
        got.add(notification["payload"]["n"])

    await bus.subscribe("flaky.*", handler)
    await peer.notify("flaky.x", {"fail": True}, publisher_id="t")
    await peer.notify("flaky.x", {"n": 2}, publisher_id="t")
    assert await got.wait_for(1) == [2]


async def test_stopped_subscription_gets_nothing_more(bus: Bus, peer: Bus, collector: Any) -> None:
    first, second = collector(), collector()
    sub = await bus.subscribe("stop.*", first.handler)
    await bus.subscribe("stop.*", second.handler)
    await peer.notify("stop.one", {}, publisher_id="t")
    await first.wait_for(1)
    await second.wait_for(1)
    await sub.stop()
    await peer.notify("stop.two", {}, publisher_id="t")
    await second.wait_for(2)
    assert len(first.items) == 1

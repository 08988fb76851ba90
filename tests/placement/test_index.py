"""The in-memory index stays what the database says: after a mix of writes through the API
(providers, trees, inventories, traits, aggregates, claims, failures), the live index equals
one freshly loaded from the database."""

from __future__ import annotations

import random
from typing import Any

from nimbus.cloud import Cloud
from nimbus.placement.index import Index
from tests.placement.conftest import Placement, new_uuid
from tests.support.cloud import RunningCloud


def snapshot(index: Index) -> dict[str, Any]:
    return {node.uuid: (node.parent, node.root, node.generation,
                        {rc: (i.total, i.reserved, i.min_unit, i.max_unit, i.step_size,
                              i.allocation_ratio) for rc, i in node.inv.items()},
                        dict(node.used), set(node.traits), set(node.aggs))
            for node in index.nodes.values()}


def compare(cloud: RunningCloud) -> tuple[dict[str, Any], dict[str, Any]]:
    async def both(c: Cloud) -> tuple[dict[str, Any], dict[str, Any]]:
        svc: Any = c.services["placement"]
        fresh = Index()
        async with svc.db.session() as session:
            await fresh.load(session)
        live = await svc.fresh_index()
        return snapshot(live), snapshot(fresh)

    result: tuple[dict[str, Any], dict[str, Any]] = cloud.call(both)
    return result


def test_index_follows_the_database(pcloud: RunningCloud, placement: Placement,
                                    name: str) -> None:
    rng = random.Random(7)
    roots = [placement.provider(f"{name}-{i}", VCPU=8, MEMORY_MB=1024) for i in range(4)]
    children = [placement.provider(f"{name}-c{i}", parent=roots[i % 2], DISK_GB=50)
                for i in range(3)]
    consumers: list[str] = []
    for step in range(40):
        action = rng.choice(["claim", "claim", "claim", "free", "inventory", "traits",
                             "aggregates", "overclaim", "reparent"])
        rp = rng.choice(roots)
        if action == "claim":
            consumer = new_uuid()
            target = {rp: {"VCPU": rng.randint(1, 2)}, rng.choice(children): {"DISK_GB": 1}}
            if placement.claim(consumer, target).status_code == 204:
                consumers.append(consumer)
        elif action == "free" and consumers:
            placement.delete(f"/allocations/{consumers.pop(rng.randrange(len(consumers)))}")
        elif action == "inventory":
            placement.put(f"/resource_providers/{rp}/inventories", json={
                "resource_provider_generation": placement.generation(rp), "inventories": {
                    "VCPU": {"total": rng.randint(8, 16)}, "MEMORY_MB": {"total": 1024}}})
        elif action == "traits":
            placement.traits(rp, rng.choice(["HW_CPU_X86_AVX2", "STORAGE_DISK_SSD"]))
        elif action == "aggregates":
            placement.aggregates(rp, new_uuid())
        elif action == "overclaim":
            assert placement.claim(new_uuid(), {rp: {"VCPU": 10_000}}).status_code == 409
        elif action == "reparent":
            child = rng.choice(children)
            placement.put(f"/resource_providers/{child}", json={
                "name": placement.get(f"/resource_providers/{child}").json()["name"],
                "parent_provider_uuid": rng.choice(roots[:2])})
        if step % 10 == 9:
            live, fresh = compare(pcloud)
            assert live == fresh
    # A stale index (as after a write that failed mid-commit) reloads itself when read.
    pcloud.call(_invalidate)
    live, fresh = compare(pcloud)
    assert live == fresh
    for consumer in consumers:
        placement.delete(f"/allocations/{consumer}")


async def _invalidate(c: Cloud) -> None:
    svc: Any = c.services["placement"]
    svc.index.invalidate()

"""Concurrent claims never overcommit, on SQLite, PostgreSQL and MariaDB: many clients race for
the last units of a provider; exactly as many win as fit, the rest get 409 (clients ask again
after a 409 concurrent_update, as Nova does), and the database,
the usages API and the candidates (served from the in-memory index) agree afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.placement.conftest import Placement, admin_token, new_uuid
from tests.support.cloud import RunningCloud
from tests.support.services import create_database, drop_database

CAPACITY = 12
CLIENTS = 40


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningCloud]:
    kind = request.param
    url, dbname = (None, None) if kind == "sqlite" else create_database(kind)
    running = RunningCloud(tmp_path / "state", services=["identity", "placement"],
                           database_url=url).start()
    try:
        yield running
    finally:
        running.stop()
        if dbname is not None:
            drop_database(kind, dbname)


async def _race(base: str, token: str, rps: list[str], amount: int) -> list[int]:
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "placement 1.39"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=60) as client:
        async def claim(i: int) -> int:
            rp = rps[i % len(rps)]
            consumer = new_uuid()
            while True:
                resp = await client.put(f"/allocations/{consumer}", json={
                    "allocations": {rp: {"resources": {"VCPU": amount, "MEMORY_MB": 64}}},
                    "project_id": "race", "user_id": "race", "consumer_generation": None,
                    "consumer_type": "INSTANCE"})
                # As Nova does: a claim that lost every retry to other writers
                # (placement.concurrent_update) is asked again; one that does not fit is not.
                if resp.status_code != 409 or \
                        resp.json()["errors"][0].get("code") != "placement.concurrent_update":
                    return resp.status_code

        return await asyncio.gather(*(claim(i) for i in range(CLIENTS)))


def test_concurrent_claims_never_overcommit(backend_cloud: RunningCloud) -> None:
    api = Placement(backend_cloud, admin_token(backend_cloud))
    rps = [api.provider(f"race-{i}") for i in range(2)]
    for rp in rps:
        api.inventory(rp, VCPU={"total": CAPACITY // 2, "allocation_ratio": 2.0},
                      MEMORY_MB={"total": 100000})
    statuses = asyncio.run(_race(f"{backend_cloud.url}/placement",
                                 admin_token(backend_cloud), rps, 1))
    assert sorted(set(statuses)) == [204, 409], statuses
    assert statuses.count(204) == 2 * CAPACITY  # each provider fits CAPACITY units
    for rp in rps:
        usage = api.get(f"/resource_providers/{rp}/usages").json()["usages"]
        assert usage["VCPU"] == CAPACITY
        allocs = api.get(f"/resource_providers/{rp}/allocations").json()["allocations"]
        assert len(allocs) == CAPACITY
    # The index followed every commit: no capacity left to offer, the usage it reports is
    # the database's.
    assert api.candidates("resources=VCPU:1")["allocation_requests"] == []
    summaries = api.candidates("resources=MEMORY_MB:1")["provider_summaries"]
    assert {summaries[rp]["resources"]["VCPU"]["used"] for rp in rps} == {CAPACITY}
    assert api.get("/usages?project_id=race").json()["usages"]["INSTANCE"] == {
        "VCPU": 2 * CAPACITY, "MEMORY_MB": 64 * 2 * CAPACITY, "consumer_count": 2 * CAPACITY}
    # Inventory updates racing with claims keep generations honest too.
    gen = api.generation(rps[0])
    first = api.put(f"/resource_providers/{rps[0]}/inventories", json={
        "resource_provider_generation": gen, "inventories": {
            "VCPU": {"total": CAPACITY, "allocation_ratio": 2.0},
            "MEMORY_MB": {"total": 100000}}})
    second = api.put(f"/resource_providers/{rps[0]}/inventories", json={
        "resource_provider_generation": gen, "inventories": {"VCPU": {"total": 1}}})
    assert (first.status_code, second.status_code) == (200, 409)
    assert len(api.candidates("resources=VCPU:1")["allocation_requests"]) == 1


async def _race_batches(base: str, token: str, rps: list[str]) -> list[int]:
    """Each client claims for two new consumers at once, one on each provider."""
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "placement 1.39"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=60) as client:
        async def claim() -> int:
            body = {new_uuid(): {
                "allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "batch",
                "user_id": "batch", "consumer_generation": None, "consumer_type": "INSTANCE"}
                for rp in rps}
            while True:
                resp = await client.post("/allocations", json=body)
                if resp.status_code != 409 or \
                        resp.json()["errors"][0].get("code") != "placement.concurrent_update":
                    return resp.status_code

        return await asyncio.gather(*(claim() for _ in range(CLIENTS)))


def test_concurrent_batch_claims_over_several_providers(backend_cloud: RunningCloud) -> None:
    """A claim touching several providers moves each one's generation once, all or nothing;
    a consumer that exists already is refused and leaves nothing behind."""
    api = Placement(backend_cloud, admin_token(backend_cloud))
    rps = [api.provider(f"batch-{i}") for i in range(2)]
    for rp in rps:
        api.inventory(rp, VCPU={"total": CAPACITY})
    before = {rp: api.generation(rp) for rp in rps}
    statuses = asyncio.run(_race_batches(f"{backend_cloud.url}/placement",
                                         admin_token(backend_cloud), rps))
    assert sorted(set(statuses)) == [204, 409], statuses
    assert statuses.count(204) == CAPACITY
    for rp in rps:
        assert api.generation(rp) == before[rp] + CAPACITY
        usage = api.get(f"/resource_providers/{rp}/usages").json()["usages"]
        assert usage["VCPU"] == CAPACITY
    assert api.get("/usages?project_id=batch").json()["usages"]["INSTANCE"]["consumer_count"] \
        == 2 * CAPACITY
    # Free one unit on each provider, then claim it back with one new consumer and one that
    # exists already (consumer_generation null): 409, and neither is written.
    taken = next(iter(api.get(f"/resource_providers/{rps[0]}/allocations")
                      .json()["allocations"]))
    other = next(iter(api.get(f"/resource_providers/{rps[1]}/allocations")
                      .json()["allocations"]))
    assert api.delete(f"/allocations/{taken}").status_code == 204
    assert api.delete(f"/allocations/{other}").status_code == 204
    existing = next(iter(api.get(f"/resource_providers/{rps[1]}/allocations")
                         .json()["allocations"]))
    fresh = new_uuid()
    resp = api.post("/allocations", json={
        fresh: {"allocations": {rps[0]: {"resources": {"VCPU": 1}}}, "project_id": "batch",
                "user_id": "batch", "consumer_generation": None, "consumer_type": "INSTANCE"},
        existing: {"allocations": {rps[1]: {"resources": {"VCPU": 1}}},
                   "project_id": "batch", "user_id": "batch", "consumer_generation": None,
                   "consumer_type": "INSTANCE"}})
    assert resp.status_code == 409, resp.text
    assert api.get(f"/allocations/{fresh}").json()["allocations"] == {}
    for rp in rps:
        usage = api.get(f"/resource_providers/{rp}/usages").json()["usages"]
        assert usage["VCPU"] == CAPACITY - 1

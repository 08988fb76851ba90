"""IPAM under concurrency: many clients allocating from one subnet at once never get the same
address twice, every address of the pool is handed out, and exhaustion is a clean 409
IpAddressGenerationFailure; on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.network.conftest import Api, token_for
from tests.support import services
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

CLIENTS = 16


def exhaust(cloud: RunningCloud, api: Api, name: str, cidr: str) -> None:
    net, sub = api.network(name, cidr)
    size = ipaddress.ip_network(cidr).num_addresses - 3  # network, gateway, broadcast
    token = token_for(cloud, "admin", ADMIN_PASSWORD, "admin")
    url = f"{cloud.url}/network/v2.0/ports"

    def worker(_: int) -> tuple[list[str], list[str]]:
        got, refused = [], []
        with httpx.Client(headers={"X-Auth-Token": token}, timeout=60) as client:
            while True:
                resp = client.post(url, json={"port": {"network_id": net["id"]}})
                if resp.status_code == 201:
                    got.append(resp.json()["port"]["fixed_ips"][0]["ip_address"])
                    continue
                refused.append(resp.json()["NeutronError"]["type"])
                return got, refused

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(worker, range(CLIENTS)))
    addresses = [ip for got, _ in results for ip in got]
    assert len(addresses) == len(set(addresses)), "an address was handed out twice"
    assert len(addresses) == size
    assert {t for _, refused in results for t in refused} == {"IpAddressGenerationFailure"}
    pool_range = sub["allocation_pools"][0]
    first = ipaddress.ip_address(pool_range["start"])
    last = ipaddress.ip_address(pool_range["end"])
    assert all(first <= ipaddress.ip_address(a) <= last for a in addresses)


def spread(cloud: RunningCloud, api: Api, name: str, cidr: str, each: int = 10) -> None:
    """A large, nearly empty pool: addresses are picked at random without looking first;
    clashes must still never give one address twice."""
    net, _ = api.network(name + "-big", cidr)
    token = token_for(cloud, "admin", ADMIN_PASSWORD, "admin")
    url = f"{cloud.url}/network/v2.0/ports"

    def worker(_: int) -> list[str]:
        with httpx.Client(headers={"X-Auth-Token": token}, timeout=60) as client:
            out = []
            for _ in range(each):
                resp = client.post(url, json={"port": {"network_id": net["id"]}})
                assert resp.status_code == 201, resp.text
                out.append(resp.json()["port"]["fixed_ips"][0]["ip_address"])
            return out

    with ThreadPoolExecutor(CLIENTS) as pool:
        addresses = [ip for got in pool.map(worker, range(CLIENTS)) for ip in got]
    assert len(addresses) == len(set(addresses)) == CLIENTS * each
    listed = api.get("/ports", params={"network_id": net["id"]}).json()["ports"]
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in listed) == sorted(addresses)


def test_concurrent_allocation_on_sqlite(cloud: RunningCloud, api: Api, name: str) -> None:
    exhaust(cloud, api, name, "10.120.0.0/25")
    spread(cloud, api, name, "10.136.0.0/16")


@pytest.fixture(params=["postgresql", "mariadb"])
def real_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningCloud]:
    with services.database(request.param) as url:
        running = RunningCloud(tmp_path / "state", services=["identity", "network"],
                               database_url=url).start()
        try:
            yield running
        finally:
            running.stop()


def test_concurrent_allocation_on_real_databases(real_cloud: RunningCloud, name: str) -> None:
    token = token_for(real_cloud, "admin", ADMIN_PASSWORD, "admin")
    project = httpx.get(f"{real_cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
    api = Api(real_cloud, token, project)
    exhaust(real_cloud, api, name, "10.121.0.0/25")
    spread(real_cloud, api, name, "10.137.0.0/16")
    segments_stay_unique(real_cloud, token, name)


def segments_stay_unique(cloud: RunningCloud, token: str, name: str) -> None:
    """Networks created at once on separate database sessions get distinct VXLAN ids."""
    url = f"{cloud.url}/network/v2.0/networks"

    def create(i: int) -> int:
        with httpx.Client(headers={"X-Auth-Token": token}, timeout=60) as client:
            resp = client.post(url, json={"network": {"name": f"{name}-{i}"}})
            assert resp.status_code == 201, resp.text
            seg: int = resp.json()["network"]["provider:segmentation_id"]
            return seg

    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = list(pool.map(create, range(CLIENTS * 2)))
    assert len(set(ids)) == len(ids)

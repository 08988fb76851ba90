"""Networking figures: port create rate, listing 10,000 ports with a filter, and 16 clients
allocating every address of a /22 at once.

    python -m bench.network [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import time
import uuid
from typing import Any

import httpx

from bench.common import BenchCloud, wrk

TOTAL_PORTS = 10_000


def _client(cloud: BenchCloud, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{cloud.url}/network/v2.0",
                        headers={"X-Auth-Token": token}, timeout=120)


def _network(client: httpx.Client, name: str, cidr: str) -> tuple[str, str]:
    net = client.post("/networks", json={"network": {"name": name}})
    net.raise_for_status()
    nid = net.json()["network"]["id"]
    sub = client.post("/subnets", json={"subnet": {"network_id": nid, "cidr": cidr,
                                                   "ip_version": 4}})
    sub.raise_for_status()
    return nid, sub.json()["subnet"]["id"]


def _fill(client: httpx.Client, network_id: str, device_id: str) -> int:
    """Bulk-create ports until the cloud holds TOTAL_PORTS; ten of them carry device_id."""
    count = len(client.get("/ports", params={"fields": "id"}).json()["ports"])
    marked = False
    while count < TOTAL_PORTS:
        batch = min(200, TOTAL_PORTS - count)
        ports: list[dict[str, Any]] = [{"network_id": network_id} for _ in range(batch)]
        if not marked:
            for p in ports[:10]:
                p["device_id"] = device_id
            marked = True
        resp = client.post("/ports", json={"ports": ports})
        resp.raise_for_status()
        count += batch
    return count


async def _exhaust(cloud: BenchCloud, token: str, network_id: str,
                   clients: int) -> tuple[list[str], list[str], float]:
    url = f"{cloud.url}/network/v2.0/ports"
    got: list[str] = []
    refused: list[str] = []

    async def worker() -> None:
        async with httpx.AsyncClient(headers={"X-Auth-Token": token}, timeout=120) as client:
            while True:
                resp = await client.post(url, json={"port": {"network_id": network_id}})
                if resp.status_code == 201:
                    got.append(resp.json()["port"]["fixed_ips"][0]["ip_address"])
                else:
                    refused.append(resp.json()["NeutronError"]["type"])
                    return

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return got, refused, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()

    cloud = BenchCloud().start()
    print(f"nimbus up ready: {cloud.ready_seconds:.2f} s")
    try:
        token = cloud.token()
        client = _client(cloud, token)
        project = httpx.get(f"{cloud.url}/identity/v3/auth/tokens", headers={
            "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
        client.put(f"/quotas/{project}", json={"quota": {"port": -1, "network": -1,
                                                         "subnet": -1}}).raise_for_status()
        big, _ = _network(client, "bench-big", "10.128.0.0/14")
        headers = {"X-Auth-Token": token}
        wrk("warm-up", f"{cloud.url}/network/v2.0/ports", concurrency=8, seconds=2,
            method="POST", body={"port": {"network_id": big}}, headers=headers)
        results = [wrk("POST /v2.0/ports (IPAM on a /14)", f"{cloud.url}/network/v2.0/ports",
                       concurrency=8, seconds=args.seconds, method="POST",
                       body={"port": {"network_id": big}}, headers=headers)]
        device = str(uuid.uuid4())
        total = _fill(client, big, device)
        for c in (1, 8):
            results.append(wrk(f"GET /v2.0/ports?device_id= ({total} ports)",
                               f"{cloud.url}/network/v2.0/ports?device_id={device}",
                               concurrency=c, seconds=args.seconds, headers=headers))
        results.append(wrk(f"GET /v2.0/ports?limit=100 ({total} ports)",
                           f"{cloud.url}/network/v2.0/ports?limit=100",
                           concurrency=8, seconds=args.seconds, headers=headers))
        for r in results:
            print(r.row())
        slash22, sub = _network(client, "bench-22", "10.200.0.0/22")
        pool = ipaddress.ip_network("10.200.0.0/22").num_addresses - 3
        got, refused, seconds = asyncio.run(_exhaust(cloud, token, slash22, 16))
        duplicates = len(got) - len(set(got))
        print(f"/22 by 16 clients: {len(got)}/{pool} addresses in {seconds:.1f} s "
              f"({len(got) / seconds:.0f} ports/s), duplicates {duplicates}, "
              f"refusals {sorted(set(refused))}")
        print(f"resident memory after load: {cloud.rss_mb():.0f} MB")
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()

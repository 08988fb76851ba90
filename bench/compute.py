"""Compute figures (fake driver, all-in-one): API → ACTIVE latency over sequential boots
(with a port on the private network, and without networks), and 10,000 servers onto 1,000
fake hypervisors in batches of 100, with the cloud's resident memory.

    python -m bench.compute [--boots 200] [--servers 10000] [--hosts 1000] [--batch 100]
                            [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx

from bench.common import BenchCloud

MICROVERSION = {"OpenStack-API-Version": "compute 2.100"}


def _env(hosts: int, database_url: str | None, local: bool) -> dict[str, str]:
    env = {"NIMBUS_COMPUTE__FAKE_HOSTS": str(hosts), "NIMBUS_LOG_LEVEL": "warning"}
    if not local:
        env["NIMBUS_COMPUTE__HOSTS"] = "[]"
    if database_url:
        env["NIMBUS_DATABASE_URL"] = database_url
    return env


def _setup(cloud: BenchCloud, hosts: int) -> tuple[httpx.Client, str, str]:
    token = cloud.token()
    headers = {"X-Auth-Token": token}
    client = httpx.Client(base_url=f"{cloud.url}/compute/v2.1",
                          headers={**headers, **MICROVERSION}, timeout=120)
    me = httpx.get(f"{cloud.url}/identity/v3/auth/tokens",
                   headers={**headers, "X-Subject-Token": token}).json()["token"]
    project = me["project"]["id"]
    client.put(f"/os-quota-sets/{project}", json={"quota_set": {
        "instances": -1, "cores": -1, "ram": -1}}).raise_for_status()
    image = httpx.post(f"{cloud.url}/image/v2/images", headers=headers, json={
        "name": "bench", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}).json()
    httpx.put(f"{cloud.url}/image/v2/images/{image['id']}/file",
              headers={**headers, "Content-Type": "application/octet-stream"},
              content=b"\0" * 4096).raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listed = client.get("/os-hypervisors").json().get("hypervisors", [])
        rps = httpx.get(f"{cloud.url}/placement/resource_providers", headers=headers).json()
        if len(listed) >= hosts and len(rps.get("resource_providers", [])) >= hosts:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("the hypervisors did not register")
    nets = httpx.get(f"{cloud.url}/network/v2.0/networks", headers=headers,
                     params={"name": "private"}).json()["networks"]
    return client, image["id"], nets[0]["id"] if nets else ""


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def boot_latency(client: httpx.Client, image: str, networks: Any, boots: int) -> list[float]:
    """Seconds from POST /servers to ACTIVE, one server at a time (deleted afterwards)."""
    latencies = []
    for i in range(boots):
        started = time.perf_counter()
        resp = client.post("/servers", json={"server": {
            "name": f"lat-{i}", "imageRef": image, "flavorRef": "42", "networks": networks}})
        resp.raise_for_status()
        server_id = resp.json()["server"]["id"]
        while True:
            body = client.get(f"/servers/{server_id}").json()["server"]
            if body["status"] == "ACTIVE":
                break
            if body["status"] == "ERROR":
                raise RuntimeError(f"boot failed: {body.get('fault')}")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - started)
        client.delete(f"/servers/{server_id}").raise_for_status()
        while client.get(f"/servers/{server_id}").status_code != 404:
            time.sleep(0.005)
    return latencies


def scale(client: httpx.Client, image: str, servers: int, batch: int) -> tuple[float, int]:
    """Batches of `batch` servers (one request each, networks none), each waited for."""
    started = time.perf_counter()
    active = 0
    for b in range(servers // batch):
        resp = client.post("/servers", json={"server": {
            "name": f"s{b}", "imageRef": image, "flavorRef": "42", "networks": "none",
            "min_count": batch, "max_count": batch, "return_reservation_id": True}})
        resp.raise_for_status()
        reservation = resp.json()["reservation_id"]
        while True:
            done = client.get("/servers", params={"reservation_id": reservation,
                                                  "status": "ACTIVE", "limit": batch})
            if len(done.json()["servers"]) == batch:
                break
            failed = client.get("/servers", params={"reservation_id": reservation,
                                                    "status": "ERROR", "limit": 1})
            if failed.json()["servers"]:
                raise RuntimeError("a server of the batch went to ERROR")
            time.sleep(0.05)
        active += batch
    return time.perf_counter() - started, active


def run_latency(boots: int, database_url: str | None) -> None:
    cloud = BenchCloud(env=_env(0, database_url, local=True)).start()
    try:
        client, image, net = _setup(cloud, 1)
        where = "PostgreSQL" if database_url else "SQLite"
        for label, networks in (("with a port", [{"uuid": net}]), ("no network", "none")):
            boot_latency(client, image, networks, 5)  # warm caches
            got = boot_latency(client, image, networks, boots)
            print(f"boot → ACTIVE ({where}, {label}, {boots} sequential): "
                  f"p50 {statistics.median(got) * 1000:.1f} ms  "
                  f"p99 {_percentile(got, 99) * 1000:.1f} ms  "
                  f"max {max(got) * 1000:.1f} ms")
    finally:
        cloud.stop()


def run_scale(servers: int, hosts: int, batch: int, database_url: str | None) -> None:
    started = time.monotonic()
    cloud = BenchCloud(env=_env(hosts, database_url, local=False))
    cloud.start()
    try:
        client, image, _ = _setup(cloud, hosts)
        registered = time.monotonic() - started
        rss_before = cloud.rss_mb()
        seconds, active = scale(client, image, servers, batch)
        where = "PostgreSQL" if database_url else "SQLite"
        print(f"{active} servers onto {hosts} fake hypervisors ({where}, batches of {batch}): "
              f"{seconds:.1f} s ({active / seconds:.0f} servers/s); hosts registered in "
              f"{registered:.1f} s; RSS {rss_before:.0f} MB before, {cloud.rss_mb():.0f} MB "
              "after")
    finally:
        cloud.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=200)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", choices=["latency", "scale"], default=None)
    args = parser.parse_args(argv)
    if args.only in (None, "latency"):
        run_latency(args.boots, args.database_url)
    if args.only in (None, "scale"):
        run_scale(args.servers, args.hosts, args.batch, args.database_url)


if __name__ == "__main__":
    main()

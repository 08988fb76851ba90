"""Placement figures: GET /allocation_candidates at 1,000 and 10,000 providers, and claims
(PUT /allocations/{consumer}, a new consumer each time) at c=8.

    python -m bench.placement [--seconds 8] [--sizes 1000,10000]

Each size gets a fresh all-in-one (identity and placement only) on SQLite, filled over the
API: compute-node-like providers (VCPU, MEMORY_MB, DISK_GB), a trait on every tenth, and an
instance allocated on every other one, so capacity checks see real usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import BenchCloud, LoadResult, _ms, wrk
from bench.image import cpu_seconds

SERVICES = '["identity", "placement"]'
VERSION = {"OpenStack-API-Version": "placement 1.39"}


async def fill(url: str, token: str, count: int, concurrency: int = 16, first: int = 0
               ) -> list[str]:
    headers = {"X-Auth-Token": token, **VERSION}
    uuids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=f"{url}/placement", headers=headers,
                                 timeout=60) as client:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                rp = str(uuid.uuid4())
                r = await client.post("/resource_providers",
                                      json={"name": f"compute-{first + i:05d}", "uuid": rp})
                r.raise_for_status()
                r = await client.put(f"/resource_providers/{rp}/inventories", json={
                    "resource_provider_generation": 0, "inventories": {
                        "VCPU": {"total": 16, "allocation_ratio": 4.0},
                        "MEMORY_MB": {"total": 32768, "reserved": 512},
                        "DISK_GB": {"total": 512}}})
                r.raise_for_status()
                gen = 1
                if i % 10 == 0:
                    r = await client.put(f"/resource_providers/{rp}/traits", json={
                        "traits": ["HW_CPU_X86_AVX2", "STORAGE_DISK_SSD"],
                        "resource_provider_generation": gen})
                    r.raise_for_status()
                if i % 2 == 0:
                    r = await client.put(f"/allocations/{uuid.uuid4()}", json={
                        "allocations": {rp: {"resources": {"VCPU": 2, "MEMORY_MB": 2048,
                                                           "DISK_GB": 20}}},
                        "project_id": "bench", "user_id": "bench",
                        "consumer_generation": None, "consumer_type": "INSTANCE"})
                    r.raise_for_status()
                uuids.append(rp)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return uuids


_CLAIM_LUA = """
math.randomseed(%(seed)d)
local rps = {%(rps)s}
local headers = {}
headers["Content-Type"] = "application/json"
headers["X-Auth-Token"] = "%(token)s"
headers["OpenStack-API-Version"] = "placement 1.39"
local function hex(n) local s = "" for i = 1, n do s = s .. string.format("%%x",
  math.random(0, 15)) end return s end
request = function()
  local consumer = hex(8) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(12)
  local rp = rps[math.random(#rps)]
  local body = '{"allocations": {"' .. rp .. '": {"resources": {"VCPU": 1, ' ..
    '"MEMORY_MB": 64}}}, "project_id": "bench", "user_id": "bench", ' ..
    '"consumer_generation": null, "consumer_type": "INSTANCE"}'
  return wrk.format("PUT", "/placement/allocations/" .. consumer, headers, body)
end
"""


def claims(url: str, token: str, rps: list[str], concurrency: int, seconds: int) -> LoadResult:
    script = _CLAIM_LUA % {"seed": int(time.time()), "token": token,
                           "rps": ", ".join(f'"{rp}"' for rp in rps)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        path = fh.name
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
                              "-s", path, url], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(path)
    rps_text = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return LoadResult("claim PUT /allocations/{new}", concurrency,
                      float(rps_text.group(1)) if rps_text else 0.0,
                      _ms(lat.get("50", "nan")), _ms(lat.get("99", "nan")),
                      int(errors.group(1)) if errors else 0)


def run_size(count: int, seconds: int) -> None:
    cloud = BenchCloud(env={"NIMBUS_SERVICES": SERVICES}).start()
    try:
        token = cloud.token()
        started, cpu = time.monotonic(), cpu_seconds(cloud)
        rps = asyncio.run(fill(cloud.url, token, count))
        print(f"\n{count} providers filled over the API in {time.monotonic() - started:.1f} s "
              f"(server CPU {(cpu_seconds(cloud) - cpu) / count * 1000:.1f} ms a provider); "
              f"resident memory {cloud.rss_mb():.0f} MB; load {_load()}")
        base = f"{cloud.url}/placement/allocation_candidates"
        headers = {"X-Auth-Token": token, **VERSION}
        simple = "resources=VCPU:1,MEMORY_MB:512,DISK_GB:10"
        body = httpx.get(f"{base}?{simple}", headers=headers, timeout=60).json()
        print(f"  one answer: {len(body['allocation_requests'])} allocation requests, "
              f"{len(body['provider_summaries'])} provider summaries")
        queries = [(f"candidates {count} (all)", simple)]
        if count > 1000:
            queries.append((f"candidates {count} limit=1000", simple + "&limit=1000"))
        queries.append((f"candidates {count} required trait",
                        simple + "&required=STORAGE_DISK_SSD,!COMPUTE_STATUS_DISABLED"))
        # Server CPU per request beside each figure: the load-independent cost.
        for label, query in queries:
            cpu = cpu_seconds(cloud)
            r = wrk(label, f"{base}?{query}", concurrency=1, seconds=seconds, headers=headers)
            _row(r, cpu_seconds(cloud) - cpu, seconds)
        cpu = cpu_seconds(cloud)
        r = claims(cloud.url, token, rps, 8, seconds)
        _row(r, cpu_seconds(cloud) - cpu, seconds)
        print(f"  resident memory after load: {cloud.rss_mb():.0f} MB")
    finally:
        cloud.stop()


def _row(r: LoadResult, cpu: float, seconds: int) -> None:
    done = r.rps * seconds
    per = f"{cpu / done * 1000:.2f}" if done else "-"
    print(f"  {r.row()}  server CPU {per} ms/req  load {_load()}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--sizes", default="1000,10000")
    args, _ = parser.parse_known_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, args.seconds)


if __name__ == "__main__":
    main()

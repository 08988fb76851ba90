"""Image figures: streamed upload and download of a large raw file against `cp` of the same
file on the same disk (same run), server memory growth meanwhile, and GET /v2/images latency
with many images.

    python -m bench.image [--size-gib 2] [--images 10000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import BenchCloud, password_body, wrk

CHUNK = 1 << 20


def cpu_seconds(cloud: BenchCloud) -> float:
    """User + system CPU time of the server so far (the load-independent cost)."""
    assert cloud.proc is not None
    fields = Path(f"/proc/{cloud.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssWatch:
    """Samples the server's resident memory every 20 ms until stopped."""

    def __init__(self, cloud: BenchCloud) -> None:
        self.cloud = cloud
        self.base = cloud.rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.cloud.rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak - self.base


def make_source(folder: Path, size: int) -> Path:
    path = folder / "source.raw"
    block = os.urandom(CHUNK)
    with open(path, "wb") as fh:
        for _ in range(size // CHUNK):
            fh.write(block)
    return path


def timed_sync() -> float:
    started = time.perf_counter()
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def timed_cp(source: Path) -> tuple[float, float]:
    """cp of the file from a synced page cache: (seconds to copy, seconds to reach the disk)."""
    dest = source.with_name("copy.raw")
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(dest)], check=True)
    elapsed = time.perf_counter() - started
    flushed = timed_sync()
    dest.unlink()
    subprocess.run(["sync"], check=True)
    return elapsed, elapsed + flushed


def curl(*args: str) -> tuple[str, float]:
    """Run curl (a C client, like cp is a C copier); returns (http code, seconds)."""
    started = time.perf_counter()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
                         capture_output=True, text=True, check=True).stdout
    return out.strip(), time.perf_counter() - started


def upload(cloud: BenchCloud, headers: dict[str, str], source: Path) -> tuple[str, float, float]:
    api = f"{cloud.url}/image/v2/images"
    image = httpx.post(api, json={"name": "bench-large", "disk_format": "raw",
                                  "container_format": "bare"}, headers=headers).json()
    watch = RssWatch(cloud)
    code, elapsed = curl("-T", str(source), "-X", "PUT", "-H",
                         f"X-Auth-Token: {headers['X-Auth-Token']}", "-H",
                         "Content-Type: application/octet-stream", f"{api}/{image['id']}/file")
    growth = watch.stop()
    if code != "204":
        raise SystemExit(f"upload failed: HTTP {code}")
    return image["id"], elapsed, growth


def download(cloud: BenchCloud, headers: dict[str, str], image_id: str,
             dest: Path) -> tuple[float, float]:
    watch = RssWatch(cloud)
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-f", "-o", str(dest), "-H",
                    f"X-Auth-Token: {headers['X-Auth-Token']}",
                    f"{cloud.url}/image/v2/images/{image_id}/file"], check=True)
    elapsed = time.perf_counter() - started
    return elapsed, watch.stop()


async def create_many(cloud: BenchCloud, headers: dict[str, str], count: int) -> float:
    started = time.perf_counter()
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=f"{cloud.url}/image", headers=headers,
                                 timeout=60) as client:
        async def one(i: int) -> None:
            async with sem:
                resp = await client.post("/v2/images", json={
                    "name": f"bench-{i:05d}", "disk_format": "qcow2",
                    "container_format": "bare", "visibility": "public" if i % 3 else "shared",
                    "tags": ["bench"], "os_distro": "cirros"})
                resp.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


def member_token(cloud: BenchCloud, admin: dict[str, str]) -> str:
    """A token of a plain member of a new project (sees public images and its own)."""
    base = f"{cloud.url}/identity/v3"
    project = httpx.post(f"{base}/projects", headers=admin, json={
        "project": {"name": "bench-member", "domain_id": "default"}}).json()["project"]
    user = httpx.post(f"{base}/users", headers=admin, json={"user": {
        "name": "bench-member", "password": "bench-member-pw", "domain_id": "default"}}
    ).json()["user"]
    role = httpx.get(f"{base}/roles", headers=admin, params={"name": "member"}).json()[
        "roles"][0]
    httpx.put(f"{base}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}",
              headers=admin).raise_for_status()
    resp = httpx.post(f"{base}/auth/tokens", json=password_body(
        "bench-member", "bench-member-pw", "bench-member"))
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed")
    size = int(args.size_gib * (1 << 30)) // CHUNK * CHUNK

    env = {"NIMBUS_SERVICES": '["identity","image"]'}
    cloud = BenchCloud(env=env).start()
    work = Path(tempfile.mkdtemp(prefix="nimbus-image-bench-", dir=cloud.state_dir.parent))
    try:
        headers = {"X-Auth-Token": cloud.token()}
        source = make_source(work, size)
        gib = size / (1 << 30)
        cp_seconds, cp_durable = timed_cp(source)
        cpu = cpu_seconds(cloud)
        image_id, up_seconds, up_growth = upload(cloud, headers, source)
        up_cpu, cpu = cpu_seconds(cloud) - cpu, cpu_seconds(cloud)
        up_durable = up_seconds + timed_sync()
        down_seconds, down_growth = download(cloud, headers, image_id, work / "back.raw")
        down_cpu = cpu_seconds(cloud) - cpu
        down_durable = down_seconds + timed_sync()

        def rate(seconds: float) -> float:
            return size / seconds / (1 << 20)

        print(f"{gib:.1f} GiB raw file; 'cached' = until the command returns (data in the page "
              "cache), 'on disk' = until a sync after it returns")
        print(f"{'cp':<22} cached {rate(cp_seconds):7.1f} MiB/s   on disk "
              f"{rate(cp_durable):7.1f} MiB/s")
        for label, seconds, durable, growth, used in (
                ("upload (PUT /file)", up_seconds, up_durable, up_growth, up_cpu),
                ("download (GET /file)", down_seconds, down_durable, down_growth, down_cpu)):
            print(f"{label:<22} cached {rate(seconds):7.1f} MiB/s "
                  f"({100 * cp_seconds / seconds:3.0f}% of cp)   on disk "
                  f"{rate(durable):7.1f} MiB/s ({100 * cp_durable / durable:3.0f}% of cp)   "
                  f"server RSS +{growth:.0f} MB, CPU {used / gib:.2f} s/GiB")
        print(f"load average during the transfers: {os.getloadavg()[0]:.1f} "
              f"({os.cpu_count()} CPUs)")
        same = subprocess.run(["cmp", "-s", str(source), str(work / "back.raw")]).returncode == 0
        print(f"downloaded bytes identical: {same}")
        for path in (source, work / "back.raw"):
            path.unlink()
        httpx.delete(f"{cloud.url}/image/v2/images/{image_id}", headers=headers)

        made = asyncio.run(create_many(cloud, headers, args.images))
        print(f"created {args.images} images in {made:.1f} s "
              f"({args.images / made:.0f} per second, 8 at a time)")
        url = f"{cloud.url}/image/v2/images"
        member = {"X-Auth-Token": member_token(cloud, headers)}
        for who, creds in (("admin", headers), ("member", member)):
            for c in (1, 8):
                print(wrk(f"GET /v2/images ({who}, 25/page)", url, concurrency=c,
                          seconds=args.seconds, headers=creds).row())
        print(f"resident memory at the end: {cloud.rss_mb():.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        cloud.stop()


if __name__ == "__main__":
    main()

"""Registering the built test image in a running cloud, through the image service's public
API (Image v2) like any client: public, qcow2/bare, named `nimbus-test`.

Idempotent: an active image of that name with the same SHA-512 is kept as it is. A new build
replaces the older test images of that name (those this command or `nimbus up` registered),
so that `--image nimbus-test` names exactly one image.

The build's kernel and ramdisk (manifest "direct_boot") go in first as the aki and ari images
`nimbus-test-kernel` and `nimbus-test-ramdisk`; the disk image names them in kernel_id and
ramdisk_id, with os_command_line, so compute boots it straight from the kernel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

NAME = "nimbus-test"
MARK = "nimbus_test_image"  # property on images this module registered
BOOTSTRAP_MARK = "nimbus_bootstrap"  # property on images `nimbus up` registered from files
CHUNK = 4 << 20


class RegisterError(RuntimeError):
    pass


@dataclass
class Registered:
    image_id: str
    uploaded: bool  # False: the same image was there already
    replaced: list[str] = field(default_factory=list)


def _check(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 400:
        raise RegisterError(f"{what}: {resp.status_code} {resp.text[:500]}")
    return resp.json() if resp.content else None


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def register(path: Path, manifest: dict[str, Any], url: str, headers: dict[str, str],
             name: str = NAME, log: Callable[[str], None] = lambda _msg: None) -> Registered:
    """Make `path` the cloud's public `name` image; `url` is the image endpoint."""
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(60, read=None)) \
            as client:
        props: dict[str, str] = {}
        direct = manifest.get("direct_boot")
        if isinstance(direct, dict) and all(
                (path.parent / str((direct.get(k) or {}).get("file"))).is_file()
                for k in ("kernel", "ramdisk")):
            kernel = _one(client, path.parent / direct["kernel"]["file"], f"{name}-kernel",
                          "aki", direct["kernel"].get("sha512"), {}, log)
            ramdisk = _one(client, path.parent / direct["ramdisk"]["file"],
                           f"{name}-ramdisk", "ari", direct["ramdisk"].get("sha512"), {}, log)
            props = {"kernel_id": kernel.image_id, "ramdisk_id": ramdisk.image_id,
                     "os_command_line": str(direct.get("cmdline") or "")}
        return _one(client, path, name, "qcow2", manifest.get("sha512"), {
            "os_type": "linux", "nimbus_kernel": str(manifest.get("kernel", "")), **props},
            log, min_ram=96)


def _one(client: httpx.Client, path: Path, name: str, disk_format: str, sha512: Any,
         props: dict[str, str], log: Callable[[str], None], min_ram: int = 0) -> Registered:
    listed = _check(client.get("/v2/images", params={"name": name, "limit": "1000"}),
                    "listing images")["images"]
    for image in listed:
        if image.get("status") == "active" and image.get("os_hash_value") == sha512 and \
                all(image.get(k) == v for k, v in props.items()):
            return Registered(image["id"], False)
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    body = {"name": name, "disk_format": disk_format, "container_format": container,
            "visibility": "public", "min_ram": min_ram, MARK: "true", **props}
    image = _check(client.post("/v2/images", json=body), "creating the image")
    log(f"uploading {path} ({path.stat().st_size / 1e6:.1f} MB) as {name} {image['id']}")
    try:
        _check(client.put(f"/v2/images/{image['id']}/file", content=_chunks(path),
                          headers={"Content-Type": "application/octet-stream"}),
               "uploading the image data")
    except (RegisterError, httpx.HTTPError):
        client.delete(f"/v2/images/{image['id']}")
        raise
    done = _check(client.get(f"/v2/images/{image['id']}"), "reading the image back")
    if done.get("status") != "active":
        raise RegisterError(f"image {image['id']} is {done.get('status')}, not active")
    replaced = []
    for old in listed:
        if old.get(MARK) == "true" or old.get(BOOTSTRAP_MARK) == "true":
            resp = client.delete(f"/v2/images/{old['id']}")
            if resp.status_code < 400:
                replaced.append(old["id"])
    return Registered(image["id"], True, replaced)

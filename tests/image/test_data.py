"""Image data: upload and download streamed, Range, checksums, the status machine, format
inspection killing unsafe images, quotas, and uploads that fail half-way."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.image import samples
from tests.image.conftest import Api, Tenant, make_tenant
from tests.support.cloud import RunningCloud

MiB = samples.MiB


def staging_dir(cloud: RunningCloud) -> Path:
    return cloud.state_dir / "images" / "staging"


def store_dir(cloud: RunningCloud) -> Path:
    return cloud.state_dir / "images" / "local"


def leftovers(cloud: RunningCloud, image_id: str) -> list[str]:
    return [p.name for d in (staging_dir(cloud), store_dir(cloud)) for p in d.iterdir()
            if p.name.startswith(image_id) or p.name.startswith(f".{image_id}")]


def set_quota(cloud: RunningCloud, project_id: str, **limits: int) -> None:
    async def run(c: Any) -> None:
        c.services["image"].settings.project_quotas[project_id] = limits

    cloud.call(run)


def test_upload_download_and_checksums(api: Api, cloud: RunningCloud) -> None:
    data = os.urandom(3 * MiB + 123)
    img = api.create(disk_format="raw", container_format="bare")
    resp = api.upload(img["id"], data, **{"x-openstack-image-size": str(len(data))})
    assert resp.status_code == 204, resp.text
    body = api.image(img["id"])
    assert body["status"] == "active" and body["size"] == len(data)
    assert body["virtual_size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert (body["os_hash_algo"], body["os_hash_value"]) == (
        "sha512", hashlib.sha512(data).hexdigest())
    assert body["stores"] == "local"
    resp = api.get(f"/v2/images/{img['id']}/file")
    assert resp.status_code == 200 and resp.content == data
    assert resp.headers["Content-MD5"] == body["checksum"]
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert int(resp.headers["Content-Length"]) == len(data)
    # data is written once: a second upload is a conflict, the first data stays
    resp = api.upload(img["id"], b"other")
    assert resp.status_code == 409 and "active" in resp.json()["message"]
    assert api.get(f"/v2/images/{img['id']}/file").content == data
    assert leftovers(cloud, img["id"]) == [img["id"]]  # just the stored file
    assert api.delete(f"/v2/images/{img['id']}").status_code == 204
    assert leftovers(cloud, img["id"]) == []


@pytest.mark.parametrize(("header", "status", "expect"), [
    ("bytes=10-19", 206, (10, 20)),
    ("bytes=-5", 206, (995, 1000)),
    ("bytes=990-", 206, (990, 1000)),
    ("bytes=990-5000", 206, (990, 1000)),
    ("bytes=1000-", 416, None),
    ("bytes=20-10", 416, None),
    ("pages=1-2", 200, (0, 1000)),
])
def test_range_downloads(api: Api, header: str, status: int,
                         expect: tuple[int, int] | None) -> None:
    data = bytes(range(256)) * 4
    data = data[:1000]
    img = api.create(disk_format="raw", container_format="bare")
    assert api.upload(img["id"], data).status_code == 204
    resp = api.get(f"/v2/images/{img['id']}/file", headers={"Range": header})
    assert resp.status_code == status, resp.text
    if expect is None:
        assert resp.headers["Content-Range"] == "bytes */1000"
        return
    start, end = expect
    assert resp.content == data[start:end]
    if status == 206:
        assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/1000"
        assert "Content-MD5" not in resp.headers


def test_status_machine_and_preconditions(api: Api) -> None:
    img = api.create()
    assert api.get(f"/v2/images/{img['id']}/file").status_code == 204  # no data yet
    resp = api.upload(img["id"], b"data")
    assert resp.status_code == 400 and "disk_format, container_format" in resp.json()["message"]
    api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/disk_format", "value": "raw"},
                                          {"op": "add", "path": "/container_format",
                                           "value": "bare"}])
    resp = api.put(f"/v2/images/{img['id']}/file", content=b"x",
                   headers={"Content-Type": "application/json"})
    assert resp.status_code == 415
    resp = api.upload(img["id"], b"data", **{"x-openstack-image-size": "5"})
    assert resp.status_code == 400 and "x-openstack-image-size" in resp.json()["message"]
    assert api.image(img["id"])["status"] == "queued"
    assert api.upload(img["id"], b"data", **{"x-image-meta-store": "nowhere"}).status_code == 400
    assert api.upload(img["id"], b"data").status_code == 204
    resp = api.patch(f"/v2/images/{img['id']}",
                     [{"op": "replace", "path": "/disk_format", "value": "qcow2"}])
    assert resp.status_code == 403  # formats are fixed once data exists
    deactivate = f"/v2/images/{img['id']}/actions/deactivate"
    assert api.post(f"/v2/images/{api.create()['id']}/actions/deactivate").status_code == 400
    assert api.post(deactivate).status_code == 204
    assert api.post(deactivate).status_code == 204
    assert api.image(img["id"])["status"] == "deactivated"
    assert api.get(f"/v2/images/{img['id']}/file").status_code == 200  # admin still may
    assert api.upload(img["id"], b"data").status_code in (403, 409)
    assert api.post(f"/v2/images/{img['id']}/actions/reactivate").status_code == 204
    assert api.image(img["id"])["status"] == "active"


def test_deactivated_images_cannot_be_downloaded_by_users(alice: Tenant) -> None:
    img = alice.api.create(disk_format="raw", container_format="bare")
    assert alice.api.upload(img["id"], b"payload").status_code == 204
    assert alice.api.post(f"/v2/images/{img['id']}/actions/deactivate").status_code == 204
    resp = alice.api.get(f"/v2/images/{img['id']}/file")
    assert resp.status_code == 403 and "deactivated" in resp.json()["message"]
    assert alice.api.post(f"/v2/images/{img['id']}/actions/reactivate").status_code == 204
    assert alice.api.get(f"/v2/images/{img['id']}/file").content == b"payload"


@pytest.mark.parametrize(("disk_format", "data", "vsize"), [
    ("qcow2", samples.qcow2(1 << 30), 1 << 30),
    ("vmdk", samples.vmdk(64 * MiB), 64 * MiB),
    ("vhd", samples.vhd(32 * MiB), 32 * MiB),
    ("vhdx", samples.vhdx(48 * MiB), 48 * MiB),
    ("vdi", samples.vdi(24 * MiB), 24 * MiB),
    ("iso", samples.iso(40), 40 * 2048),
    ("ami", os.urandom(2048), None),
])
def test_virtual_size_comes_from_inspection(api: Api, disk_format: str, data: bytes,
                                            vsize: int | None) -> None:
    img = api.create(disk_format=disk_format, container_format="bare")
    resp = api.upload(img["id"], data)
    assert resp.status_code == 204, resp.text
    body = api.image(img["id"])
    assert body["status"] == "active" and body["virtual_size"] == vsize


@pytest.mark.parametrize(("disk_format", "data", "words"), [
    ("qcow2", samples.qcow2(backing_file="/etc/passwd"), "backing file"),
    ("qcow2", samples.qcow2(incompatible=1 << 2), "external data file"),
    ("raw", samples.qcow2(), "does not match"),
    ("qcow2", os.urandom(4096), "does not match"),
    ("vmdk", samples.vmdk(extent='"/dev/sda"'), "file path"),
    ("iso", samples.polyglot_qcow2_iso(), "several formats"),
])
def test_unsafe_or_lying_images_are_killed(api: Api, cloud: RunningCloud, disk_format: str,
                                           data: bytes, words: str) -> None:
    img = api.create(disk_format=disk_format, container_format="bare")
    resp = api.upload(img["id"], data)
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["message"]
    body = api.image(img["id"])
    assert body["status"] == "killed" and body["size"] is None and "stores" not in body
    assert leftovers(cloud, img["id"]) == []
    assert api.get(f"/v2/images/{img['id']}/file").status_code == 204
    assert api.upload(img["id"], samples.raw()).status_code == 409


def test_quotas(cloud: RunningCloud, admin: Any) -> None:
    carol = make_tenant(cloud, admin)
    set_quota(cloud, carol.project_id, image_size_total=1, image_count_total=3)
    first = carol.api.create(disk_format="raw", container_format="bare")
    assert carol.api.upload(first["id"], b"\x01" * (MiB // 2)).status_code == 204
    second = carol.api.create(disk_format="raw", container_format="bare")
    resp = carol.api.upload(second["id"], b"\x01" * (MiB // 2 + 4096))
    assert resp.status_code == 413 and "image_size_total" in resp.json()["message"]
    assert carol.api.image(second["id"])["status"] == "queued"
    assert leftovers(cloud, second["id"]) == []
    resp = carol.api.upload(second["id"], b"\x01", **{"x-openstack-image-size": str(MiB)})
    assert resp.status_code == 413  # refused before reading a byte
    assert carol.api.upload(second["id"], b"\x01" * 1000).status_code == 204
    carol.api.create()
    resp = carol.api.post("/v2/images", json={"name": "one too many"})
    assert resp.status_code == 413 and "image_count_total" in resp.json()["message"]
    usage = carol.api.get("/v2/info/usage").json()["usage"]
    assert usage["image_count_total"] == {"limit": 3, "usage": 3}
    assert usage["image_size_total"]["limit"] == 1


def _raw_upload(cloud: RunningCloud, token: str, image_id: str, send: int, claim: int) -> None:
    """Start an upload that promises `claim` bytes, send `send`, and hang up."""
    with socket.create_connection(("127.0.0.1", cloud.port)) as sock:
        head = (f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\n"
                f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {claim}\r\n\r\n").encode()
        sock.sendall(head + b"\x00" * send)
        time.sleep(0.3)


def test_interrupted_upload_leaves_nothing(api: Api, cloud: RunningCloud) -> None:
    img = api.create(disk_format="raw", container_format="bare")
    token = api.client.headers["X-Auth-Token"]
    _raw_upload(cloud, token, img["id"], send=5 * MiB, claim=50 * MiB)
    deadline = time.monotonic() + 10
    while api.image(img["id"])["status"] != "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.image(img["id"])["status"] == "queued"
    assert leftovers(cloud, img["id"]) == []
    assert api.upload(img["id"], b"second try").status_code == 204


def test_image_deleted_during_upload(api: Api, cloud: RunningCloud) -> None:
    img = api.create(disk_format="raw", container_format="bare")
    other = api.client

    def body() -> Iterator[bytes]:
        yield b"\x00" * MiB
        time.sleep(0.2)
        assert other.delete(f"/v2/images/{img['id']}").status_code == 204
        yield b"\x00" * MiB

    import httpx

    with httpx.Client(headers=dict(other.headers), timeout=30) as client:
        resp = client.put(f"{api.base}/v2/images/{img['id']}/file", content=body(),
                          headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 410, resp.text
    assert leftovers(cloud, img["id"]) == []


def test_stale_saving_images_are_put_back(api: Api, cloud: RunningCloud) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from nimbus.common.timeutils import utcnow
    from nimbus.image.cleanup import run_once
    from nimbus.image.models import Image

    img = api.create(disk_format="raw", container_format="bare")
    part = staging_dir(cloud) / f"{img['id']}.deadbeef.part"
    part.write_bytes(b"half an upload")
    old = time.time() - 7200
    os.utime(part, (old, old))

    async def crash_mid_upload(c: Any) -> list[str]:
        svc = c.services["image"]
        async with svc.db.transaction() as session:
            await session.execute(update(Image).where(Image.id == img["id"]).values(
                status="saving", updated_at=utcnow() - timedelta(hours=2)))
        return await run_once(svc)

    assert img["id"] in cloud.call(crash_mid_upload)
    assert api.image(img["id"])["status"] == "queued"
    assert not part.exists()


def test_sdk_and_cli_round_trip(cloud: RunningCloud, admin: Any, tmp_path: Path,
                                name: str) -> None:
    source = tmp_path / "disk.qcow2"
    source.write_bytes(samples.qcow2(256 * MiB))
    image = admin.image.create_image(name=name, filename=str(source), disk_format="qcow2",
                                     container_format="bare", wait=True,
                                     validate_checksum=True)
    image = admin.image.get_image(image.id)
    assert image.status == "active" and image.virtual_size == 256 * MiB
    out = tmp_path / "back.qcow2"
    admin.image.download_image(image, output=str(out))
    assert out.read_bytes() == source.read_bytes()
    saved = tmp_path / "saved.qcow2"
    cloud.cli("image", "save", "--file", str(saved), image.id)
    assert saved.read_bytes() == source.read_bytes()
    admin.image.delete_image(image)


def test_uploads_are_not_visible_to_other_projects(alice: Tenant, bob: Tenant) -> None:
    img = alice.api.create(disk_format="raw", container_format="bare", visibility="private")
    assert bob.api.upload(img["id"], b"x").status_code == 404
    assert bob.api.get(f"/v2/images/{img['id']}/file").status_code == 404
    assert bob.api.get(f"/v2/images/{uuid.uuid4()}/file").status_code == 404


def test_guest_images_are_registered_at_start(api: Api, cloud: RunningCloud,
                                              alice: Tenant) -> None:
    from nimbus.image.bootstrap import register_all

    folder = cloud.state_dir / "guest-images"
    folder.mkdir(exist_ok=True)
    name = f"guest-{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.qcow2").write_bytes(samples.qcow2(2 << 30))

    async def run(c: Any) -> list[str]:
        return await register_all(c.services["image"])

    made = cloud.call(run)
    assert len(made) == 1
    image = alice.api.image(made[0])  # public: everyone sees it
    assert (image["name"], image["status"], image["disk_format"]) == (name, "active", "qcow2")
    assert image["visibility"] == "public" and image["owner"] is None
    assert image["virtual_size"] == 2 << 30 and image["nimbus_bootstrap"] == "true"
    assert cloud.call(run) == []  # once only
    (folder / f"{name}.qcow2").unlink()

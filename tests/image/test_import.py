"""Interoperable import (glance-direct, copy-image) and multiple stores, on a cloud of their
own with three file stores: fast (default), cheap, and a read-only archive."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.image import samples
from tests.image.conftest import Api, login, make_tenant
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    image = {"stores": {"fast": {"description": "Quick"}, "cheap": {"description": "Slow"},
                        "archive": {"description": "Old", "read_only": True}},
             "default_store": "fast"}
    running = RunningCloud(Path(tmp_path_factory.mktemp("stores")),
                           services=["identity", "image"], image=image).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mapi(multi: RunningCloud) -> Api:
    conn = multi.connect()
    return Api(multi, login(multi, "admin", ADMIN_PASSWORD, "admin"), conn.current_project_id)


def wait_for(api: Api, image_id: str, ok: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = api.image(image_id)
        if ok(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def stage(api: Api, data: bytes, **create: Any) -> dict[str, Any]:
    img = api.create(disk_format=create.pop("disk_format", "raw"), container_format="bare",
                     **create)
    resp = api.put(f"/v2/images/{img['id']}/stage", content=data,
                   headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    body = api.image(img["id"])
    assert body["status"] == "uploading" and body["size"] == len(data)
    return body


def test_stores_discovery(mapi: Api) -> None:
    stores = {s["id"]: s for s in mapi.get("/v2/info/stores").json()["stores"]}
    assert stores["fast"]["default"] == "true" and stores["archive"]["read-only"] == "true"
    assert "default" not in stores["cheap"]


def test_glance_direct_import(mapi: Api) -> None:
    data = os.urandom(300_000)
    img = stage(mapi, data)
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 202, resp.text
    body = wait_for(mapi, img["id"], lambda b: b["status"] == "active")
    assert body["status"] == "active" and body["stores"] == "fast"
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert body["os_glance_importing_to_stores"] == "" and body["os_glance_failed_import"] == ""
    assert mapi.get(f"/v2/images/{img['id']}/file").content == data
    tasks = mapi.get(f"/v2/images/{img['id']}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"]
    assert tasks[0]["request_id"] == resp.headers["x-openstack-request-id"]
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct"


def test_import_to_all_stores_and_delete_from_one(mapi: Api) -> None:
    img = stage(mapi, b"\x02" * 5000)
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "glance-direct"}, "all_stores": True})
    assert resp.status_code == 202
    body = wait_for(mapi, img["id"], lambda b: b["status"] == "active")
    assert body["stores"] == "cheap,fast"
    assert mapi.delete(f"/v2/stores/fast/{img['id']}").status_code == 204
    assert mapi.image(img["id"])["stores"] == "cheap"
    assert mapi.get(f"/v2/images/{img['id']}/file").content == b"\x02" * 5000
    resp = mapi.delete(f"/v2/stores/cheap/{img['id']}")
    assert resp.status_code == 403 and "last location" in resp.json()["message"]
    assert mapi.delete(f"/v2/stores/fast/{img['id']}").status_code == 404


def test_copy_image(mapi: Api, multi: RunningCloud) -> None:
    img = mapi.create(disk_format="raw", container_format="bare")
    assert mapi.upload(img["id"], b"\x03" * 7000,
                       **{"x-image-meta-store": "cheap"}).status_code == 204
    assert mapi.image(img["id"])["stores"] == "cheap"
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "copy-image"}, "stores": ["fast"]})
    assert resp.status_code == 202, resp.text
    body = wait_for(mapi, img["id"], lambda b: b.get("os_glance_importing_to_stores") == "")
    assert body["stores"] == "cheap,fast" and body["os_glance_failed_import"] == ""
    assert (multi.state_dir / "images" / "fast" / img["id"]).read_bytes() == b"\x03" * 7000
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "copy-image"}, "stores": ["fast"]})
    assert resp.status_code == 409  # already there
    member = make_tenant(multi, multi.connect())
    own = member.api.create(disk_format="raw", container_format="bare")
    assert member.api.upload(own["id"], b"x").status_code == 204
    resp = member.api.post(f"/v2/images/{own['id']}/import",
                           json={"method": {"name": "copy-image"}, "all_stores": True})
    assert resp.status_code == 403  # copy-image is an operator's tool


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"method": {"name": "web-download", "uri": "http://example.com/x"}}, 400,
     "not enabled"),
    ({"method": {"name": "teleport"}}, 400, "Unknown import method"),
    ({"method": "glance-direct"}, 400, "method"),
    ({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}, 409, "nowhere"),
    ({"method": {"name": "glance-direct"}, "stores": ["archive"]}, 409, "read-only"),
    ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400, "boolean"),
    ({"method": {"name": "glance-direct"}, "all_stores": True, "stores": ["fast"]}, 400,
     "can't be used"),
])
def test_bad_imports(mapi: Api, body: dict[str, Any], status: int, words: str) -> None:
    img = stage(mapi, b"\x04" * 100)
    resp = mapi.post(f"/v2/images/{img['id']}/import", json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"]
    assert mapi.image(img["id"])["status"] == "uploading"


def test_import_preconditions(mapi: Api) -> None:
    img = mapi.create(disk_format="raw", container_format="bare")
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 409 and "staged" in resp.json()["message"]
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "copy-image"}, "all_stores": True})
    assert resp.status_code == 409 and "active" in resp.json()["message"]
    assert mapi.upload(img["id"], b"\x05" * 10, **{"x-image-meta-store": "archive"}) \
        .status_code == 400


def test_unsafe_staged_image_is_killed_at_import(mapi: Api) -> None:
    img = stage(mapi, samples.qcow2(backing_file="/etc/shadow"), disk_format="qcow2")
    resp = mapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "glance-direct"}, "stores": ["cheap"]})
    assert resp.status_code == 202
    body = wait_for(mapi, img["id"], lambda b: b["status"] == "killed")
    assert body["status"] == "killed" and body["os_glance_failed_import"] == "cheap"
    task = mapi.get(f"/v2/images/{img['id']}/tasks").json()["tasks"][0]
    assert task["status"] == "failure" and "backing file" in task["message"]


def test_sdk_import(multi: RunningCloud, name: str) -> None:
    conn = multi.connect()
    image = conn.image.create_image(name=name, data=samples.qcow2(128 * samples.MiB),
                                    disk_format="qcow2", container_format="bare",
                                    use_import=True, validate_checksum=False)
    deadline = time.monotonic() + 20
    while conn.image.get_image(image.id).status != "active" and time.monotonic() < deadline:
        time.sleep(0.05)
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.virtual_size == 128 * samples.MiB
    assert {s.id for s in conn.image.stores()} == {"fast", "cheap", "archive"}

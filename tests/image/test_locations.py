"""Image locations (show_multiple_locations, PATCH /locations, the v2.17 location API with its
hashing task), store order by weight, the /v2/cache API and glance-download import, on a cloud of
their own: two file stores of different weights and an http store that allows only a loopback
HTTP server this module runs."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.image.conftest import Api, Tenant, login, make_tenant
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

DATA = os.urandom(200_000)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("web")
    (root / "disk.img").write_bytes(DATA)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def loc_cloud(tmp_path_factory: pytest.TempPathFactory, web: str) -> Iterator[RunningCloud]:
    host = web.removeprefix("http://")
    image = {"stores": {"slow": {"description": "Slow", "weight": 10},
                        "quick": {"description": "Quick", "weight": 20},
                        "web": {"type": "http", "allowed_hosts": [host]}},
             "default_store": "slow", "show_multiple_locations": True,
             "import_methods": ["glance-direct", "copy-image", "glance-download"]}
    running = RunningCloud(Path(tmp_path_factory.mktemp("locations")),
                           services=["identity", "image"], image=image).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lapi(loc_cloud: RunningCloud) -> Api:
    conn = loc_cloud.connect()
    return Api(loc_cloud, login(loc_cloud, "admin", ADMIN_PASSWORD, "admin"),
               conn.current_project_id)


@pytest.fixture(scope="module")
def member(loc_cloud: RunningCloud) -> Tenant:
    return make_tenant(loc_cloud, loc_cloud.connect())


def poll(fn: Any, ok: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def tasks(api: Api, image_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v2/images/{image_id}/tasks")
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["tasks"]
    return out


def settled(api: Api, image_id: str) -> list[dict[str, Any]]:
    return poll(lambda: tasks(api, image_id),
                lambda ts: ts and all(t["status"] in ("success", "failure") for t in ts))


def test_versions_and_stores(lapi: Api) -> None:
    ids = [v["id"] for v in lapi.get("/versions").json()["versions"]]
    assert ids[0] == "v2.17" and "v2.14" in ids
    stores = {s["id"]: s for s in lapi.get("/v2/info/stores").json()["stores"]}
    assert stores["web"]["read-only"] == "true" and stores["quick"]["weight"] == 20


def test_patch_locations(lapi: Api, member: Tenant, web: str) -> None:
    api = member.api
    img = api.create(disk_format="raw", container_format="bare")
    assert img["locations"] == [] and img["status"] == "queued"
    url = f"{web}/disk.img"
    add = [{"op": "add", "path": "/locations/-", "value": {"url": url,
                                                           "metadata": {"foo": "bar"}}}]
    resp = api.patch(f"/v2/images/{img['id']}", add)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "active" and body["stores"] == "web"
    assert body["locations"] == [{"url": url, "metadata": {"foo": "bar", "store": "web"}}]
    assert body["os_hash_value"] is None
    # the data is read from the http location
    assert api.get(f"/v2/images/{img['id']}/file").content == DATA

    for bad in ("gopher://info.cern.ch", "http://192.0.2.1/x.img", "file:///etc/passwd"):
        resp = api.patch(f"/v2/images/{img['id']}", [
            {"op": "add", "path": "/locations/-", "value": {"url": bad, "metadata": {}}}])
        assert resp.status_code == 400, (bad, resp.text)
    # validation data that disagrees with the image's: 409; that agrees: fine
    second = {"url": f"{url}#2", "metadata": {}, "validation_data": {"checksum": "1" * 32}}
    api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/locations/-",
                                           "value": second}])
    locs = api.image(img["id"])["locations"]
    assert [loc["url"] for loc in locs] == [url, f"{url}#2"]
    assert api.image(img["id"])["checksum"] == "1" * 32
    third = {"url": f"{url}#3", "metadata": {}, "validation_data": {"checksum": "2" * 32}}
    resp = api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/locations/-",
                                                  "value": third}])
    assert resp.status_code == 409, resp.text
    # a different algorithm conflicts with the image's hashes before its form is judged
    fourth = {"url": f"{url}#4", "metadata": {}, "validation_data": {
        "os_hash_algo": "sha256", "os_hash_value": "beefdead" * 16}}
    resp = api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/locations/-",
                                                  "value": {"url": f"{url}#h", "metadata": {},
                                                            "validation_data": {
        "os_hash_algo": "sha512", "os_hash_value": "deadbeef" * 16}}}])
    assert resp.status_code == 200, resp.text
    resp = api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/locations/-",
                                                  "value": fourth}])
    assert resp.status_code == 409, resp.text
    resp = lapi.patch(f"/v2/images/{img['id']}", [{"op": "remove", "path": "/locations/2"}])
    assert resp.status_code == 200, resp.text

    # replace: same URLs with new metadata works; dropping or changing a URL does not
    locs[0]["metadata"]["date"] = "2015-10-15"
    resp = api.patch(f"/v2/images/{img['id']}",
                     [{"op": "replace", "path": "/locations", "value": locs}])
    assert resp.status_code == 200, resp.text
    for value in ([locs[0]], [locs[0], {"url": f"{url}#9", "metadata": {}}]):
        resp = api.patch(f"/v2/images/{img['id']}",
                         [{"op": "replace", "path": "/locations", "value": value}])
        assert resp.status_code == 400, resp.text
    assert api.image(img["id"])["locations"] == locs

    # removing is for admins, and never the last location
    remove = [{"op": "remove", "path": "/locations/0"}]
    assert api.patch(f"/v2/images/{img['id']}", remove).status_code == 403
    assert lapi.patch(f"/v2/images/{img['id']}", remove).status_code == 200
    assert [loc["url"] for loc in api.image(img["id"])["locations"]] == [f"{url}#2"]
    assert lapi.patch(f"/v2/images/{img['id']}", remove).status_code == 403


def test_add_location_api(member: Tenant, web: str) -> None:
    api = member.api
    url = f"{web}/disk.img"
    img = api.create(disk_format="raw", container_format="bare")
    path = f"/v2/images/{img['id']}/locations"
    sha256 = hashlib.sha256(DATA).hexdigest()
    for vd in ({"os_hash_algo": "sha512", "os_hash_value": "ab" * 8},
               {"os_hash_value": sha256}, {"os_hash_algo": "sha123", "os_hash_value": sha256},
               {"os_hash_algo": "sha512", "os_hash_value": sha256}):
        resp = api.post(path, json={"url": url, "validation_data": vd})
        assert resp.status_code == 400, (vd, resp.text)
    resp = api.post(path, json={"url": url, "validation_data": {
        "os_hash_algo": "sha256", "os_hash_value": sha256}})
    assert resp.status_code == 202, resp.text
    assert [t["status"] for t in settled(api, img["id"])] == ["success"]
    body = api.image(img["id"])
    assert body["status"] == "active" and body["stores"] == "web"
    assert body["checksum"] == hashlib.md5(DATA).hexdigest() and body["size"] == len(DATA)
    assert (body["os_hash_algo"], body["os_hash_value"]) == ("sha256", sha256)
    # only queued images take the new API
    assert api.post(path, json={"url": f"{url}#x"}).status_code == 409

    # a hash that does not match: the task fails and the image goes back to queued
    bad = api.create(disk_format="raw", container_format="bare")
    resp = api.post(f"/v2/images/{bad['id']}/locations", json={"url": url, "validation_data": {
        "os_hash_algo": "sha512", "os_hash_value": "beefdead" * 16}})
    assert resp.status_code == 202, resp.text
    assert [t["status"] for t in settled(api, bad["id"])] == ["failure"]
    body = api.image(bad["id"])
    assert body["status"] == "queued" and body["checksum"] is None

    # no validation data: sha512 and md5 computed
    plain = api.create(disk_format="raw", container_format="bare")
    assert api.post(f"/v2/images/{plain['id']}/locations",
                    json={"url": url}).status_code == 202
    assert [t["status"] for t in settled(api, plain["id"])] == ["success"]
    body = api.image(plain["id"])
    assert body["os_hash_value"] == hashlib.sha512(DATA).hexdigest()


def test_stores_ordered_by_weight(lapi: Api) -> None:
    img = lapi.create(disk_format="raw", container_format="bare")
    resp = lapi.put(f"/v2/images/{img['id']}/stage", content=DATA,
                    headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    resp = lapi.post(f"/v2/images/{img['id']}/import",
                     json={"method": {"name": "glance-direct"}, "all_stores": True})
    assert resp.status_code == 202, resp.text
    body = poll(lambda: lapi.image(img["id"]), lambda b: b["status"] == "active")
    assert body["stores"] == "quick,slow"


def test_cache(lapi: Api, member: Tenant) -> None:
    assert member.api.get("/v2/cache").status_code == 403
    assert lapi.put("/v2/cache/not-an-image").status_code == 404
    queued = lapi.create(disk_format="raw", container_format="bare")
    assert lapi.put(f"/v2/cache/{queued['id']}").status_code == 400
    img = lapi.create(disk_format="raw", container_format="bare")
    assert lapi.upload(img["id"], DATA).status_code == 204
    assert lapi.put(f"/v2/cache/{img['id']}").status_code == 202
    listing = poll(lambda: lapi.get("/v2/cache").json(),
                   lambda b: [c["image_id"] for c in b["cached_images"]] == [img["id"]])
    assert listing["cached_images"][0]["size"] == len(DATA)
    assert lapi.delete("/v2/cache", headers={
        "x-image-cache-clear-target": "invalid"}).status_code == 400
    assert lapi.delete("/v2/cache").status_code == 204
    assert lapi.get("/v2/cache").json() == {"cached_images": [], "queued_images": []}


def test_glance_download(member: Tenant) -> None:
    api = member.api
    src = api.create(disk_format="raw", container_format="bare")
    assert api.upload(src["id"], DATA).status_code == 204
    api.patch(f"/v2/images/{src['id']}", [
        {"op": "add", "path": "/hw_cpu_cores", "value": "5"},
        {"op": "add", "path": "/os_distro", "value": "rhel"},
        {"op": "add", "path": "/speed", "value": "88mph"}])
    dst = api.create(disk_format="iso", container_format="ovf", os_distro="windows")

    def download(image_id: str, **params: str) -> Any:
        return api.post(f"/v2/images/{image_id}/import", json={"method": {
            "name": "glance-download", "glance_region": "RegionOne",
            "glance_service_interface": "public", **params}})

    resp = download(dst["id"], glance_image_id="foo")
    assert resp.status_code == 400 and "does not look like a UUID" in resp.text
    assert download(dst["id"], glance_image_id=src["id"]).status_code == 202
    assert [t["status"] for t in settled(api, dst["id"])] == ["success"]
    body = api.image(dst["id"])
    assert body["status"] == "active" and body["disk_format"] == "raw"
    assert (body["hw_cpu_cores"], body["os_distro"]) == ("5", "rhel") and "speed" not in body
    assert api.get(f"/v2/images/{dst['id']}/file").content == DATA

    other = api.create(disk_format="raw", container_format="bare", os_distro="windows")
    assert download(other["id"], glance_image_id=src["id"],
                    glance_region="elsewhere").status_code == 202
    assert [t["status"] for t in settled(api, other["id"])] == ["failure"]
    body = api.image(other["id"])
    assert body["status"] == "queued" and body["os_distro"] == "windows"

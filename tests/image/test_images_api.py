"""Image records over the raw API: create, show, list, JSON patch, delete, and the 4xx bodies
of bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.image.conftest import Api, Tenant
from tests.support.cloud import RunningCloud


def test_version_discovery(cloud: RunningCloud) -> None:
    import httpx

    resp = httpx.get(f"{cloud.url}/image/")
    assert resp.status_code == 300
    versions = resp.json()["versions"]
    assert versions[0]["status"] == "CURRENT"
    assert {"v2.0", "v2.6", "v2.12"} <= {v["id"] for v in versions}
    assert versions[0]["links"][0]["href"] == f"{cloud.url}/image/v2/"
    assert httpx.get(f"{cloud.url}/image/versions").status_code == 200


def test_create_shows_glance_shape(api: Api, name: str) -> None:
    resp = api.post("/v2/images", json={"name": name, "disk_format": "qcow2",
                                        "container_format": "bare", "min_ram": 64,
                                        "tags": ["b", "a"], "hw_disk_bus": "virtio"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["Location"].endswith(f"/v2/images/{body['id']}")
    assert "glance-direct" in resp.headers["OpenStack-image-import-methods"]
    assert "local" in resp.headers["OpenStack-image-store-ids"]
    assert body["status"] == "queued" and body["visibility"] == "shared"
    assert body["owner"] == api.project_id and body["protected"] is False
    assert body["size"] is None and body["checksum"] is None and body["virtual_size"] is None
    assert body["os_hash_algo"] is None and body["os_hidden"] is False
    assert body["min_ram"] == 64 and body["min_disk"] == 0
    assert body["tags"] == ["a", "b"] and body["hw_disk_bus"] == "virtio"
    assert body["self"] == f"/v2/images/{body['id']}"
    assert body["file"] == f"/v2/images/{body['id']}/file"
    assert body["schema"] == "/v2/schemas/image"
    assert body["created_at"].endswith("Z") and "stores" not in body
    assert api.image(body["id"]) == body


def test_create_with_id_and_duplicate(api: Api) -> None:
    image_id = str(uuid.uuid4())
    assert api.create(id=image_id)["id"] == image_id
    resp = api.post("/v2/images", json={"id": image_id})
    assert resp.status_code == 409 and image_id in resp.json()["message"]
    assert api.post("/v2/images", json={"id": "not-a-uuid"}).status_code == 400


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"disk_format": "wrong"}, 400, "disk_format"),
    ({"container_format": "wrong"}, 400, "container_format"),
    ({"visibility": "everyone"}, 400, "visibility"),
    ({"min_ram": -1}, 400, "min_ram"),
    ({"min_disk": "1"}, 400, "min_disk"),
    ({"protected": "yes"}, 400, "protected"),
    ({"name": "x" * 256}, 400, "name"),
    ({"tags": ["x" * 256]}, 400, "tags"),
    ({"custom": 5}, 400, "string"),
    ({"x" * 256: "v"}, 400, "255"),
    ({"os_glance_foo": "bar"}, 403, "reserved"),
    ({"deleted": "x"}, 403, "reserved"),
    ({"status": "active"}, 403, "read-only"),
    ({"checksum": "x"}, 403, "read-only"),
    ({"self": "x"}, 403, "read-only"),
])
def test_bad_create_bodies(api: Api, body: dict[str, Any], status: int, words: str) -> None:
    resp = api.post("/v2/images", json=body)
    assert resp.status_code == status, resp.text
    err = resp.json()
    assert words in err["message"], err
    assert err["code"].startswith(str(status)) and err["title"]


def test_malformed_and_unauthenticated(api: Api, cloud: RunningCloud) -> None:
    import httpx

    resp = api.post("/v2/images", content=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert httpx.get(f"{cloud.url}/image/v2/images").status_code == 401
    assert api.get("/v2/images/").status_code == 404
    assert api.delete("/v2/images/").status_code == 404
    assert api.get(f"/v2/images/{uuid.uuid4()}").status_code == 404
    assert api.get("/v2/images/not-a-uuid").status_code == 404


def test_too_many_properties_is_413(api: Api) -> None:
    resp = api.post("/v2/images", json={f"p{i}": "v" for i in range(129)})
    assert resp.status_code == 413 and "properties" in resp.json()["message"]


def test_patch_v21_and_v20(api: Api) -> None:
    img = api.create(disk_format="raw", container_format="bare")
    path = f"/v2/images/{img['id']}"
    resp = api.patch(path, [{"op": "replace", "path": "/name", "value": "renamed"},
                            {"op": "add", "path": "/os_distro", "value": "debian"},
                            {"op": "add", "path": "/tags/-", "value": "t1"},
                            {"op": "replace", "path": "/min_disk", "value": 2},
                            {"op": "add", "path": "/visibility", "value": "private"}])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["os_distro"], body["tags"], body["min_disk"],
            body["visibility"]) == ("renamed", "debian", ["t1"], 2, "private")
    assert body["updated_at"] >= img["updated_at"]
    old = "application/openstack-images-v2.0-json-patch"
    resp = api.patch(path, [{"replace": "/os_distro", "value": "ubuntu"},
                            {"remove": "/os_distro"}], media=old)
    assert resp.status_code == 200 and "os_distro" not in resp.json()
    resp = api.patch(path, [{"add": "/name", "value": "again"}], media=old)
    assert resp.status_code == 409  # draft 4: add on an existing attribute


@pytest.mark.parametrize(("ops", "status", "words"), [
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
    ([{"op": "add", "path": "/os_glance_foo", "value": "bar"}], 403, "reserved"),
    ([{"op": "remove", "path": "/name"}], 403, "may not be removed"),
    ([{"op": "replace", "path": "/missing", "value": "x"}], 409, "does not exist"),
    ([{"op": "remove", "path": "/missing"}], 409, "does not exist"),
    ([{"op": "add", "path": "/min_ram", "value": "big"}], 400, "min_ram"),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400, "JSON pointer"),
    ([{"op": "add", "path": "nope", "value": "x"}], 400, "does not start"),
    ([{"op": "move", "path": "/name", "from": "/x"}], 400, "pointer"),
    ([{"op": "frobnicate", "path": "/name"}], 400, "Invalid operation"),
    ([{"op": "add", "path": "/name"}], 400, "value"),
    ({"op": "add"}, 400, "JSON array"),
    ([{"op": "add", "path": "/prop", "value": 1}], 400, "string"),
    ([{"op": "add", "path": "/tags/7", "value": "x"}], 409, "range"),
])
def test_bad_patches(api: Api, ops: Any, status: int, words: str) -> None:
    img = api.create()
    resp = api.patch(f"/v2/images/{img['id']}", ops)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["message"]
    assert api.image(img["id"]) == img  # nothing half-applied


def test_patch_needs_its_media_type(api: Api) -> None:
    img = api.create()
    resp = api.patch(f"/v2/images/{img['id']}", [], media="application/json")
    assert resp.status_code == 415
    assert "openstack-images-v2.1-json-patch" in resp.headers["Accept-Patch"]


def test_tags_api_and_index_paths(api: Api) -> None:
    img = api.create(tags=["b"])
    path = f"/v2/images/{img['id']}"
    assert api.put(f"{path}/tags/a").status_code == 204
    assert api.put(f"{path}/tags/a").status_code == 204  # idempotent
    assert api.image(img["id"])["tags"] == ["a", "b"]
    resp = api.patch(path, [{"op": "replace", "path": "/tags/0", "value": "z"},
                            {"op": "move", "from": "/tags/1", "path": "/tags/0"}])
    assert resp.status_code == 200 and resp.json()["tags"] == ["b", "z"]
    assert api.delete(f"{path}/tags/b").status_code == 204
    assert api.delete(f"{path}/tags/b").status_code == 404
    assert api.put(f"/v2/images/{uuid.uuid4()}/tags/x").status_code == 404


def test_owner_changes_are_admin_only(api: Api, alice: Tenant) -> None:
    img = alice.api.create()
    resp = alice.api.patch(f"/v2/images/{img['id']}",
                           [{"op": "replace", "path": "/owner", "value": "someone"}])
    assert resp.status_code == 403
    assert alice.api.post("/v2/images", json={"owner": "someone"}).status_code == 403
    owner = uuid.uuid4().hex
    resp = api.patch(f"/v2/images/{img['id']}",
                     [{"op": "replace", "path": "/owner", "value": owner}])
    assert resp.status_code == 200 and resp.json()["owner"] == owner
    assert api.create(owner=owner)["owner"] == owner


def test_publicize_needs_admin_but_community_does_not(alice: Tenant) -> None:
    resp = alice.api.post("/v2/images", json={"visibility": "public"})
    assert resp.status_code == 403
    img = alice.api.create(visibility="community")
    resp = alice.api.patch(f"/v2/images/{img['id']}",
                           [{"op": "replace", "path": "/visibility", "value": "public"}])
    assert resp.status_code == 403


def test_protected_images_cannot_be_deleted(api: Api) -> None:
    img = api.create(protected=True)
    resp = api.delete(f"/v2/images/{img['id']}")
    assert resp.status_code == 403 and "protected" in resp.json()["message"]
    api.patch(f"/v2/images/{img['id']}", [{"op": "replace", "path": "/protected",
                                           "value": False}])
    assert api.delete(f"/v2/images/{img['id']}").status_code == 204
    assert api.get(f"/v2/images/{img['id']}").status_code == 404
    assert api.delete(f"/v2/images/{img['id']}").status_code == 404


def test_schemas(api: Api) -> None:
    for name, title in [("image", "image"), ("images", "images"), ("member", "member"),
                        ("members", "members"), ("metadefs/namespace", "namespace"),
                        ("metadefs/resource_types", "resource_type_associations")]:
        resp = api.get(f"/v2/schemas/{name}")
        assert resp.status_code == 200 and resp.json()["name"] == title
    image = api.get("/v2/schemas/image").json()
    assert image["additionalProperties"] == {"type": "string"}
    assert "qcow2" in image["properties"]["disk_format"]["enum"]
    assert api.get("/v2/schemas/nothing").status_code == 404


def test_info_endpoints(api: Api, alice: Tenant) -> None:
    methods = api.get("/v2/info/import").json()["import-methods"]["value"]
    assert methods == ["glance-direct", "copy-image"]  # web-download: no internet here
    stores = api.get("/v2/info/stores").json()["stores"]
    assert stores == [{"id": "local", "description": "Local filesystem store",
                       "default": "true"}]
    detail = api.get("/v2/info/stores/detail").json()["stores"][0]
    assert detail["type"] == "file" and "data_dir" in detail["properties"]
    assert alice.api.get("/v2/info/stores/detail").status_code == 403
    usage = alice.api.get("/v2/info/usage").json()["usage"]
    assert usage["image_count_total"]["limit"] == -1


def test_state_changes_are_announced_on_the_bus(api: Api, cloud: RunningCloud) -> None:
    import time

    seen: list[tuple[str, Any]] = []

    async def handler(message: dict[str, Any]) -> None:
        seen.append((message["event_type"], message["payload"]))

    async def subscribe(c: Any) -> Any:
        return await c.bus.subscribe("image.*", handler)

    sub = cloud.call(subscribe)
    try:
        img = api.create(disk_format="raw", container_format="bare")
        api.patch(f"/v2/images/{img['id']}", [{"op": "add", "path": "/k", "value": "v"}])
        api.upload(img["id"], b"data")
        api.post(f"/v2/images/{img['id']}/actions/deactivate")
        api.delete(f"/v2/images/{img['id']}")
        wanted = ["image.create", "image.update", "image.upload", "image.activate",
                  "image.deactivate", "image.delete"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            mine = [e for e, p in seen if p.get("id") == img["id"]]
            if mine == wanted:
                break
            time.sleep(0.02)
        assert [e for e, p in seen if p.get("id") == img["id"]] == wanted
    finally:
        async def stop(c: Any) -> None:
            await sub.stop()

        cloud.call(stop)

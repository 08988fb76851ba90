"""The metadata definitions catalog: namespaces, resource types, properties, objects, tags."""

from __future__ import annotations

import uuid
from typing import Any

from tests.image.conftest import Api, Tenant

NS = "/v2/metadefs/namespaces"


def make_namespace(api: Api, **body: Any) -> str:
    name = body.pop("namespace", f"ns-{uuid.uuid4().hex[:8]}")
    resp = api.post(NS, json={"namespace": name, "visibility": "public", **body})
    assert resp.status_code == 201, resp.text
    return name


def test_resource_types_are_seeded(alice: Tenant) -> None:
    names = [r["name"] for r in alice.api.get("/v2/metadefs/resource_types").json()[
        "resource_types"]]
    assert {"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"} <= set(names)


def test_namespace_lifecycle(api: Api, alice: Tenant) -> None:
    name = make_namespace(api, display_name="Disks", description="about disks",
                          protected=True,
                          resource_type_associations=[{"name": "OS::Glance::Image",
                                                       "prefix": "hw_"}],
                          properties={"hw_disk_bus": {"title": "Disk bus", "type": "string",
                                                      "enum": ["virtio", "scsi"]}},
                          objects=[{"name": "CPU", "required": []}],
                          tags=[{"name": "storage"}])
    body = api.get(f"{NS}/{name}").json()
    assert body["display_name"] == "Disks" and body["protected"] is True
    assert body["resource_type_associations"][0]["prefix"] == "hw_"
    assert body["properties"]["hw_disk_bus"]["enum"] == ["virtio", "scsi"]
    assert body["objects"][0]["name"] == "CPU" and body["tags"] == [{"name": "storage"}]
    assert body["self"] == f"{NS}/{name}"
    assert name in [n["namespace"] for n in alice.api.get(NS).json()["namespaces"]]
    assert api.post(NS, json={"namespace": name}).status_code == 409
    assert api.delete(f"{NS}/{name}").status_code == 403  # protected
    assert alice.api.post(NS, json={"namespace": "mine"}).status_code == 403  # admin only
    resp = api.put(f"{NS}/{name}", json={"namespace": name, "visibility": "private",
                                          "protected": False})
    assert resp.status_code == 200 and resp.json()["visibility"] == "private"
    assert alice.api.get(f"{NS}/{name}").status_code == 404  # private to the admin project
    assert api.delete(f"{NS}/{name}").status_code == 204
    assert api.get(f"{NS}/{name}").status_code == 404


def test_properties_objects_tags(api: Api) -> None:
    name = make_namespace(api)
    base = f"{NS}/{name}"
    resp = api.post(f"{base}/properties", json={"name": "speed", "title": "Speed",
                                                "type": "integer", "minimum": 1})
    assert resp.status_code == 201 and resp.json()["minimum"] == 1
    assert api.post(f"{base}/properties", json={"name": "bad", "title": "x",
                                                "type": "color"}).status_code == 400
    resp = api.put(f"{base}/properties/speed", json={"name": "speed", "title": "Fast",
                                                     "type": "integer"})
    assert resp.json()["title"] == "Fast"
    assert list(api.get(f"{base}/properties").json()["properties"]) == ["speed"]
    assert api.delete(f"{base}/properties/speed").status_code == 204
    assert api.get(f"{base}/properties/speed").status_code == 404

    assert api.post(f"{base}/objects", json={"name": "GPU"}).status_code == 201
    resp = api.put(f"{base}/objects/GPU", json={"name": "TPU", "description": "d"})
    assert resp.status_code == 200 and resp.json()["name"] == "TPU"
    assert [o["name"] for o in api.get(f"{base}/objects").json()["objects"]] == ["TPU"]
    assert api.delete(f"{base}/objects").status_code == 204
    assert api.get(f"{base}/objects").json()["objects"] == []

    resp = api.post(f"{base}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert resp.status_code == 201 and len(resp.json()["tags"]) == 2
    assert api.post(f"{base}/tags/c").status_code == 201
    assert api.post(f"{base}/tags/c").status_code == 409
    assert api.put(f"{base}/tags/c", json={"name": "d"}).json()["name"] == "d"
    assert sorted(t["name"] for t in api.get(f"{base}/tags").json()["tags"]) == \
        ["a", "b", "d"]
    assert api.delete(f"{base}/tags/d").status_code == 204
    assert api.delete(f"{base}/tags").status_code == 204
    assert api.get(f"{base}/tags").json()["tags"] == []

    resp = api.post(f"{base}/resource_types", json={"name": "OS::Nova::Flavor"})
    assert resp.status_code == 201 and resp.json()["name"] == "OS::Nova::Flavor"
    assert api.post(f"{base}/resource_types", json={"name": "OS::Nova::Flavor"}) \
        .status_code == 409
    assert api.delete(f"{base}/resource_types/OS::Nova::Flavor").status_code == 204
    assert api.get(f"{base}/resource_types").json()["resource_type_associations"] == []


def test_sdk_reads_the_catalog(cloud, admin: Any) -> None:  # type: ignore[no-untyped-def]
    name = f"ns-{uuid.uuid4().hex[:8]}"
    admin.image.create_metadef_namespace(namespace=name, visibility="public")
    assert name in [n.namespace for n in admin.image.metadef_namespaces()]
    assert admin.image.get_metadef_namespace(name).visibility == "public"
    admin.image.delete_metadef_namespace(name)

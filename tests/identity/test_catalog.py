"""Catalog administration: regions, services, endpoints, OS-EP-FILTER, and what tokens see."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openstack import exceptions as sdk_exc
from sqlalchemy import select

from nimbus.identity.models import GLOBAL_ROLE, USER_PROJECT, Assignment, Role
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def base(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="module")
def api(cloud: RunningCloud) -> Iterator[httpx.Client]:
    """httpx against /identity/v3 with an admin token."""
    token = cloud.connect().auth_token or ""
    with httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": token},
                      timeout=30) as client:
        yield client


def catalog_of(cloud: RunningCloud, project: str = "admin") -> list[dict[str, Any]]:
    """The catalog of a new project-scoped admin token."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"id": project} if project != "admin" else
                  {"name": "admin", "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    catalog: list[dict[str, Any]] = resp.json()["token"]["catalog"]
    return catalog


def endpoint_ids(catalog: list[dict[str, Any]]) -> set[str]:
    return {ep["id"] for svc in catalog for ep in svc["endpoints"]}


def new_service(api: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    resp = api.post("/services", json={"service": {"type": f"{name}-type", "name": name,
                                                   **extra}})
    assert resp.status_code == 201, resp.text
    service: dict[str, Any] = resp.json()["service"]
    return service


def new_endpoint(api: httpx.Client, service_id: str, **fields: Any) -> dict[str, Any]:
    body = {"service_id": service_id, "interface": "public", "url": "http://example.test/x",
            **fields}
    resp = api.post("/endpoints", json={"endpoint": body})
    assert resp.status_code == 201, resp.text
    endpoint: dict[str, Any] = resp.json()["endpoint"]
    return endpoint


# -- regions -----------------------------------------------------------------------------------
def test_region_crud_hierarchy_and_filter(api: httpx.Client, name: str) -> None:
    parent = api.post("/regions", json={"region": {"id": name, "description": "top"}})
    assert parent.status_code == 201
    assert parent.json()["region"] == {
        "id": name, "description": "top", "parent_region_id": None,
        "links": {"self": f"{base(api)}/regions/{name}"}}
    # A generated id when none is given; PUT chooses the id in the URL.
    child = api.post("/regions", json={"region": {"parent_region_id": name}}).json()["region"]
    assert len(child["id"]) == 32 and child["description"] == ""
    put = api.put(f"/regions/{name}-b", json={"region": {"parent_region_id": name,
                                                         "extra_field": 1}})
    assert put.status_code == 201 and put.json()["region"]["extra_field"] == 1
    assert api.put(f"/regions/{name}-c", json={"region": {"id": "other"}}).status_code == 400
    assert api.post("/regions", json={"region": {"id": name}}).status_code == 409
    missing = api.post("/regions", json={"region": {"parent_region_id": f"{name}-nope"}})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Could not find region: {name}-nope."

    listed = api.get("/regions", params={"parent_region_id": name}).json()["regions"]
    assert {r["id"] for r in listed} == {child["id"], f"{name}-b"}
    # No cycles, no parent that does not exist, no changing the id.
    cycle = api.patch(f"/regions/{name}", json={"region": {"parent_region_id": child["id"]}})
    assert cycle.status_code == 400 and "circular" in cycle.json()["error"]["message"]
    assert api.patch(f"/regions/{name}", json={"region": {"parent_region_id": name}}
                     ).status_code == 400
    assert api.patch(f"/regions/{name}", json={"region": {"parent_region_id": "nope-x"}}
                     ).status_code == 404
    assert api.patch(f"/regions/{name}", json={"region": {"id": "x"}}).status_code == 400
    assert api.patch(f"/regions/{name}", json={"region": {}}).status_code == 400
    moved = api.patch(f"/regions/{name}-b", json={"region": {"parent_region_id": child["id"],
                                                             "description": None}})
    assert moved.json()["region"]["parent_region_id"] == child["id"]
    assert moved.json()["region"]["description"] == ""

    # Deleting a region takes its children along, as Keystone does.
    assert api.delete(f"/regions/{name}").status_code == 204
    for region_id in (name, child["id"], f"{name}-b"):
        assert api.get(f"/regions/{region_id}").status_code == 404
    assert api.delete(f"/regions/{name}").status_code == 404


def test_region_with_endpoints_cannot_be_deleted(api: httpx.Client, name: str) -> None:
    api.put(f"/regions/{name}", json={"region": {}})
    api.put(f"/regions/{name}-kid", json={"region": {"parent_region_id": name}})
    service = new_service(api, name)
    endpoint = new_endpoint(api, service["id"], region_id=f"{name}-kid")
    refused = api.delete(f"/regions/{name}")
    assert refused.status_code == 403
    assert "associated endpoints" in refused.json()["error"]["message"]
    assert api.delete(f"/endpoints/{endpoint['id']}").status_code == 204
    assert api.delete(f"/regions/{name}").status_code == 204
    api.delete(f"/services/{service['id']}")


# -- services ----------------------------------------------------------------------------------
def test_service_crud_through_sdk(admin: Any, api: httpx.Client, name: str) -> None:
    service = admin.identity.create_service(type=f"{name}-t", name=name, description="d")
    assert (service.type, service.name, service.description, service.is_enabled) == (
        f"{name}-t", name, "d", True)
    raw = api.get(f"/services/{service.id}").json()["service"]
    assert raw["links"]["self"].endswith(f"/v3/services/{service.id}")
    assert [s.id for s in admin.identity.services(type=f"{name}-t")] == [service.id]
    assert [s["id"] for s in api.get("/services", params={"name": name}).json()["services"]] \
        == [service.id]
    updated = admin.identity.update_service(service, description="d2", is_enabled=False)
    assert updated.description == "d2" and updated.is_enabled is False
    # A service without a description has none (Keystone keeps it as an extra attribute).
    bare = api.post("/services", json={"service": {"type": f"{name}-t2"}}).json()["service"]
    assert "description" not in bare and bare["name"] == "" and bare["enabled"] is True
    admin.identity.delete_service(service)
    api.delete(f"/services/{bare['id']}")
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_service(service.id)


@pytest.mark.parametrize("body", [
    {"service": {"name": "x"}},                           # type is required
    {"service": {"type": ""}},                            # and not empty
    {"service": {"type": "t", "enabled": "True"}},         # a real boolean
    {"service": {"type": "t", "name": None}},
])
def test_service_validation(api: httpx.Client, body: dict[str, Any]) -> None:
    resp = api.post("/services", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == 400


# -- endpoints ---------------------------------------------------------------------------------
def test_endpoint_crud_filters_and_validation(api: httpx.Client, name: str) -> None:
    service = new_service(api, name)
    other = new_service(api, f"{name}-2")
    # The legacy "region" attribute creates the region if needed (as Tempest relies on).
    endpoint = new_endpoint(api, service["id"], region=f"{name}-r", url="http://a.test:1/v1",
                            description="first")
    assert endpoint["region"] == endpoint["region_id"] == f"{name}-r"
    assert endpoint["enabled"] is True and endpoint["description"] == "first"
    assert api.get(f"/regions/{name}-r").status_code == 200
    internal = new_endpoint(api, other["id"], interface="internal", region_id=f"{name}-r")

    def ids(**params: str) -> set[str]:
        return {e["id"] for e in api.get("/endpoints", params=params).json()["endpoints"]}

    assert ids(service_id=service["id"]) == {endpoint["id"]}
    assert ids(region_id=f"{name}-r") == {endpoint["id"], internal["id"]}
    assert internal["id"] in ids(interface="internal")
    assert endpoint["id"] not in ids(interface="internal")
    assert api.get("/endpoints", params={"interface": "private"}).status_code == 400

    bad = api.post("/endpoints", json={"endpoint": {
        "service_id": "nope", "interface": "public", "url": "http://x.test"}})
    assert bad.status_code == 400
    assert "endpoint service_id in service table" in bad.json()["error"]["message"]
    for fields in ({"interface": "private"}, {"enabled": "True"}, {"enabled": "False"},
                   {"url": "not a url"}, {"region_id": f"{name}-missing"}):
        body = {"service_id": service["id"], "interface": "public", "url": "http://x.test",
                **fields}
        assert api.post("/endpoints", json={"endpoint": body}).status_code == 400, fields
    updates: list[dict[str, Any]] = [{"enabled": "True"}, {"interface": "bogus"},
                                     {"service_id": "nope"}, {"region_id": f"{name}-missing"},
                                     {"url": None}]
    for fields in updates:
        resp = api.patch(f"/endpoints/{endpoint['id']}", json={"endpoint": fields})
        assert resp.status_code == 400, fields

    moved = api.patch(f"/endpoints/{endpoint['id']}", json={"endpoint": {
        "service_id": other["id"], "interface": "admin", "url": "http://b.test",
        "region": f"{name}-r2", "enabled": False}}).json()["endpoint"]
    assert (moved["service_id"], moved["interface"], moved["url"], moved["region"],
            moved["enabled"]) == (other["id"], "admin", "http://b.test", f"{name}-r2", False)
    assert api.get(f"/endpoints/{endpoint['id']}").json()["endpoint"] == moved

    # Deleting a service deletes its endpoints.
    assert api.delete(f"/services/{other['id']}").status_code == 204
    assert api.get(f"/endpoints/{endpoint['id']}").status_code == 404
    assert api.get(f"/endpoints/{internal['id']}").status_code == 404
    assert api.delete(f"/endpoints/{internal['id']}").status_code == 404
    api.delete(f"/services/{service['id']}")
    for region in (f"{name}-r", f"{name}-r2"):
        assert api.delete(f"/regions/{region}").status_code == 204


def test_endpoints_appear_in_and_leave_the_token_catalog(cloud: RunningCloud, api: httpx.Client,
                                                         name: str) -> None:
    service = new_service(api, name)
    endpoint = new_endpoint(api, service["id"], region_id="RegionOne",
                            url="http://svc.test/$(project_id)s")
    catalog = catalog_of(cloud)
    entry = next(s for s in catalog if s["id"] == service["id"])
    assert entry["type"] == f"{name}-type" and entry["name"] == name
    project_id = httpx.post(f"{cloud.auth_url}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        ).json()["token"]["project"]["id"]
    assert entry["endpoints"] == [{"id": endpoint["id"], "interface": "public",
                                   "region_id": "RegionOne", "region": "RegionOne",
                                   "url": f"http://svc.test/{project_id}"}]
    # A disabled endpoint, or one of a disabled service, is not in the catalog.
    api.patch(f"/endpoints/{endpoint['id']}", json={"endpoint": {"enabled": False}})
    assert endpoint["id"] not in endpoint_ids(catalog_of(cloud))
    api.patch(f"/endpoints/{endpoint['id']}", json={"endpoint": {"enabled": True}})
    api.patch(f"/services/{service['id']}", json={"service": {"enabled": False}})
    assert service["id"] not in {s["id"] for s in catalog_of(cloud)}
    api.patch(f"/services/{service['id']}", json={"service": {"enabled": True}})
    assert endpoint["id"] in endpoint_ids(catalog_of(cloud))
    api.delete(f"/endpoints/{endpoint['id']}")
    assert endpoint["id"] not in endpoint_ids(catalog_of(cloud))
    api.delete(f"/services/{service['id']}")
    assert service["id"] not in {s["id"] for s in catalog_of(cloud)}


# -- OS-EP-FILTER ------------------------------------------------------------------------------
EP = "/OS-EP-FILTER"


@pytest.fixture
def project(cloud: RunningCloud, admin: Any, name: str) -> Iterator[str]:
    """A new project where the admin user holds the admin role (granted in the database, so
    these tests need only the APIs they test)."""
    created = admin.identity.create_project(name=name, domain_id="default")

    async def grant(c: Any) -> None:
        async with c.services["identity"].db.transaction() as session:
            role_id = await session.scalar(select(Role.id).where(
                Role.name == "admin", Role.domain_id == GLOBAL_ROLE))
            session.add(Assignment(type=USER_PROJECT, actor_id=admin.current_user_id,
                                   target_id=created.id, role_id=role_id, inherited=False))

    cloud.call(grant)
    yield created.id
    admin.identity.delete_project(created.id)


def test_project_endpoint_associations(cloud: RunningCloud, api: httpx.Client, project: str,
                                       name: str) -> None:
    service = new_service(api, name)
    chosen = new_endpoint(api, service["id"])
    other = new_endpoint(api, service["id"], interface="internal")
    assert len(endpoint_ids(catalog_of(cloud, project))) > 2  # unfiltered: everything

    url = f"{EP}/projects/{project}/endpoints/{chosen['id']}"
    assert api.head(url).status_code == 404
    assert api.put(url).status_code == 204
    assert api.put(url).status_code == 409
    assert api.head(url).status_code == 204 and api.get(url).status_code == 204
    assert api.put(f"{EP}/projects/{project}/endpoints/nope").status_code == 404
    assert api.put(f"{EP}/projects/nope/endpoints/{chosen['id']}").status_code == 404
    listed = api.get(f"{EP}/projects/{project}/endpoints").json()["endpoints"]
    assert [e["id"] for e in listed] == [chosen["id"]]
    projects = api.get(f"{EP}/endpoints/{chosen['id']}/projects").json()["projects"]
    assert [p["id"] for p in projects] == [project]

    # The project's token now lists only its endpoints, and only services that have some;
    # other projects are unaffected.
    catalog = catalog_of(cloud, project)
    assert endpoint_ids(catalog) == {chosen["id"]}
    assert [s["id"] for s in catalog] == [service["id"]]
    assert other["id"] in endpoint_ids(catalog_of(cloud))

    assert api.delete(url).status_code == 204
    assert api.delete(url).status_code == 404
    assert other["id"] in endpoint_ids(catalog_of(cloud, project))
    api.delete(f"/services/{service['id']}")


def test_endpoint_groups(cloud: RunningCloud, api: httpx.Client, project: str,
                         name: str) -> None:
    service = new_service(api, name)
    public = new_endpoint(api, service["id"])
    internal = new_endpoint(api, service["id"], interface="internal")
    created = api.post(f"{EP}/endpoint_groups", json={"endpoint_group": {
        "name": name, "description": "d", "filters": {"service_id": service["id"]}}})
    assert created.status_code == 201
    group = created.json()["endpoint_group"]
    assert group == {"id": group["id"], "name": name, "description": "d",
                     "filters": {"service_id": service["id"]},
                     "links": {"self": f"{base(api)}{EP}/endpoint_groups/{group['id']}"}}
    gurl = f"{EP}/endpoint_groups/{group['id']}"
    assert api.head(gurl).status_code == 200
    assert api.get(gurl).json()["endpoint_group"] == group
    assert group in api.get(f"{EP}/endpoint_groups").json()["endpoint_groups"]
    assert [g["id"] for g in api.get(f"{EP}/endpoint_groups", params={"name": name}).json()[
        "endpoint_groups"]] == [group["id"]]
    in_group = api.get(f"{gurl}/endpoints").json()["endpoints"]
    assert {e["id"] for e in in_group} == {public["id"], internal["id"]}

    for bad in ({"name": name, "filters": {}}, {"name": name, "filters": {"url": "x"}},
                {"name": name, "filters": {"interface": "nope"}}, {"filters": {"interface":
                                                                               "public"}},
                {"name": name, "filters": {"interface": "public"}, "extra": 1}):
        assert api.post(f"{EP}/endpoint_groups", json={"endpoint_group": bad}
                        ).status_code == 400, bad

    updated = api.patch(gurl, json={"endpoint_group": {
        "name": f"{name}-2", "filters": {"service_id": service["id"], "interface": "internal"}}})
    assert updated.status_code == 200
    assert updated.json()["endpoint_group"]["name"] == f"{name}-2"
    assert [e["id"] for e in api.get(f"{gurl}/endpoints").json()["endpoints"]] == [
        internal["id"]]

    # project <-> endpoint group
    purl = f"{gurl}/projects/{project}"
    assert api.get(purl).status_code == 404
    assert api.put(purl).status_code == 204
    assert api.put(purl).status_code == 409
    assert api.put(f"{gurl}/projects/nope").status_code == 404
    assert api.put(f"{EP}/endpoint_groups/nope/projects/{project}").status_code == 404
    shown = api.get(purl).json()["project_endpoint_group"]
    assert shown == {"endpoint_group_id": group["id"], "project_id": project,
                     "links": {"self": f"{base(api)}{purl}"}}
    assert api.head(purl).status_code == 200
    assert [p["id"] for p in api.get(f"{gurl}/projects").json()["projects"]] == [project]
    assert [g["id"] for g in api.get(f"{EP}/projects/{project}/endpoint_groups").json()[
        "endpoint_groups"]] == [group["id"]]
    assert [e["id"] for e in api.get(f"{EP}/projects/{project}/endpoints").json()[
        "endpoints"]] == [internal["id"]]
    assert endpoint_ids(catalog_of(cloud, project)) == {internal["id"]}

    assert api.delete(purl).status_code == 204
    assert api.delete(purl).status_code == 404
    assert public["id"] in endpoint_ids(catalog_of(cloud, project))
    api.put(purl)
    assert api.delete(gurl).status_code == 204  # takes its project associations along
    assert api.get(gurl).status_code == 404 and api.head(gurl).status_code == 404
    assert api.get(f"{EP}/projects/{project}/endpoint_groups").json()["endpoint_groups"] == []
    assert public["id"] in endpoint_ids(catalog_of(cloud, project))
    api.delete(f"/services/{service['id']}")


def test_catalog_changes_need_admin(cloud: RunningCloud, api: httpx.Client, admin: Any,
                                    name: str) -> None:
    """A reader-less member of a project may not change (or read) the catalog."""
    from tests.identity.test_credentials import make_user

    user = make_user(cloud, admin, name, role="member")
    conn = cloud.connect(user=name, password="pw-" + name, project=name)
    token = conn.auth_token or ""
    headers = {"X-Auth-Token": token}
    assert httpx.post(f"{cloud.auth_url}/regions", headers=headers,
                      json={"region": {}}).status_code == 403
    assert httpx.post(f"{cloud.auth_url}/services", headers=headers,
                      json={"service": {"type": "x"}}).status_code == 403
    assert httpx.get(f"{cloud.auth_url}/endpoints", headers=headers).status_code == 403
    assert httpx.get(f"{cloud.auth_url}/regions", headers=headers).status_code == 200
    assert user


# -- the unmodified CLI ------------------------------------------------------------------------
def test_cli_regions_services_endpoints_and_catalog(cloud: RunningCloud, api: httpx.Client,
                                                    project: str, name: str) -> None:
    def parallel(*calls: tuple[str, ...]) -> list[Any]:
        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(lambda args: cloud.cli(*args), calls))

    region, service = parallel(
        ("region", "create", name, "--description", "cli region", "-f", "json"),
        ("service", "create", "--name", name, "--description", "cli service", "-f", "json",
         f"{name}-type"))
    assert region["region"] == name and region["description"] == "cli region"
    assert service["name"] == name and service["type"] == f"{name}-type"

    _, _, endpoint = parallel(
        ("region", "set", name, "--description", "renamed"),
        ("service", "set", service["id"], "--description", "changed"),
        ("endpoint", "create", "--region", name, "-f", "json", service["id"], "public",
         "http://cli.test:5000/v1"))
    assert endpoint["region"] == name and endpoint["url"] == "http://cli.test:5000/v1"

    shown, regions, svc, services, _, _ = parallel(
        ("region", "show", name, "-f", "json"),
        ("region", "list", "-f", "json"),
        ("service", "show", name, "-f", "json"),
        ("service", "list", "--long", "-f", "json"),
        ("endpoint", "set", "--url", "http://cli.test:5001/v1", endpoint["id"]),
        ("endpoint", "add", "project", endpoint["id"], project))
    assert shown["description"] == "renamed"
    assert name in {r["Region"] for r in regions}
    assert svc["description"] == "changed"
    assert service["id"] in {s["ID"] for s in services}
    assert api.head(f"{EP}/projects/{project}/endpoints/{endpoint['id']}").status_code == 204

    ep_shown, listed, catalog, entry = parallel(
        ("endpoint", "show", endpoint["id"], "-f", "json"),
        ("endpoint", "list", "--service", service["id"], "-f", "json"),
        ("catalog", "list", "-f", "json"),
        ("catalog", "show", name, "-f", "json"))
    assert ep_shown["url"] == "http://cli.test:5001/v1" and ep_shown["enabled"] is True
    assert [e["ID"] for e in listed] == [endpoint["id"]]
    assert name in {c["Name"] for c in catalog} and "identity" in {c["Type"] for c in catalog}
    assert entry["type"] == f"{name}-type" and "cli.test:5001" in str(entry["endpoints"])

    cloud.cli("endpoint", "delete", endpoint["id"])
    parallel(("service", "delete", service["id"]), ("region", "delete", name))
    assert api.get(f"/endpoints/{endpoint['id']}").status_code == 404
    assert api.get(f"/services/{service['id']}").status_code == 404
    assert api.get(f"/regions/{name}").status_code == 404


def test_deleting_a_project_removes_its_endpoint_associations(cloud, admin, name) -> None:  # type: ignore[no-untyped-def]
    import httpx

    headers = {"X-Auth-Token": admin.auth_token}
    base = cloud.auth_url
    project = httpx.post(f"{base}/projects", headers=headers,
                         json={"project": {"name": name}}).json()["project"]["id"]
    endpoint = httpx.get(f"{base}/endpoints", headers=headers).json()["endpoints"][0]["id"]
    assoc = f"{base}/OS-EP-FILTER/projects/{project}/endpoints/{endpoint}"
    assert httpx.put(assoc, headers=headers).status_code == 204
    assert httpx.delete(f"{base}/projects/{project}", headers=headers).status_code == 204
    listed = httpx.get(f"{base}/OS-EP-FILTER/endpoints/{endpoint}/projects", headers=headers)
    assert project not in [p["id"] for p in listed.json()["projects"]]

    async def leftover(c):  # type: ignore[no-untyped-def]
        from sqlalchemy import select

        from nimbus.identity.models import ProjectEndpoint

        async with c.services["identity"].db.session() as session:
            return (await session.scalars(select(ProjectEndpoint).where(
                ProjectEndpoint.project_id == project))).all()

    assert cloud.call(leftover) == []

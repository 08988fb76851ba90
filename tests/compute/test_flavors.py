"""Flavors: DevStack's set, admin management, extra specs, private access, microversions."""

from __future__ import annotations

import uuid

from tests.compute.conftest import Api, Tenant, fault


def test_bootstrap_flavors_as_devstack_names_them(api: Api) -> None:
    flavors = {f["name"]: f for f in api.get("/flavors/detail").json()["flavors"]}
    assert {"m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large",
            "m1.xlarge"} <= set(flavors)
    tiny = flavors["m1.tiny"]
    assert (tiny["ram"], tiny["disk"], tiny["vcpus"]) == (512, 1, 1)
    assert flavors["m1.nano"]["ram"] == 128
    assert flavors["m1.micro"]["ram"] == 192
    assert tiny["swap"] == ""
    assert tiny["OS-FLV-DISABLED:disabled"] is False
    assert api.get("/flavors/1", mv="2.75").json()["flavor"]["swap"] == 0
    newest = api.get("/flavors/1", mv="2.102").json()["flavor"]
    assert "rxtx_factor" not in newest and "OS-FLV-DISABLED:disabled" not in newest


def test_admin_creates_updates_and_deletes(api: Api, alice: Tenant) -> None:
    name = f"f-{uuid.uuid4().hex[:8]}"
    body = {"flavor": {"name": name, "ram": 256, "vcpus": 2, "disk": 3, "swap": 64,
                       "OS-FLV-EXT-DATA:ephemeral": 1, "description": "small one"}}
    assert api.post("/flavors", body, mv="2.54").status_code == 400  # description from 2.55
    created = api.post("/flavors", body, mv="2.61")
    assert created.status_code == 200, created.text
    flavor = created.json()["flavor"]
    assert flavor["description"] == "small one" and flavor["extra_specs"] == {}
    assert flavor["swap"] == 64 and flavor["OS-FLV-EXT-DATA:ephemeral"] == 1
    uuid.UUID(flavor["id"])
    dup = api.post("/flavors", {"flavor": {"name": name, "ram": 1, "vcpus": 1, "disk": 0}})
    assert dup.status_code == 409
    assert fault(dup)[1]["message"] == f"Flavor with name {name} already exists."
    assert alice.api.post("/flavors", {"flavor": {"name": name + "x", "ram": 1, "vcpus": 1,
                                                  "disk": 0}}).status_code == 403
    updated = api.put(f"/flavors/{flavor['id']}", {"flavor": {"description": "renamed"}},
                      mv="2.55")
    assert updated.json()["flavor"]["description"] == "renamed"
    assert api.delete(f"/flavors/{flavor['id']}").status_code == 202
    assert api.get(f"/flavors/{flavor['id']}").status_code == 404


def test_bad_flavor_bodies(api: Api) -> None:
    cases = [
        {"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 0}},
        {"flavor": {"name": "x", "ram": 64, "vcpus": "many", "disk": 0}},
        {"flavor": {"name": " x", "ram": 64, "vcpus": 1, "disk": 0}},
        {"flavor": {"name": "x", "ram": 64, "vcpus": 1}},
        {"flavor": {"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "color": "red"}},
        {"flavor": {"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "id": " bad id"}},
    ]
    for body in cases:
        resp = api.post("/flavors", body)
        assert resp.status_code == 400, (body, resp.text)
        assert fault(resp)[0] == "badRequest"


def test_extra_specs(api: Api) -> None:
    fid = f"es-{uuid.uuid4().hex[:6]}"
    api.post("/flavors", {"flavor": {"name": fid, "id": fid, "ram": 64, "vcpus": 1,
                                     "disk": 0}})
    resp = api.post(f"/flavors/{fid}/os-extra_specs",
                    {"extra_specs": {"hw:cpu_policy": "shared", "quota:cpu_period": 1000}})
    assert resp.status_code == 200, resp.text
    specs = api.get(f"/flavors/{fid}/os-extra_specs").json()["extra_specs"]
    assert specs == {"hw:cpu_policy": "shared", "quota:cpu_period": "1000"}
    assert api.put(f"/flavors/{fid}/os-extra_specs/hw:cpu_policy",
                   {"hw:cpu_policy": "dedicated"}).json() == {"hw:cpu_policy": "dedicated"}
    assert api.put(f"/flavors/{fid}/os-extra_specs/hw:cpu_policy",
                   {"other": "x"}).status_code == 400
    assert api.get(f"/flavors/{fid}", mv="2.61").json()["flavor"]["extra_specs"][
        "hw:cpu_policy"] == "dedicated"
    assert api.delete(f"/flavors/{fid}/os-extra_specs/quota:cpu_period").status_code == 200
    assert api.get(f"/flavors/{fid}/os-extra_specs/quota:cpu_period").status_code == 404
    api.delete(f"/flavors/{fid}")


def test_private_flavor_access(api: Api, alice: Tenant) -> None:
    fid = f"pv-{uuid.uuid4().hex[:6]}"
    created = api.post("/flavors", {"flavor": {"name": fid, "id": fid, "ram": 64, "vcpus": 1,
                                               "disk": 0, "os-flavor-access:is_public": False}})
    assert created.json()["flavor"]["os-flavor-access:is_public"] is False
    listed = {f["id"] for f in alice.api.get("/flavors").json()["flavors"]}
    assert fid not in listed
    assert api.get("/flavors/1/os-flavor-access").status_code == 404
    add = api.post(f"/flavors/{fid}/action",
                   {"addTenantAccess": {"tenant": alice.api.project_id}})
    assert add.status_code == 200, add.text
    assert add.json()["flavor_access"] == [{"flavor_id": fid,
                                            "tenant_id": alice.api.project_id}]
    again = api.post(f"/flavors/{fid}/action",
                     {"addTenantAccess": {"tenant": alice.api.project_id}})
    assert again.status_code == 409
    assert fid in {f["id"] for f in alice.api.get("/flavors").json()["flavors"]}
    public = api.post("/flavors/1/action", {"addTenantAccess": {"tenant": alice.api.project_id}},
                      mv="2.7")
    assert public.status_code == 409
    assert api.post(f"/flavors/{fid}/action", {"addTenantAccess": {
        "tenant": "no-such-project"}}).status_code == 400
    removed = api.post(f"/flavors/{fid}/action",
                       {"removeTenantAccess": {"tenant": alice.api.project_id}})
    assert removed.json()["flavor_access"] == []
    assert fid not in {f["id"] for f in alice.api.get("/flavors").json()["flavors"]}
    admin_all = {f["id"] for f in api.get("/flavors", params={"is_public": "none"}).json()[
        "flavors"]}
    assert fid in admin_all
    api.delete(f"/flavors/{fid}")


def test_listing_filters_sorting_and_paging(api: Api) -> None:
    big = api.get("/flavors/detail", params={"minRam": 4096}).json()["flavors"]
    assert {f["name"] for f in big} >= {"m1.medium", "m1.large", "m1.xlarge"}
    assert all(f["ram"] >= 4096 for f in big)
    by_ram = api.get("/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc"}
                     ).json()["flavors"]
    rams = [f["ram"] for f in by_ram]
    assert rams == sorted(rams, reverse=True)
    page = api.get("/flavors", params={"limit": 2}).json()
    assert len(page["flavors"]) == 2 and page["flavors_links"][0]["rel"] == "next"
    rest = api.get("/flavors", params={"marker": page["flavors"][-1]["id"]}).json()["flavors"]
    all_ids = [f["id"] for f in api.get("/flavors").json()["flavors"]]
    assert [f["id"] for f in page["flavors"]] + [f["id"] for f in rest] == all_ids
    assert api.get("/flavors", params={"marker": "nope"}).status_code == 400
    assert api.get("/flavors", params={"minRam": "lots"}).status_code == 400
    assert api.get("/flavors", params={"sort_key": "bogus"}).status_code == 400
    assert api.get("/flavors", params={"colour": "red"}, mv="2.75").status_code == 400
    named = api.get("/flavors", params={"name": "m1.tiny"}, mv="2.102").json()["flavors"]
    assert [f["name"] for f in named] == ["m1.tiny"]

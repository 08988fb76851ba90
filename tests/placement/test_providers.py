"""Resource providers over HTTP: microversion-dependent shapes, nested trees, generations,
conflicts and the list filters."""

from __future__ import annotations

from tests.placement.conftest import Placement, error, new_uuid
from tests.support.cloud import RunningCloud


def test_create_shapes_by_microversion(placement: Placement, name: str) -> None:
    old = placement.at("1.0").post("/resource_providers", json={"name": name})
    assert old.status_code == 201 and old.content == b""
    rp = old.headers["location"].rsplit("/", 1)[1]
    assert old.headers["location"].endswith(f"/placement/resource_providers/{rp}")
    assert old.headers["location"].startswith("http://")
    shown = placement.at("1.0").get(f"/resource_providers/{rp}").json()
    assert set(shown) == {"uuid", "name", "generation", "links"}
    assert [link["rel"] for link in shown["links"]] == ["self", "inventories", "usages"]
    new = placement.at("1.39").get(f"/resource_providers/{rp}")
    assert new.headers["openstack-api-version"] == "placement 1.39"
    assert new.headers["cache-control"] == "no-cache" and "last-modified" in new.headers
    body = new.json()
    assert body["parent_provider_uuid"] is None and body["root_provider_uuid"] == rp
    assert [link["rel"] for link in body["links"]] == [
        "self", "inventories", "usages", "aggregates", "traits", "allocations"]

    made = placement.at("1.20").post("/resource_providers",
                                     json={"name": f"{name}-2", "uuid": new_uuid()})
    assert made.status_code == 200 and made.json()["generation"] == 0


def test_conflicts_and_bad_input(placement: Placement, name: str) -> None:
    rp = placement.provider(name)
    dup = placement.post("/resource_providers", json={"name": name})
    assert dup.status_code == 409
    assert error(dup)["code"] == "placement.duplicate_name"
    assert f"name: {name}" in error(dup)["detail"]
    same_uuid = placement.post("/resource_providers", json={"name": f"{name}-x", "uuid": rp})
    assert same_uuid.status_code == 409 and f"uuid: {rp}" in error(same_uuid)["detail"]

    bad = placement.post("/resource_providers", json={"name": name, "color": "red"})
    assert bad.status_code == 400
    assert "Additional properties are not allowed ('color' was unexpected)" in \
        error(bad)["detail"]
    assert placement.post("/resource_providers", json={}).status_code == 400
    assert placement.post("/resource_providers", content=b"{",
                          headers={"Content-Type": "application/json"}).status_code == 400
    assert placement.post("/resource_providers", content=b"x",
                          headers={"Content-Type": "text/plain"}).status_code == 415
    # Before 1.14 the parent is not a known field.
    old = placement.at("1.13").post("/resource_providers",
                                    json={"name": f"{name}-c", "parent_provider_uuid": rp})
    assert old.status_code == 400
    missing = placement.get(f"/resource_providers/{new_uuid()}")
    assert missing.status_code == 404
    body = error(missing)
    assert set(body) == {"status", "title", "detail", "code", "request_id"}
    assert body["code"] == "placement.resource_provider.not_found"
    assert body["request_id"].startswith("req-")
    # Before 1.23 there is no code.
    assert "code" not in error(placement.at("1.22").get(f"/resource_providers/{new_uuid()}"))


def test_microversion_negotiation(placement: Placement) -> None:
    too_new = placement.at("1.40").get("/resource_providers")
    assert too_new.status_code == 406
    assert error(too_new)["max_version"] == "1.39"
    assert placement.at("one").get("/resource_providers").status_code == 400
    root = placement.client.get("/", headers={"X-Auth-Token": ""}).json()
    assert root["versions"][0]["max_version"] == "1.39"
    assert root["versions"][0]["min_version"] == "1.0"
    # No token: 401 in placement's error shape.
    anonymous = placement.client.get("/resource_providers", headers={"X-Auth-Token": ""})
    assert anonymous.status_code == 401 and error(anonymous)["status"] == 401


def test_nested_tree_and_reparenting(placement: Placement, name: str) -> None:
    root = placement.provider(f"{name}-root")
    child = placement.provider(f"{name}-child", parent=root)
    grandchild = placement.provider(f"{name}-gc", parent=child)
    other = placement.provider(f"{name}-other")
    shown = placement.get(f"/resource_providers/{grandchild}").json()
    assert shown["parent_provider_uuid"] == child and shown["root_provider_uuid"] == root
    tree = placement.get(f"/resource_providers?in_tree={grandchild}").json()
    assert {p["uuid"] for p in tree["resource_providers"]} == {root, child, grandchild}

    # Before 1.37 a provider cannot move to another parent or lose its parent.
    moved = placement.at("1.36").put(f"/resource_providers/{child}",
                                     json={"name": f"{name}-child", "parent_provider_uuid": other})
    assert moved.status_code == 400 and "re-parenting" in error(moved)["detail"]
    # Giving a root a parent is fine at any version from 1.14.
    adopted = placement.at("1.14").put(f"/resource_providers/{other}",
                                       json={"name": f"{name}-other",
                                             "parent_provider_uuid": root})
    assert adopted.status_code == 200 and adopted.json()["root_provider_uuid"] == root
    # From 1.37: re-parent a subtree, but never under itself.
    loop = placement.put(f"/resource_providers/{child}",
                         json={"name": f"{name}-child", "parent_provider_uuid": grandchild})
    assert loop.status_code == 400 and "loop" in error(loop)["detail"]
    freed = placement.put(f"/resource_providers/{child}",
                          json={"name": f"{name}-child", "parent_provider_uuid": None})
    assert freed.status_code == 200 and freed.json()["root_provider_uuid"] == child
    assert placement.get(f"/resource_providers/{grandchild}").json()[
        "root_provider_uuid"] == child

    parent_delete = placement.delete(f"/resource_providers/{child}")
    assert parent_delete.status_code == 409
    assert error(parent_delete)["code"] == "placement.resource_provider.cannot_delete_parent"
    for rp in (grandchild, child, other, root):
        assert placement.delete(f"/resource_providers/{rp}").status_code == 204
    assert placement.get(f"/resource_providers/{root}").status_code == 404


def test_rename_and_list_filters(placement: Placement, name: str) -> None:
    rc = f"CUSTOM_{name.upper().replace('-', '_')}"
    assert placement.put(f"/resource_classes/{rc}").status_code == 201
    agg1, agg2 = new_uuid(), new_uuid()
    small = placement.provider(f"{name}-small", **{rc: 4})
    big = placement.provider(f"{name}-big", **{rc: 64})
    placement.traits(big, "HW_CPU_X86_AVX2", "STORAGE_DISK_SSD")
    placement.traits(small, "HW_CPU_X86_AVX2")
    placement.aggregates(small, agg1)
    placement.aggregates(big, agg2)

    def names(query: str, version: str = "latest") -> set[str]:
        resp = placement.at(version).get(f"/resource_providers?{query}")
        assert resp.status_code == 200, resp.text
        return {p["name"] for p in resp.json()["resource_providers"]}

    assert names(f"resources={rc}:8") == {f"{name}-big"}
    assert names(f"resources={rc}:2&required=HW_CPU_X86_AVX2") == {f"{name}-small",
                                                                    f"{name}-big"}
    assert names(f"resources={rc}:2&required=!STORAGE_DISK_SSD") == {f"{name}-small"}
    assert names(f"resources={rc}:2&required=in:STORAGE_DISK_SSD,HW_CPU_X86_SSE") == {
        f"{name}-big"}
    assert names(f"member_of=in:{agg1},{agg2}") == {f"{name}-small", f"{name}-big"}
    assert names(f"member_of=!{agg1}&resources={rc}:1") == {f"{name}-big"}
    assert names(f"name={name}-small") == {f"{name}-small"}
    assert names(f"uuid={big}") == {f"{name}-big"}

    assert placement.at("1.21").get(
        f"/resource_providers?member_of=!{agg1}").status_code == 400
    assert placement.at("1.38").get(
        "/resource_providers?required=in:HW_CPU_X86_AVX2").status_code == 400
    unknown = placement.get("/resource_providers?required=CUSTOM_NOPE_NEVER")
    assert unknown.status_code == 400 and "No such trait(s)" in error(unknown)["detail"]
    bad_rc = placement.get("/resource_providers?resources=NOPE:1")
    assert bad_rc.status_code == 400 and "Invalid resource class" in error(bad_rc)["detail"]
    assert placement.get(f"/resource_providers?resources={rc}:0").status_code == 400
    assert placement.at("1.2").get(f"/resource_providers?resources={rc}:1").status_code == 400
    assert placement.get("/resource_providers?color=red").status_code == 400

    renamed = placement.put(f"/resource_providers/{small}", json={"name": f"{name}-tiny"})
    assert renamed.status_code == 200 and renamed.json()["name"] == f"{name}-tiny"
    clash = placement.put(f"/resource_providers/{small}", json={"name": f"{name}-big"})
    assert clash.status_code == 409 and error(clash)["code"] == "placement.duplicate_name"


def test_policy_admin_or_service_only(pcloud: RunningCloud, placement: Placement,
                                      name: str) -> None:
    import httpx

    from tests.placement.conftest import admin_token

    ident = httpx.Client(base_url=pcloud.auth_url, timeout=30,
                         headers={"X-Auth-Token": admin_token(pcloud)})
    project = ident.get("/projects?name=admin").json()["projects"][0]["id"]
    roles = {r["name"]: r["id"] for r in ident.get("/roles").json()["roles"]}
    if "service" not in roles:
        roles["service"] = ident.post("/roles", json={"role": {"name": "service"}}).json()[
            "role"]["id"]
    tokens = {}
    for role in ("member", "service"):
        user = ident.post("/users", json={"user": {
            "name": f"{name}-{role}", "password": "pw-" + name, "domain_id": "default"}}
        ).json()["user"]["id"]
        assert ident.put(f"/projects/{project}/users/{user}/roles/{roles[role]}"
                         ).status_code == 204
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": user, "password": "pw-" + name}}},
            "scope": {"project": {"id": project}}}}
        tokens[role] = ident.post("/auth/tokens", json=body).headers["X-Subject-Token"]
    as_member = Placement(pcloud, tokens["member"])
    denied = as_member.get("/resource_providers")
    assert denied.status_code == 403 and error(denied)["status"] == 403
    assert as_member.post("/resource_providers", json={"name": name}).status_code == 403
    assert Placement(pcloud, tokens["service"]).get("/resource_providers").status_code == 200

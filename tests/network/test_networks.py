"""Networks: provider attributes, MTU, sharing, external, and what every collection offers
(filters, fields, sorting, pagination, tags, revision_number with If-Match, bulk create)."""

from __future__ import annotations

from tests.network.conftest import Api, error
from tests.support.cloud import RunningCloud


def test_create_show_update_delete_with_sdk(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    net = admin.network.create_network(name=name, description="d", mtu=1400)
    try:
        assert net.provider_network_type == "vxlan"
        assert net.provider_segmentation_id >= 1
        assert net.mtu == 1400 and net.is_admin_state_up and net.status == "ACTIVE"
        assert net.revision_number == 0 and net.created_at
        updated = admin.network.update_network(net, name=name + "-2", is_shared=True)
        assert updated.name == name + "-2" and updated.is_shared
        assert updated.revision_number == 1
        found = admin.network.find_network(name + "-2")
        assert found.id == net.id
    finally:
        admin.network.delete_network(net)
    assert admin.network.find_network(net.id) is None


def test_vxlan_mtu_and_segmentation_ids_are_allocated(api: Api, name: str) -> None:
    a = api.create("network", name=name + "a")
    b = api.create("network", name=name + "b")
    assert a["mtu"] == 1450  # 1500 minus the VXLAN overhead
    assert a["provider:segmentation_id"] != b["provider:segmentation_id"]
    clash = api.post("/networks", {"network": {
        "name": name, "provider:network_type": "vxlan",
        "provider:segmentation_id": a["provider:segmentation_id"]}})
    assert clash.status_code == 409 and error(clash)["type"] == "TunnelIdInUse"
    too_big = api.post("/networks", {"network": {"name": name, "mtu": 9000}})
    assert too_big.status_code == 400
    vlan = api.create("network", name=name + "v", **{"provider:network_type": "vlan",
                                                      "provider:physical_network": "physnet1",
                                                      "provider:segmentation_id": 123})
    assert vlan["mtu"] == 1500 and vlan["provider:segmentation_id"] == 123
    bad = api.post("/networks", {"network": {"provider:network_type": "flat",
                                             "provider:physical_network": "nope"}})
    assert bad.status_code == 400 and error(bad)["type"] == "InvalidInput"
    for n in (a, b, vlan):
        assert api.delete(f"/networks/{n['id']}").status_code == 204


def test_member_cannot_set_admin_attributes_and_does_not_see_provider(
        member: Api, name: str) -> None:
    resp = member.post("/networks", {"network": {"name": name, "shared": True}})
    assert resp.status_code == 403
    net = member.create("network", name=name)
    assert "provider:network_type" not in net
    assert net["project_id"] == member.project_id
    public = member.get("/networks", params={"name": "public"}).json()["networks"]
    assert public and public[0]["router:external"] is True


def test_sharing_and_visibility(api: Api, member: Api, name: str) -> None:
    private = api.create("network", name=name + "-p")
    shared = api.create("network", name=name + "-s", shared=True)
    seen = {n["id"] for n in member.get("/networks").json()["networks"]}
    assert shared["id"] in seen and private["id"] not in seen
    assert member.get(f"/networks/{private['id']}").status_code == 404
    assert error(member.get(f"/networks/{private['id']}"))["type"] == "NetworkNotFound"
    assert member.delete(f"/networks/{shared['id']}").status_code == 403
    listed = member.get("/networks", params={"shared": "true"}).json()["networks"]
    assert shared["id"] in {n["id"] for n in listed}


def test_filters_fields_sorting_and_pagination(api: Api, name: str) -> None:
    made = [api.create("network", name=f"{name}-{i}", description=f"n{i % 2}")
            for i in range(5)]
    by_name = api.get("/networks", params={"name": f"{name}-3"}).json()["networks"]
    assert [n["id"] for n in by_name] == [made[3]["id"]]
    two = api.get("/networks", params=[("name", f"{name}-1"), ("name", f"{name}-2"),
                                       ("fields", "id"), ("fields", "name")]).json()
    assert sorted(n["name"] for n in two["networks"]) == [f"{name}-1", f"{name}-2"]
    assert all(set(n) == {"id", "name"} for n in two["networks"])
    desc = api.get("/networks", params={"description": "n1", "sort_key": "name",
                                        "sort_dir": "desc"}).json()["networks"]
    ours = [n["name"] for n in desc if n["name"].startswith(name)]
    assert ours == [f"{name}-3", f"{name}-1"]
    pages, marker = [], None
    while True:
        params = {"limit": "2", "sort_key": "name", "sort_dir": "asc"}
        if marker:
            params["marker"] = marker
        body = api.get("/networks", params={**params, "name": [f"{name}-{i}"
                                                             for i in range(5)]}).json()
        pages.append([n["name"] for n in body["networks"]])
        nxt = [link for link in body.get("networks_links", []) if link["rel"] == "next"]
        if not nxt:
            break
        marker = body["networks"][-1]["id"]
    assert pages == [[f"{name}-0", f"{name}-1"], [f"{name}-2", f"{name}-3"], [f"{name}-4"]]
    bad = api.get("/networks", params={"sort_key": "nope"})
    assert bad.status_code == 400


def test_tags_and_tag_filters(api: Api, name: str) -> None:
    net = api.create("network", name=name, tags=["red"])
    assert net["tags"] == ["red"]
    assert api.put(f"/networks/{net['id']}/tags", {"tags": ["a", "b"]}).json() == {
        "tags": ["a", "b"]}
    assert api.put(f"/networks/{net['id']}/tags/c").status_code == 201
    assert api.get(f"/networks/{net['id']}/tags/c").status_code == 204
    assert api.get(f"/networks/{net['id']}/tags/zz").status_code == 404
    assert api.delete(f"/networks/{net['id']}/tags/a").status_code == 204
    assert sorted(api.get(f"/networks/{net['id']}/tags").json()["tags"]) == ["b", "c"]
    ids = lambda **p: {n["id"] for n in api.get("/networks", params=p).json()["networks"]}  # noqa: E731
    assert net["id"] in ids(tags="b,c")
    assert net["id"] not in ids(tags="b,x")
    assert net["id"] in ids(**{"tags-any": "x,c"})
    assert net["id"] not in ids(**{"not-tags-any": "c"})
    assert api.delete(f"/networks/{net['id']}/tags").status_code == 204
    shown = api.get(f"/networks/{net['id']}").json()["network"]
    assert shown["tags"] == [] and shown["revision_number"] >= 4


def test_if_match_revision_number(api: Api, name: str) -> None:
    net = api.create("network", name=name)
    ok = api.put(f"/networks/{net['id']}", {"network": {"name": name + "1"}},
                 headers={"If-Match": "revision_number=0"})
    assert ok.status_code == 200 and ok.json()["network"]["revision_number"] == 1
    stale = api.put(f"/networks/{net['id']}", {"network": {"name": name + "2"}},
                    headers={"If-Match": "revision_number=0"})
    assert stale.status_code == 412
    assert error(stale)["type"] == "RevisionNumberConstraintFailed"


def test_bulk_create_is_all_or_nothing(api: Api, name: str) -> None:
    resp = api.post("/networks", {"networks": [{"name": name + "1"}, {"name": name + "2"}]})
    assert resp.status_code == 201 and len(resp.json()["networks"]) == 2
    bad = api.post("/networks", {"networks": [{"name": name + "3"}, {"mtu": "x"}]})
    assert bad.status_code == 400
    assert not api.get("/networks", params={"name": name + "3"}).json()["networks"]


def test_bad_input_is_a_neutron_error(api: Api, name: str) -> None:
    resp = api.post("/networks", {"network": {"name": name, "bogus": 1}})
    assert resp.status_code == 400
    assert error(resp)["message"] == "Unrecognized attribute(s) 'bogus'"
    resp = api.post("/networks", {"network": {"admin_state_up": "maybe"}})
    assert resp.status_code == 400 and error(resp)["type"] == "InvalidInput"
    resp = api.post("/networks", {"nope": {}})
    assert resp.status_code == 400
    resp = api.put("/networks/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
                   {"network": {"name": "x"}})
    assert resp.status_code == 404 and error(resp)["type"] == "NetworkNotFound"


def test_network_in_use_cannot_be_deleted(api: Api, name: str) -> None:
    net, _ = api.network(name, "10.77.0.0/24")
    port = api.create("port", network_id=net["id"])
    resp = api.delete(f"/networks/{net['id']}")
    assert resp.status_code == 409 and error(resp)["type"] == "NetworkInUse"
    assert api.delete(f"/ports/{port['id']}").status_code == 204
    assert api.delete(f"/networks/{net['id']}").status_code == 204


def test_cli_network_create_list_show_delete(cloud: RunningCloud, name: str) -> None:
    created = cloud.cli("network", "create", name, "--mtu", "1300", "--tag", "cli",
                        "-f", "json")
    assert created["mtu"] == 1300 and created["tags"] == ["cli"]
    listed = cloud.cli("network", "list", "--tags", "cli", "-f", "json")
    assert created["id"] in {n["ID"] for n in listed}
    cloud.cli("network", "delete", name)

"""Bootstrap, version discovery, extensions, quotas, RBAC sharing, availability zones,
network IP availability."""

from __future__ import annotations

import httpx

from nimbus.network import extensions
from tests.network.conftest import Api, error
from tests.support.cloud import RunningCloud


def test_bootstrap_public_private_and_router1(admin) -> None:  # type: ignore[no-untyped-def]
    public = admin.network.find_network("public")
    assert public.is_router_external and public.provider_network_type == "flat"
    sub = admin.network.get_subnet(public.subnet_ids[0])
    assert sub.cidr == "172.24.4.0/24" and not sub.is_dhcp_enabled
    assert sub.allocation_pools == [{"start": "172.24.4.2", "end": "172.24.4.254"}]
    project = admin.current_project_id
    assert public.project_id == project
    private = admin.network.find_network("private")
    assert private.project_id == project and private.subnet_ids
    router = admin.network.find_router("router1")
    assert router.external_gateway_info["network_id"] == public.id
    ports = list(admin.network.ports(device_id=router.id,
                                     device_owner="network:router_interface"))
    assert ports[0].fixed_ips[0]["subnet_id"] == private.subnet_ids[0]


def test_version_discovery_and_extensions(cloud: RunningCloud, api: Api) -> None:
    root = httpx.get(f"{cloud.url}/network/").json()
    assert root["versions"][0]["id"] == "v2.0"
    assert root["versions"][0]["links"][0]["href"].endswith("/network/v2.0/")
    listed = {e["alias"] for e in api.get("/extensions").json()["extensions"]}
    assert listed == set(extensions.EXTENSIONS)
    assert api.get("/extensions/router").json()["extension"]["alias"] == "router"
    assert api.get("/extensions/nope").status_code == 404
    unauth = httpx.get(f"{cloud.url}/network/v2.0/networks")
    assert unauth.status_code == 401 and "NeutronError" in unauth.json()


def test_quotas(api: Api, member: Api, name: str) -> None:
    pid = member.project_id
    shown = member.get(f"/quotas/{pid}").json()["quota"]
    assert shown["network"] == 100 and shown["port"] == 500
    assert member.put(f"/quotas/{pid}", {"quota": {"network": 1000}}).status_code == 403
    used = len(member.get("/networks", params={"project_id": pid}).json()["networks"])
    upd = api.put(f"/quotas/{pid}", {"quota": {"network": used + 1}}).json()["quota"]
    assert upd["network"] == used + 1
    member.create("network", name=name)
    over = member.post("/networks", {"network": {"name": name}})
    assert over.status_code == 409 and error(over)["type"] == "OverQuota"
    details = api.get(f"/quotas/{pid}/details").json()["quota"]
    assert details["network"]["used"] == used + 1
    assert api.put(f"/quotas/{pid}", {"quota": {"network": -5}}).status_code == 400
    assert api.put(f"/quotas/{pid}", {"quota": {"bogus": 1}}).status_code == 400
    assert api.delete(f"/quotas/{pid}").status_code == 204
    assert member.get(f"/quotas/{pid}").json()["quota"]["network"] == 100
    assert pid not in {q["project_id"] for q in api.get("/quotas").json()["quotas"]}


def test_rbac_share_a_network_with_one_project(api: Api, member: Api, name: str) -> None:
    net, sub = api.network(name, "10.100.0.0/24")
    assert member.get(f"/networks/{net['id']}").status_code == 404
    policy = api.create("rbac_policy", object_type="network", object_id=net["id"],
                        action="access_as_shared", target_tenant=member.project_id)
    seen = member.get(f"/networks/{net['id']}").json()["network"]
    assert seen["shared"] is True
    assert api.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    port = member.create("port", network_id=net["id"])
    dup = api.post("/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": member.project_id}})
    assert dup.status_code == 409
    busy = api.delete(f"/rbac-policies/{policy['id']}")
    assert busy.status_code == 409 and error(busy)["type"] == "RbacPolicyInUse"
    member.delete(f"/ports/{port['id']}")
    assert api.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert member.get(f"/networks/{net['id']}").status_code == 404
    wildcard = member.post("/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": "*"}})
    assert wildcard.status_code in (403, 404)


def test_rbac_external_and_wildcard_sets_flags(api: Api, member: Api, name: str) -> None:
    net = api.create("network", name=name)
    ext = api.create("rbac_policy", object_type="network", object_id=net["id"],
                     action="access_as_external", target_tenant="*")
    assert api.get(f"/networks/{net['id']}").json()["network"]["router:external"] is True
    assert member.get(f"/networks/{net['id']}").status_code == 200
    api.delete(f"/rbac-policies/{ext['id']}")
    assert api.get(f"/networks/{net['id']}").json()["network"]["router:external"] is False


def test_availability_zones_and_ip_availability(api: Api, member: Api, name: str) -> None:
    zones = api.get("/availability_zones").json()["availability_zones"]
    assert {(z["name"], z["resource"]) for z in zones} == {("nova", "network"),
                                                           ("nova", "router")}
    net, sub = api.network(name, "10.101.0.0/28")
    api.create("port", network_id=net["id"])
    shown = api.get(f"/network-ip-availabilities/{net['id']}").json()
    avail = shown["network_ip_availability"]
    assert avail["total_ips"] == 13 and avail["used_ips"] == 1
    assert avail["subnet_ip_availability"][0]["cidr"] == "10.101.0.0/28"
    assert member.get("/network-ip-availabilities").status_code == 403


def test_metering_labels_and_rules(api: Api, member: Api, name: str) -> None:
    label = api.create_at("/metering/metering-labels", "metering_label", name=name,
                          description="d")
    rule = api.create_at("/metering/metering-label-rules", "metering_label_rule",
                         metering_label_id=label["id"], direction="ingress",
                         remote_ip_prefix="10.0.0.0/24")
    assert rule["excluded"] is False
    overlap = api.post("/metering/metering-label-rules", {"metering_label_rule": {
        "metering_label_id": label["id"], "direction": "ingress",
        "remote_ip_prefix": "10.0.0.128/25"}})
    assert overlap.status_code == 409
    rules = api.get("/metering/metering-label-rules", params={"id": rule["id"]}).json()
    assert len(rules["metering_label_rules"]) == 1
    assert member.get("/metering/metering-labels").status_code == 403
    assert api.delete(f"/metering/metering-labels/{label['id']}").status_code == 204
    assert api.get(f"/metering/metering-label-rules/{rule['id']}").status_code == 404


def test_deleting_an_external_network_takes_its_floating_ips(api: Api, member: Api,
                                                             name: str) -> None:
    ext, sub = api.network(name, "198.51.100.0/24", **{"router:external": True})
    fip = api.create("floatingip", floating_network_id=ext["id"])
    assert member.get("/subnets", params={"network_id": ext["id"]}).json()["subnets"] == []
    assert api.delete(f"/networks/{ext['id']}").status_code == 204
    assert api.get(f"/floatingips/{fip['id']}").status_code == 404


def test_restart_keeps_everything_and_bootstraps_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.network.conftest import token_for
    from tests.support.cloud import ADMIN_PASSWORD

    def names(cloud: RunningCloud) -> list[str]:
        token = token_for(cloud, "admin", ADMIN_PASSWORD, "admin")
        nets = httpx.get(f"{cloud.url}/network/v2.0/networks",
                         headers={"X-Auth-Token": token}).json()["networks"]
        return sorted(n["name"] for n in nets)

    first = RunningCloud(tmp_path / "state", services=["identity", "network"]).start()
    try:
        assert names(first) == ["private", "public"]
        token = token_for(first, "admin", ADMIN_PASSWORD, "admin")
        httpx.post(f"{first.url}/network/v2.0/networks", headers={"X-Auth-Token": token},
                   json={"network": {"name": "kept"}})
    finally:
        first.stop()
    second = RunningCloud(tmp_path / "state", services=["identity", "network"]).start()
    try:
        assert names(second) == ["kept", "private", "public"]
    finally:
        second.stop()

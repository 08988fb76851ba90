"""Hypervisors, services (disable, force down, delete), aggregates and zones, server groups."""

from __future__ import annotations

import uuid
from typing import Any

from tests.compute.conftest import HOSTS, Api, Tenant, fault


def test_hypervisors(api: Api, alice: Tenant, image: str) -> None:
    assert alice.api.get("/os-hypervisors").status_code == 403
    listed = api.get("/os-hypervisors").json()["hypervisors"]
    assert {h["hypervisor_hostname"] for h in listed} >= set(HOSTS)
    assert all(isinstance(h["id"], int) and h["state"] == "up" for h in listed)
    server_id = api.boot("hv", image)["server"]["id"]
    host = api.wait(server_id)["OS-EXT-SRV-ATTR:host"]
    detail = {h["hypervisor_hostname"]: h for h in api.get("/os-hypervisors/detail",
                                                            mv="2.28").json()["hypervisors"]}
    mine = detail[host]
    assert mine["hypervisor_type"] == "fake" and mine["vcpus"] == 8
    assert mine["running_vms"] >= 1 and mine["memory_mb_used"] >= 128
    assert mine["free_ram_mb"] == mine["memory_mb"] - mine["memory_mb_used"]
    assert isinstance(mine["cpu_info"], dict) and mine["service"]["host"] == host
    new = {h["hypervisor_hostname"]: h for h in api.get("/os-hypervisors/detail",
                                                         mv="2.88").json()["hypervisors"]}
    assert "vcpus" not in new[host] and "uptime" in new[host]
    uuid.UUID(new[host]["id"])
    shown = api.get(f"/os-hypervisors/{new[host]['id']}", params={"with_servers": "true"},
                    mv="2.53").json()["hypervisor"]
    assert server_id in [s["uuid"] for s in shown["servers"]]
    assert api.get(f"/os-hypervisors/{mine['id']}", mv="2.53").status_code == 400
    assert api.get("/os-hypervisors/99999").status_code == 404
    stats = api.get("/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["count"] >= len(HOSTS) and stats["running_vms"] >= 1
    assert api.get("/os-hypervisors/statistics", mv="2.88").status_code == 404
    assert api.get(f"/os-hypervisors/{mine['id']}/uptime").json()["hypervisor"]["uptime"]
    found = api.get(f"/os-hypervisors/{host}/servers").json()["hypervisors"]
    assert server_id in [s["uuid"] for s in found[0]["servers"]]
    assert api.get("/os-hypervisors", params={"hypervisor_hostname_pattern": "host-"},
                   mv="2.53").json()["hypervisors"]
    page = api.get("/os-hypervisors", params={"limit": 1}, mv="2.33").json()
    assert len(page["hypervisors"]) == 1 and page["hypervisors_links"]
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def _services(api: Api, mv: str = "2.53") -> dict[str, dict[str, Any]]:
    return {s["host"]: s for s in api.get("/os-services", params={"binary": "nova-compute"},
                                          mv=mv).json()["services"]}


def test_services_disable_and_force_down(api: Api, image: str) -> None:
    all_services = api.get("/os-services").json()["services"]
    binaries = {s["binary"] for s in all_services}
    assert {"nova-compute", "nova-conductor", "nova-scheduler"} <= binaries
    computes = _services(api)
    target = computes[HOSTS[0]]
    assert target["state"] == "up" and target["status"] == "enabled"
    assert target["zone"] == "nova"
    uuid.UUID(target["id"])
    # Disable two hosts: builds land on the third.
    for name in HOSTS[:2]:
        resp = api.put(f"/os-services/{computes[name]['id']}",
                       {"status": "disabled", "disabled_reason": "testing"}, mv="2.53")
        assert resp.status_code == 200, resp.text
        assert resp.json()["service"]["status"] == "disabled"
    try:
        ids = [api.boot(f"placed-{i}", image)["server"]["id"] for i in range(2)]
        for sid in ids:
            assert api.wait(sid)["OS-EXT-SRV-ATTR:host"] == HOSTS[2]
        zones = {z["zoneName"]: z for z in api.get("/os-availability-zone/detail").json()[
            "availabilityZoneInfo"]}
        assert HOSTS[0] not in zones["nova"]["hosts"]
    finally:
        for name in HOSTS[:2]:
            api.put(f"/os-services/{computes[name]['id']}", {"status": "enabled"}, mv="2.53")
    # Legacy form, and force down: host_status of its servers turns DOWN.
    legacy = api.put("/os-services/disable", {"host": HOSTS[2], "binary": "nova-compute"})
    assert legacy.json()["service"] == {"host": HOSTS[2], "binary": "nova-compute",
                                        "status": "disabled"}
    api.put("/os-services/enable", {"host": HOSTS[2], "binary": "nova-compute"})
    down = api.put("/os-services/force-down", {"host": HOSTS[2], "binary": "nova-compute",
                                               "forced_down": True}, mv="2.11")
    assert down.json()["service"]["forced_down"] is True
    assert _services(api)[HOSTS[2]]["state"] == "down"
    assert api.server(ids[0])["host_status"] == "DOWN"
    api.put(f"/os-services/{computes[HOSTS[2]]['id']}", {"forced_down": False}, mv="2.53")
    assert api.server(ids[0])["host_status"] == "UP"
    busy = api.delete(f"/os-services/{computes[HOSTS[2]]['id']}", mv="2.53")
    assert busy.status_code == 409
    assert api.put("/os-services/force-down", {"host": "x", "binary": "nova-compute",
                                               "forced_down": True}).status_code == 404
    for sid in ids:
        api.delete(f"/servers/{sid}")
    for sid in ids:
        api.wait_gone(sid)


def test_aggregates_and_zones(api: Api, alice: Tenant, image: str) -> None:
    name = f"agg-{uuid.uuid4().hex[:6]}"
    created = api.post("/os-aggregates", {"aggregate": {"name": name,
                                                        "availability_zone": "zone-b"}},
                       mv="2.41")
    assert created.status_code == 200, created.text
    agg = created.json()["aggregate"]
    assert agg["availability_zone"] == "zone-b" and "hosts" not in agg
    uuid.UUID(agg["uuid"])
    assert api.post("/os-aggregates", {"aggregate": {"name": name}}).status_code == 409
    added = api.post(f"/os-aggregates/{agg['id']}/action", {"add_host": {"host": HOSTS[1]}})
    assert added.json()["aggregate"]["hosts"] == [HOSTS[1]]
    again = api.post(f"/os-aggregates/{agg['id']}/action", {"add_host": {"host": HOSTS[1]}})
    assert again.status_code == 409
    missing = api.post(f"/os-aggregates/{agg['id']}/action", {"add_host": {"host": "nope"}})
    assert missing.status_code == 404
    meta = api.post(f"/os-aggregates/{agg['id']}/action",
                    {"set_metadata": {"metadata": {"ssd": "true", "gone": None}}})
    assert meta.json()["aggregate"]["metadata"] == {"availability_zone": "zone-b",
                                                    "ssd": "true"}
    zones = {z["zoneName"] for z in alice.api.get("/os-availability-zone").json()[
        "availabilityZoneInfo"]}
    assert {"nova", "zone-b"} <= zones
    server_id = alice.api.boot("in-b", image, availability_zone="zone-b")["server"]["id"]
    server = api.wait(server_id)
    assert server["OS-EXT-SRV-ATTR:host"] == HOSTS[1]
    assert server["OS-EXT-AZ:availability_zone"] == "zone-b"
    assert server["pinned_availability_zone"] == "zone-b"
    forced = api.boot("forced", image, availability_zone=f"nova:{HOSTS[2]}")["server"]["id"]
    assert api.wait(forced)["OS-EXT-SRV-ATTR:host"] == HOSTS[2]
    assert alice.api.post("/servers", {"server": {
        "name": "x", "imageRef": image, "flavorRef": "42", "networks": "none",
        "availability_zone": f"nova:{HOSTS[2]}"}}, mv="2.100").status_code == 403
    requested = api.boot("requested", image, host=HOSTS[0], mv="2.74")["server"]["id"]
    assert api.wait(requested)["OS-EXT-SRV-ATTR:host"] == HOSTS[0]
    assert api.post("/os-aggregates", {"aggregate": {"name": "x",
                                                     "availability_zone": "internal"}}
                    ).status_code == 400
    assert api.delete(f"/os-aggregates/{agg['id']}").status_code == 400
    for sid in (server_id, forced, requested):
        api.delete(f"/servers/{sid}")
    api.post(f"/os-aggregates/{agg['id']}/action", {"remove_host": {"host": HOSTS[1]}})
    assert api.post(f"/os-aggregates/{agg['id']}/action",
                    {"remove_host": {"host": HOSTS[1]}}).status_code == 404
    renamed = api.put(f"/os-aggregates/{agg['id']}", {"aggregate": {"name": name + "-x"}})
    assert renamed.json()["aggregate"]["name"] == name + "-x"
    assert api.delete(f"/os-aggregates/{agg['id']}").status_code == 200
    assert api.get(f"/os-aggregates/{agg['id']}").status_code == 404
    assert alice.api.get("/os-aggregates").status_code == 403


def test_server_groups_place_members(alice: Tenant, bob: Tenant, api: Api,
                                     image: str) -> None:
    anti = alice.api.post("/os-server-groups", {"server_group": {
        "name": "spread", "policies": ["anti-affinity"]}}).json()["server_group"]
    assert anti["policies"] == ["anti-affinity"] and anti["metadata"] == {}
    near = alice.api.post("/os-server-groups", {"server_group": {
        "name": "together", "policy": "affinity"}}, mv="2.64").json()["server_group"]
    assert near["policy"] == "affinity" and near["rules"] == {}
    assert alice.api.post("/os-server-groups", {"server_group": {
        "name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}},
        mv="2.64").status_code == 400
    assert alice.api.post("/os-server-groups", {"server_group": {
        "name": "x", "policies": ["soft-affinity"]}}, mv="2.14").status_code == 400
    spread = []
    for i in range(3):
        spread.append(alice.api.post("/servers", {
            "server": {"name": f"a{i}", "imageRef": image, "flavorRef": "42",
                       "networks": "none"},
            "os:scheduler_hints": {"group": anti["id"]}}, mv="2.100").json()["server"]["id"])
        alice.api.wait(spread[-1])
    hosts = {api.server(s)["OS-EXT-SRV-ATTR:host"] for s in spread}
    assert len(hosts) == 3
    fourth = alice.api.post("/servers", {"server": {"name": "a3", "imageRef": image,
                                                    "flavorRef": "42", "networks": "none"},
                                         "os:scheduler_hints": {"group": anti["id"]}},
                            mv="2.100").json()["server"]["id"]
    assert alice.api.wait(fourth, "ERROR")["fault"]["message"].startswith(
        "No valid host was found")
    together = alice.api.post("/servers", {"server": {"name": "t", "imageRef": image,
                                                      "flavorRef": "42", "networks": "none",
                                                      "min_count": 2},
                                           "os:scheduler_hints": {"group": near["id"]}},
                              mv="2.100")
    assert together.status_code == 202
    members = alice.api.get(f"/os-server-groups/{near['id']}").json()["server_group"]["members"]
    assert len(members) == 2
    placed = {api.wait(m)["OS-EXT-SRV-ATTR:host"] for m in members}
    assert len(placed) == 1
    shown = alice.api.server(members[0], mv="2.71")
    assert shown["server_groups"] == [near["id"]]
    listed = alice.api.get("/os-server-groups").json()["server_groups"]
    assert {g["id"] for g in listed} == {anti["id"], near["id"]}
    assert bob.api.get(f"/os-server-groups/{anti['id']}").status_code == 403
    assert anti["id"] in {g["id"] for g in api.get("/os-server-groups", params={
        "all_projects": "true"}).json()["server_groups"]}
    bad_group = alice.api.post("/servers", {"server": {"name": "x", "imageRef": image,
                                                       "flavorRef": "42", "networks": "none"},
                                            "os:scheduler_hints": {"group": str(uuid.uuid4())}},
                               mv="2.100")
    assert bad_group.status_code == 400
    for sid in [*spread, fourth, *members]:
        alice.api.delete(f"/servers/{sid}")
    for sid in [*spread, fourth, *members]:
        alice.api.wait_gone(sid)
    assert alice.api.get(f"/os-server-groups/{anti['id']}").json()["server_group"][
        "members"] == []
    assert alice.api.delete(f"/os-server-groups/{anti['id']}").status_code == 204
    assert alice.api.delete(f"/os-server-groups/{near['id']}").status_code == 204
    assert fault(alice.api.get(f"/os-server-groups/{near['id']}"))[0] == "itemNotFound"

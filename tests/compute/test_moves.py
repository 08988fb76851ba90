"""Moves and images: resize (confirm, revert), cold and live migration, evacuation, rebuild,
snapshots and backups, shelve and unshelve, interfaces, usage, external events. Placement
allocations follow the server at every step."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.compute.conftest import HOSTS, Api
from tests.compute.test_servers import allocations, ports_of, private_network


def usage_on(api: Api, host: str) -> dict[str, int]:
    headers = {"X-Auth-Token": api.token}
    rps = httpx.get(api.other("placement", "/resource_providers"), params={"name": host},
                    headers=headers).json()["resource_providers"]
    usages: dict[str, int] = httpx.get(api.other("placement", f"/resource_providers/"
                                                 f"{rps[0]['uuid']}/usages"),
                                       headers=headers).json()["usages"]
    return usages


def small_flavor(api: Api) -> str:
    flavors = {f["name"]: f["id"] for f in api.get("/flavors").json()["flavors"]}
    return flavors["m1.micro"]


def migrations_of(api: Api, server_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get("/os-migrations", params={
        "instance_uuid": server_id}, mv="2.80").json()["migrations"]
    return found


def test_resize_confirm_and_revert(api: Api, image: str) -> None:
    net = private_network(api)
    server_id = api.boot("resizer", image, networks=[{"uuid": net}])["server"]["id"]
    api.wait(server_id)
    api.action(server_id, {"resize": {"flavorRef": small_flavor(api)}})
    server = api.wait(server_id, "VERIFY_RESIZE")
    assert server["flavor"]["original_name"] == "m1.micro"
    [(rp, alloc)] = allocations(api, server_id).items()
    assert alloc["resources"]["MEMORY_MB"] == 192
    [mig] = migrations_of(api, server_id)
    assert mig["status"] == "finished" and mig["migration_type"] == "resize"
    assert allocations(api, mig["uuid"])  # the source's claim is held by the migration
    api.action(server_id, {"confirmResize": None}, expect=204)
    server = api.wait(server_id, "ACTIVE")
    assert allocations(api, mig["uuid"]) == {}
    assert migrations_of(api, server_id)[0]["status"] == "confirmed"
    [port] = ports_of(api, server_id)
    assert port["binding:host_id"] == server["OS-EXT-SRV-ATTR:host"]
    # Now back to nano, and revert.
    api.action(server_id, {"resize": {"flavorRef": "42"}})
    api.wait(server_id, "VERIFY_RESIZE")
    api.action(server_id, {"revertResize": None})
    server = api.wait(server_id, "ACTIVE")
    assert server["flavor"]["original_name"] == "m1.micro"
    [(rp, alloc)] = allocations(api, server_id).items()
    assert alloc["resources"]["MEMORY_MB"] == 192
    newest = migrations_of(api, server_id)[0]
    assert newest["status"] == "reverted" and allocations(api, newest["uuid"]) == {}
    assert api.action(server_id, {"resize": {"flavorRef": "nope"}}, expect=400)
    same = api.action(server_id, {"resize": {"flavorRef": small_flavor(api)}}, expect=400)
    assert "must change flavor" in same.text
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_cold_and_live_migration(api: Api, image: str) -> None:
    net = private_network(api)
    server_id = api.boot("mover", image, networks=[{"uuid": net}])["server"]["id"]
    first = api.wait(server_id)["OS-EXT-SRV-ATTR:host"]
    target = next(h for h in HOSTS if h != first)
    api.action(server_id, {"migrate": {"host": target}}, mv="2.56")
    moved = api.wait(server_id, "VERIFY_RESIZE")
    assert moved["OS-EXT-SRV-ATTR:host"] == target
    api.action(server_id, {"confirmResize": None}, expect=204)
    api.wait(server_id)
    [(rp, _)] = allocations(api, server_id).items()
    third = next(h for h in HOSTS if h not in (first, target))
    api.action(server_id, {"os-migrateLive": {"host": third, "block_migration": "auto"}},
               mv="2.30")
    live = api.wait(server_id)
    assert live["OS-EXT-SRV-ATTR:host"] == third and live["status"] == "ACTIVE"
    [port] = ports_of(api, server_id)
    assert port["binding:host_id"] == third
    kinds = [m["migration_type"] for m in migrations_of(api, server_id)]
    assert kinds == ["live-migration", "migration"]
    assert migrations_of(api, server_id)[0]["status"] == "completed"
    assert len(allocations(api, server_id)) == 1
    same = api.action(server_id, {"os-migrateLive": {"host": third, "block_migration": False,
                                                     "disk_over_commit": False}},
                      mv="2.24", expect=400)
    assert "current host" in same.text
    assert api.action(server_id, {"os-migrateLive": {"block_migration": "auto"}},
                      mv="2.24", expect=400)
    assert api.get(f"/servers/{server_id}/migrations", mv="2.23").json()["migrations"] == []
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_evacuate_from_a_host_that_is_down(api: Api, image: str) -> None:
    server_id = api.boot("evac", image)["server"]["id"]
    source = api.wait(server_id)["OS-EXT-SRV-ATTR:host"]
    refused = api.action(server_id, {"evacuate": {}}, mv="2.14", expect=400)
    assert "still in use" in refused.text
    services = {s["host"]: s for s in api.get("/os-services", mv="2.53").json()["services"]
                if s["binary"] == "nova-compute"}
    api.put(f"/os-services/{services[source]['id']}", {"forced_down": True}, mv="2.53")
    try:
        api.action(server_id, {"evacuate": {}}, mv="2.14", expect=200)
        server = api.wait(server_id)
        assert server["OS-EXT-SRV-ATTR:host"] != source
        [(rp, _)] = allocations(api, server_id).items()
        assert migrations_of(api, server_id)[0]["migration_type"] == "evacuation"
    finally:
        api.put(f"/os-services/{services[source]['id']}", {"forced_down": False}, mv="2.53")
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_rebuild(api: Api, image: str) -> None:
    server_id = api.boot("rebuilt", image)["server"]["id"]
    api.wait(server_id)
    resp = api.action(server_id, {"rebuild": {"imageRef": image, "name": "rebuilt-2",
                                              "metadata": {"v": "2"},
                                              "description": "again"}}, expect=202)
    body = resp.json()["server"]
    assert body["adminPass"] and body["name"] == "rebuilt-2"
    server = api.wait(server_id)
    assert server["metadata"] == {"v": "2"} and server["description"] == "again"
    actions = api.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    assert actions[0]["action"] == "rebuild"
    api.action(server_id, {"rebuild": {"imageRef": "bad"}}, expect=400)
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def image_of(api: Api, image_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(api.other("image", f"/v2/images/{image_id}"),
                                      headers={"X-Auth-Token": api.token}).json()
    return found


def wait_image(api: Api, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = image_of(api, image_id)
        if found.get("status") == "active":
            return found
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} did not become active")


def test_snapshot_and_backup(api: Api, image: str) -> None:
    server_id = api.boot("snapped", image)["server"]["id"]
    api.wait(server_id)
    resp = api.action(server_id, {"createImage": {"name": "snap", "metadata": {"k": "v"}}},
                      mv="2.45")
    snap = wait_image(api, resp.json()["image_id"])
    assert snap["instance_uuid"] == server_id and snap["image_type"] == "snapshot"
    assert snap["k"] == "v" and snap["size"] > 0
    api.wait(server_id)
    old = api.action(server_id, {"createImage": {"name": "snap-old"}}, mv="2.44")
    assert "/images/" in old.headers["Location"]
    api.wait(server_id)
    ids = []
    for i in range(3):
        made = api.action(server_id, {"createBackup": {"name": f"b{i}", "backup_type": "daily",
                                                       "rotation": 2}}, mv="2.45")
        ids.append(made.json()["image_id"])
        api.wait(server_id)
        wait_image(api, ids[-1])
    time.sleep(0.2)
    remaining = [i for i in ids if image_of(api, i).get("status") == "active"]
    assert remaining == ids[1:]
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_shelve_offload_and_unshelve(api: Api, image: str) -> None:
    net = private_network(api)
    server_id = api.boot("shelved", image, networks=[{"uuid": net}])["server"]["id"]
    api.wait(server_id)
    api.action(server_id, {"shelve": None})
    server = api.wait(server_id, "SHELVED_OFFLOADED")
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert allocations(api, server_id) == {}
    [port] = ports_of(api, server_id)
    assert not port["binding:host_id"]
    api.action(server_id, {"unshelve": {"availability_zone": "nova"}}, mv="2.77")
    server = api.wait(server_id)
    assert server["OS-EXT-SRV-ATTR:host"] in HOSTS
    assert len(allocations(api, server_id)) == 1
    [port] = ports_of(api, server_id)
    assert port["binding:host_id"] == server["OS-EXT-SRV-ATTR:host"]
    api.action(server_id, {"shelve": None})
    api.wait(server_id, "SHELVED_OFFLOADED")
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)
    assert ports_of(api, server_id) == []


def test_interfaces(api: Api, image: str) -> None:
    net = private_network(api)
    server_id = api.boot("nics", image, networks=[{"uuid": net}])["server"]["id"]
    api.wait(server_id)
    [first] = api.get(f"/servers/{server_id}/os-interface").json()["interfaceAttachments"]
    assert first["net_id"] == net and first["port_state"]
    added = api.post(f"/servers/{server_id}/os-interface",
                     {"interfaceAttachment": {"net_id": net, "tag": "second"}}, mv="2.70")
    assert added.status_code == 200, added.text
    port_id = added.json()["interfaceAttachment"]["port_id"]
    assert added.json()["interfaceAttachment"]["tag"] == "second"
    listed = api.get(f"/servers/{server_id}/os-interface").json()["interfaceAttachments"]
    assert {i["port_id"] for i in listed} == {first["port_id"], port_id}
    assert len(api.server(server_id)["addresses"]["private"]) == 2
    assert api.delete(f"/servers/{server_id}/os-interface/{port_id}").status_code == 202
    assert api.get(f"/servers/{server_id}/os-interface/{port_id}").status_code == 404
    assert len(ports_of(api, server_id)) == 1
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_usage_and_external_events(api: Api, image: str) -> None:
    server_id = api.boot("counted", image)["server"]["id"]
    api.wait(server_id)
    usage = api.get(f"/os-simple-tenant-usage/{api.project_id}",
                    params={"start": "2000-01-01T00:00:00"}).json()["tenant_usage"]
    assert server_id in [s["instance_id"] for s in usage["server_usages"]]
    assert usage["total_hours"] > 0
    everyone = api.get("/os-simple-tenant-usage", params={"detailed": "1"}).json()
    assert any(t["tenant_id"] == api.project_id for t in everyone["tenant_usages"])
    events = api.post("/os-server-external-events", {"events": [
        {"name": "network-changed", "server_uuid": server_id},
        {"name": "network-vif-plugged", "server_uuid": "c0ffee00-0000-4000-8000-000000000000",
         "tag": "x"}]})
    assert events.status_code == 207
    codes = [e["code"] for e in events.json()["events"]]
    assert codes == [200, 404]
    assert api.post("/os-server-external-events", {"events": [
        {"name": "power-update", "server_uuid": server_id}]}, mv="2.75").status_code == 400
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)

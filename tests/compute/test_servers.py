"""The boot flow: POST /servers to ACTIVE on a fake host, with ports from the network
service and resources claimed in placement; show, update, delete; nothing left behind."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from tests.compute.conftest import Api, Tenant, fault
from tests.compute.test_keypairs import public_key


def ports_of(api: Api, server_id: str) -> list[dict[str, Any]]:
    resp = httpx.get(api.other("network", "/v2.0/ports"), params={"device_id": server_id},
                     headers={"X-Auth-Token": api.token})
    ports: list[dict[str, Any]] = resp.json()["ports"]
    return ports


def allocations(api: Api, consumer: str) -> dict[str, Any]:
    resp = httpx.get(api.other("placement", f"/allocations/{consumer}"),
                     headers={"X-Auth-Token": api.token})
    allocs: dict[str, Any] = resp.json()["allocations"]
    return allocs


def private_network(api: Api) -> str:
    nets = httpx.get(api.other("network", "/v2.0/networks"), params={"name": "private"},
                     headers={"X-Auth-Token": api.token}).json()["networks"]
    net_id: str = nets[0]["id"]
    return net_id


def test_boot_to_active_with_a_port_and_a_claim(api: Api, image: str) -> None:
    net = private_network(api)
    created = api.boot("web-1", image, networks=[{"uuid": net}], metadata={"role": "web"})
    server_id = created["server"]["id"]
    assert created["server"]["adminPass"]
    assert created["server"]["security_groups"] == [{"name": "default"}]
    server = api.wait(server_id)
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] in ("host-a", "host-b", "host-c")
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["metadata"] == {"role": "web"}
    assert server["flavor"]["original_name"] == "m1.nano"
    assert server["image"]["id"] == image
    assert server["hostId"] and server["host_status"] == "UP"
    [address] = server["addresses"]["private"]
    assert address["OS-EXT-IPS:type"] == "fixed" and address["version"] == 4
    [port] = ports_of(api, server_id)
    assert port["binding:host_id"] == server["OS-EXT-SRV-ATTR:host"]
    assert port["device_owner"] == "compute:nova"
    assert port["fixed_ips"][0]["ip_address"] == address["addr"]
    claimed = allocations(api, server_id)
    [(rp, alloc)] = claimed.items()
    assert alloc["resources"] == {"VCPU": 1, "MEMORY_MB": 128, "DISK_GB": 1}
    actions = api.get(f"/servers/{server_id}/os-instance-actions").json()
    assert actions["instanceActions"][0]["action"] == "create"
    assert api.delete(f"/servers/{server_id}").status_code == 204
    api.wait_gone(server_id)
    assert ports_of(api, server_id) == []
    assert allocations(api, server_id) == {}


def test_boot_without_networks_keypair_userdata(api: Api, image: str) -> None:
    key = f"k-{uuid.uuid4().hex[:6]}"
    api.post("/os-keypairs", {"keypair": {"name": key, "public_key": public_key()}})
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    created = api.boot("bare", image, key_name=key, user_data=user_data,
                       description="no nics", tags=["a", "b"])
    server = api.wait(created["server"]["id"])
    assert server["addresses"] == {}
    assert server["key_name"] == key
    assert server["OS-EXT-SRV-ATTR:user_data"] == user_data
    assert server["description"] == "no nics"
    assert sorted(server["tags"]) == ["a", "b"]
    assert "security_groups" not in server
    console = api.action(server["id"], {"os-getConsoleOutput": {"length": 50}}, expect=200)
    assert "SSH key injected" in console.json()["output"]
    api.delete(f"/servers/{server['id']}")
    api.wait_gone(server["id"])
    api.delete(f"/os-keypairs/{key}")


def test_views_by_microversion(api: Api, image: str) -> None:
    server_id = api.boot("views", image)["server"]["id"]
    api.wait(server_id)
    old = api.server(server_id, mv="2.1")
    assert old["flavor"]["id"] == "42" and "links" in old["flavor"]
    for newer in ("locked", "description", "tags", "host_status", "pinned_availability_zone"):
        assert newer not in old
    assert "OS-EXT-SRV-ATTR:hostname" not in old
    new = api.server(server_id, mv="2.100")
    assert new["locked"] is False and new["pinned_availability_zone"] is None
    assert new["scheduler_hints"] == {}
    assert new["image"]["properties"]["hw_architecture"] == "x86_64"
    renamed = api.put(f"/servers/{server_id}", {"server": {"name": "renamed",
                                                           "description": "d"}}, mv="2.75")
    assert renamed.status_code == 200
    assert renamed.json()["server"]["name"] == "renamed"
    assert renamed.json()["server"]["description"] == "d"
    assert "OS-EXT-STS:vm_state" in renamed.json()["server"]
    assert api.put(f"/servers/{server_id}", {"server": {"description": "x"}},
                   mv="2.18").status_code == 400
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_multi_create(api: Api, image: str) -> None:
    resp = api.post("/servers", {"server": {"name": "many", "imageRef": image,
                                            "flavorRef": "42", "networks": "none",
                                            "min_count": 3, "return_reservation_id": True}},
                    mv="2.100")
    assert resp.status_code == 202
    reservation = resp.json()["reservation_id"]
    listed = api.get("/servers/detail", params={"reservation_id": reservation}).json()[
        "servers"]
    assert sorted(s["name"] for s in listed) == ["many-1", "many-2", "many-3"]
    for s in listed:
        api.wait(s["id"])
    assert api.post("/servers", {"server": {"name": "x", "imageRef": image, "flavorRef": "42",
                                            "networks": "none", "min_count": 3,
                                            "max_count": 2}}, mv="2.100").status_code == 400
    for s in listed:
        api.delete(f"/servers/{s['id']}")


def test_other_projects_servers_are_invisible(api: Api, alice: Tenant, bob: Tenant,
                                              image: str) -> None:
    server_id = alice.api.boot("alices", image)["server"]["id"]
    alice.api.wait(server_id)
    assert bob.api.get(f"/servers/{server_id}").status_code == 404
    assert bob.api.delete(f"/servers/{server_id}").status_code == 404
    assert server_id not in [s["id"] for s in bob.api.get("/servers").json()["servers"]]
    mine = alice.api.server(server_id)
    assert "OS-EXT-SRV-ATTR:host" not in mine and "host_status" not in mine
    everyone = api.get("/servers", params={"all_tenants": "1"}).json()["servers"]
    assert server_id in [s["id"] for s in everyone]
    assert alice.api.get("/servers", params={"all_tenants": "1"}).status_code == 403
    alice.api.delete(f"/servers/{server_id}")
    alice.api.wait_gone(server_id)


def test_bad_requests(api: Api, image: str) -> None:
    net = private_network(api)
    missing = str(uuid.uuid4())
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"flavorRef": "nope"}, 400, "Flavor nope could not be found."),
        ({"imageRef": missing}, 400, "image"),
        ({"imageRef": "not-a-uuid"}, 400, "Invalid input"),
        ({"networks": [{"uuid": missing}]}, 400, f"Network {missing} could not be found."),
        ({"networks": [{"uuid": "bad"}]}, 400, "Invalid input"),
        ({"networks": [{"port": missing}]}, 400, f"Port {missing} could not be found."),
        ({"networks": "everything"}, 400, "Invalid input"),
        ({"key_name": "no-such-key"}, 400, "Invalid key_name provided."),
        ({"availability_zone": "mars"}, 400,
         "The requested availability zone is not available"),
        ({"metadata": {"k": 1}}, 400, "Invalid input"),
        ({"user_data": "%%%"}, 400, "Invalid input"),
        ({"bogus": True}, 400, "Additional properties"),
        ({"min_count": 0}, 400, "Invalid input"),
    ]
    for extra, code, words in cases:
        body = {"name": "bad", "imageRef": image, "flavorRef": "42", "networks": [{"uuid": net}]}
        body.update(extra)
        resp = api.post("/servers", {"server": body}, mv="2.100")
        assert resp.status_code == code, (extra, resp.text)
        kind, detail = fault(resp)
        assert kind == "badRequest" and words.lower() in detail["message"].lower(), (
            extra, detail)
    no_networks = api.post("/servers", {"server": {"name": "x", "imageRef": image,
                                                   "flavorRef": "42"}}, mv="2.37")
    assert no_networks.status_code == 400
    assert "'networks' is a required property" in fault(no_networks)[1]["message"]


def test_over_quota_is_403_with_novas_message(api: Api, alice: Tenant, image: str) -> None:
    pid = alice.api.project_id
    api.put(f"/os-quota-sets/{pid}", {"quota_set": {"instances": 1}})
    try:
        first = alice.api.boot("q1", image)["server"]["id"]
        second = alice.api.post("/servers", {"server": {
            "name": "q2", "imageRef": image, "flavorRef": "42", "networks": "none"}},
            mv="2.100")
        assert second.status_code == 403
        kind, detail = fault(second)
        assert kind == "forbidden"
        assert detail["message"] == ("Quota exceeded for instances: Requested 1, but already "
                                     "used 1 of 1 instances")
        alice.api.delete(f"/servers/{first}")
        alice.api.wait_gone(first)
    finally:
        api.delete(f"/os-quota-sets/{pid}")


def test_list_filters_sort_and_paging(api: Api, image: str) -> None:
    tag = uuid.uuid4().hex[:6]
    ids = []
    for i in range(3):
        created = api.boot(f"lst-{tag}-{i}", image, tags=[tag, f"n{i}"],
                           metadata={"i": str(i)})
        ids.append(created["server"]["id"])
    for sid in ids:
        api.wait(sid)
    def names(**params: Any) -> list[str]:
        resp = api.get("/servers/detail", params=params, mv="2.100")
        assert resp.status_code == 200, resp.text
        return [s["name"] for s in resp.json()["servers"]]
    assert names(name=f"lst-{tag}") == [f"lst-{tag}-2", f"lst-{tag}-1", f"lst-{tag}-0"]
    assert names(name=f"lst-{tag}", sort_key="display_name", sort_dir="asc") == [
        f"lst-{tag}-0", f"lst-{tag}-1", f"lst-{tag}-2"]
    assert names(tags=f"{tag},n1") == [f"lst-{tag}-1"]
    assert sorted(names(**{"tags-any": "n0,n2"})) == [f"lst-{tag}-0", f"lst-{tag}-2"]
    assert names(name=f"lst-{tag}", **{"not-tags-any": "n0,n1"}) == [f"lst-{tag}-2"]
    assert names(name=f"lst-{tag}", status="SHUTOFF") == []
    assert len(names(name=f"lst-{tag}", status="ACTIVE")) == 3
    assert api.get("/servers", params={"status": "SLEEPY"}, mv="2.38").status_code == 400
    page = api.get("/servers", params={"name": f"lst-{tag}", "limit": 2}).json()
    assert len(page["servers"]) == 2 and page["servers_links"][0]["rel"] == "next"
    rest = api.get("/servers", params={"name": f"lst-{tag}",
                                       "marker": page["servers"][-1]["id"]}).json()
    assert [s["id"] for s in rest["servers"]] == [ids[0]]
    assert api.get("/servers", params={"marker": str(uuid.uuid4())}).status_code == 400
    assert api.get("/servers", params={"flavor": "42", "name": f"lst-{tag}"}).json()[
        "servers"]
    assert api.get("/servers", params={"metadata": "x"}).status_code == 400
    assert api.get("/servers", params={"bogus": 1}, mv="2.75").status_code == 400
    for sid in ids:
        api.delete(f"/servers/{sid}")
    for sid in ids:
        api.wait_gone(sid)
    deleted = api.get("/servers/detail", params={"name": f"lst-{tag}", "deleted": "true"}
                      ).json()["servers"]
    assert {s["status"] for s in deleted} == {"DELETED"}

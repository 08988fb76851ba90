"""networks "auto" as Nova does it: a project with no network of its own and none shared gets
its auto-allocated topology from the network service; one network is used as it is; several
are a 409."""

from __future__ import annotations

from typing import Any

import httpx

from tests.compute.conftest import Api, fault, make_tenant
from tests.support.cloud import RunningCloud


def network_api(api: Api, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, api.other("network", "/v2.0" + path),
                         headers={"X-Auth-Token": api.token}, timeout=30, **kw)


def test_auto_in_a_fresh_project_gets_the_auto_allocated_network(
        ccloud: RunningCloud, api: Api, image: str) -> None:
    tenant = make_tenant(ccloud, api).api
    assert network_api(tenant, "GET", "/networks", params={
        "project_id": tenant.project_id}).json()["networks"] == []
    first = tenant.boot("auto-1", image, networks="auto")["server"]
    server = tenant.wait(first["id"])
    [(net_name, [address])] = server["addresses"].items()
    assert net_name == "auto_allocated_network"
    topology = network_api(tenant, "GET", f"/auto-allocated-topology/{tenant.project_id}")
    net_id = topology.json()["auto_allocated_topology"]["id"]
    ports = network_api(tenant, "GET", "/ports", params={"device_id": first["id"]}).json()[
        "ports"]
    assert [p["network_id"] for p in ports] == [net_id]
    assert address["addr"] == ports[0]["fixed_ips"][0]["ip_address"]
    assert address["addr"].startswith("10.128.")  # the default subnet pool's prefix
    # A second server: the project has exactly one network now, and it is used.
    second = tenant.boot("auto-2", image, networks="auto")["server"]
    assert tenant.wait(second["id"])["addresses"].keys() == {"auto_allocated_network"}
    nets = network_api(tenant, "GET", "/networks", params={
        "project_id": tenant.project_id}).json()["networks"]
    assert [n["id"] for n in nets] == [net_id]
    for sid in (first["id"], second["id"]):
        assert tenant.delete(f"/servers/{sid}").status_code == 204
        tenant.wait_gone(sid)
    assert network_api(tenant, "DELETE",
                       f"/auto-allocated-topology/{tenant.project_id}").status_code == 204


def test_auto_uses_the_one_network_and_refuses_to_choose_among_several(
        ccloud: RunningCloud, api: Api, image: str) -> None:
    tenant = make_tenant(ccloud, api).api
    own = network_api(tenant, "POST", "/networks", json={"network": {"name": "mine"}}).json()[
        "network"]
    resp = network_api(tenant, "POST", "/subnets", json={"subnet": {
        "network_id": own["id"], "cidr": "10.77.0.0/24", "ip_version": 4}})
    assert resp.status_code == 201, resp.text
    created = tenant.boot("one-net", image, networks="auto")["server"]
    assert tenant.wait(created["id"])["addresses"].keys() == {"mine"}
    assert network_api(tenant, "GET", "/networks", params={
        "name": "auto_allocated_network", "project_id": tenant.project_id}).json()[
        "networks"] == []
    other = network_api(tenant, "POST", "/networks", json={"network": {"name": "mine-2"}})
    assert other.status_code == 201
    resp = tenant.post("/servers", {"server": {"name": "two-nets", "imageRef": image,
                                               "flavorRef": "42", "networks": "auto"}},
                       mv="2.100")
    assert resp.status_code == 409
    assert "Multiple possible networks found" in fault(resp)[1]["message"]
    assert tenant.delete(f"/servers/{created['id']}").status_code == 204
    tenant.wait_gone(created["id"])

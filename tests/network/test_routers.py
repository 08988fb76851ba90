"""Routers, floating IPs and port forwardings."""

from __future__ import annotations

from typing import Any

from tests.network.conftest import Api, error
from tests.support.cloud import RunningCloud


def public(api: Api) -> dict[str, Any]:
    nets: list[dict[str, Any]] = api.get("/networks", params={
        "name": "public", "router:external": "true"}).json()["networks"]
    return nets[0]


def test_router_gateway_interfaces_and_routes(api: Api, name: str) -> None:
    ext = public(api)
    net, sub = api.network(name, "10.90.0.0/24")
    router = api.create("router", name=name, external_gateway_info={"network_id": ext["id"]})
    gw = router["external_gateway_info"]
    assert gw["network_id"] == ext["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    rid = router["id"]
    iface = api.put(f"/routers/{rid}/add_router_interface", {"subnet_id": sub["id"]}).json()
    assert iface["subnet_id"] == sub["id"] and iface["network_id"] == net["id"]
    port = api.get(f"/ports/{iface['port_id']}").json()["port"]
    assert port["device_owner"] == "network:router_interface" and port["device_id"] == rid
    assert port["fixed_ips"][0]["ip_address"] == "10.90.0.1"
    again = api.put(f"/routers/{rid}/add_router_interface", {"subnet_id": sub["id"]})
    assert again.status_code == 400
    net2, sub2 = api.network(name + "o", "10.90.0.0/25")
    overlap = api.put(f"/routers/{rid}/add_router_interface", {"subnet_id": sub2["id"]})
    assert overlap.status_code == 400
    routes = [{"destination": "10.99.0.0/16", "nexthop": "10.90.0.50"}]
    upd = api.put(f"/routers/{rid}", {"router": {"routes": routes}}).json()["router"]
    assert upd["routes"] == routes
    bad = api.put(f"/routers/{rid}", {"router": {"routes": [
        {"destination": "10.98.0.0/16", "nexthop": "192.168.200.1"}]}})
    assert bad.status_code == 400 and error(bad)["type"] == "InvalidRoutes"
    added = api.put(f"/routers/{rid}/add_extraroutes", {"router": {"routes": [
        {"destination": "10.97.0.0/16", "nexthop": "10.90.0.51"}]}}).json()["router"]
    assert len(added["routes"]) == 2
    in_use = api.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]})
    assert in_use.status_code == 409
    assert error(in_use)["type"] == "RouterInterfaceInUseByRoute"
    api.put(f"/routers/{rid}", {"router": {"routes": []}})
    busy = api.delete(f"/routers/{rid}")
    assert busy.status_code == 409 and error(busy)["type"] == "RouterInUse"
    removed = api.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]})
    assert removed.status_code == 200 and removed.json()["port_id"] == iface["port_id"]
    assert api.get(f"/ports/{iface['port_id']}").status_code == 404
    missing = api.put(f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]})
    assert missing.status_code == 404
    cleared = api.put(f"/routers/{rid}", {"router": {"external_gateway_info": {}}}).json()
    assert cleared["router"]["external_gateway_info"] is None
    assert api.delete(f"/routers/{rid}").status_code == 204


def test_gateway_on_internal_network_is_refused(api: Api, name: str) -> None:
    net, _ = api.network(name, "10.91.0.0/24")
    resp = api.post("/routers", {"router": {"name": name, "external_gateway_info": {
        "network_id": net["id"]}}})
    assert resp.status_code == 400


def test_floating_ip_lifecycle(member_sdk, member: Api, api: Api, name: str) -> None:  # type: ignore[no-untyped-def]
    ext = public(member)
    net, sub = member.network(name, "10.92.0.0/24")
    port = member.create("port", network_id=net["id"])
    unreachable = member.post("/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "port_id": port["id"]}})
    assert unreachable.status_code == 404
    assert error(unreachable)["type"] == "ExternalGatewayForFloatingIPNotFound"
    router = member.create("router", name=name, external_gateway_info={
        "network_id": ext["id"]})
    member.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    fip = member_sdk.network.create_ip(floating_network_id=ext["id"], port_id=port["id"])
    assert fip.fixed_ip_address == port["fixed_ips"][0]["ip_address"]
    assert fip.router_id == router["id"] and fip.floating_ip_address.startswith("172.24.4.")
    second = member.post("/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "port_id": port["id"]}})
    assert second.status_code == 409
    assert error(second)["type"] == "FloatingIPPortAlreadyAssociated"
    gw_busy = member.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert gw_busy.status_code == 409
    iface_busy = member.put(f"/routers/{router['id']}/remove_router_interface",
                            {"subnet_id": sub["id"]})
    assert iface_busy.status_code == 409
    freed = member_sdk.network.update_ip(fip, port_id=None)
    assert freed.port_id is None and freed.fixed_ip_address is None
    taken = member.post("/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "floating_ip_address": "172.24.4.200"}})
    assert taken.status_code == 403  # choosing the address is for admins
    pinned = api.create("floatingip", floating_network_id=ext["id"],
                        floating_ip_address="172.24.4.200")
    assert pinned["floating_ip_address"] == "172.24.4.200"
    assert api.delete(f"/floatingips/{pinned['id']}").status_code == 204
    member_sdk.network.delete_ip(fip)


def test_port_forwardings(member: Api, name: str) -> None:
    ext = public(member)
    net, sub = member.network(name, "10.93.0.0/24")
    router = member.create("router", name=name, external_gateway_info={
        "network_id": ext["id"]})
    member.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    port = member.create("port", network_id=net["id"])
    fip = member.create("floatingip", floating_network_id=ext["id"])
    ip = port["fixed_ips"][0]["ip_address"]
    body = {"port_forwarding": {"internal_port_id": port["id"], "internal_ip_address": ip,
                                "internal_port": 22, "external_port": 2222,
                                "protocol": "tcp"}}
    resp = member.post(f"/floatingips/{fip['id']}/port_forwardings", body)
    assert resp.status_code == 201, resp.text
    pf = resp.json()["port_forwarding"]
    dup = member.post(f"/floatingips/{fip['id']}/port_forwardings", body)
    assert dup.status_code == 400
    shown = member.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert shown["port_forwardings"][0]["external_port"] == 2222
    assert shown["router_id"] == router["id"]
    upd = member.put(f"/floatingips/{fip['id']}/port_forwardings/{pf['id']}",
                     {"port_forwarding": {"external_port": 2223}})
    assert upd.json()["port_forwarding"]["external_port"] == 2223
    assert member.delete(f"/floatingips/{fip['id']}/port_forwardings/{pf['id']}"
                         ).status_code == 204


def test_cli_router_and_floating_ip(cloud: RunningCloud, api: Api, name: str) -> None:
    net, sub = api.network(name, "10.94.0.0/24")
    cloud.cli("router", "create", name, "--external-gateway", "public")
    cloud.cli("router", "add", "subnet", name, sub["id"])
    port = api.create("port", network_id=net["id"])
    fip = cloud.cli("floating", "ip", "create", "--port", port["id"], "public", "-f", "json")
    assert fip["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    shown = cloud.cli("router", "show", name, "-f", "json")
    assert shown["interfaces_info"][0]["subnet_id"] == sub["id"]

"""Ports: fixed IPs, MACs, security groups, port security, address pairs, DHCP options,
binding attributes, filters."""

from __future__ import annotations

from tests.network.conftest import Api, error
from tests.support.cloud import RunningCloud


def test_port_gets_an_address_mac_and_the_default_group(member_sdk, name: str) -> None:  # type: ignore[no-untyped-def]
    net = member_sdk.network.create_network(name=name)
    sub = member_sdk.network.create_subnet(network_id=net.id, cidr="192.168.60.0/24",
                                           ip_version=4)
    port = member_sdk.network.create_port(network_id=net.id, name=name)
    assert port.fixed_ips == [{"subnet_id": sub.id, "ip_address": "192.168.60.2"}]
    assert port.mac_address.startswith("fa:16:3e:")
    assert port.status == "DOWN" and port.binding_vnic_type == "normal"
    groups = list(member_sdk.network.security_groups(name="default"))
    assert len(groups) == 1 and port.security_group_ids == [groups[0].id]
    assert port.binding_host_id is None or port.binding_host_id == ""  # hidden from members
    member_sdk.network.delete_port(port)
    member_sdk.network.delete_network(net)


def test_fixed_ips_requested_and_conflicts(api: Api, name: str) -> None:
    net, sub = api.network(name, "10.60.0.0/24")
    nid, sid = net["id"], sub["id"]
    p1 = api.create("port", network_id=nid, fixed_ips=[{"ip_address": "10.60.0.50"}])
    assert p1["fixed_ips"] == [{"subnet_id": sid, "ip_address": "10.60.0.50"}]
    dup = api.post("/ports", {"port": {"network_id": nid,
                                       "fixed_ips": [{"ip_address": "10.60.0.50"}]}})
    assert dup.status_code == 409 and error(dup)["type"] == "IpAddressAlreadyAllocated"
    outside = api.post("/ports", {"port": {"network_id": nid, "fixed_ips": [
        {"subnet_id": sid, "ip_address": "10.61.0.5"}]}})
    assert outside.status_code == 400
    mac = api.post("/ports", {"port": {"network_id": nid, "mac_address": p1["mac_address"]}})
    assert mac.status_code == 409 and error(mac)["type"] == "MacAddressInUse"
    bad_mac = api.post("/ports", {"port": {"network_id": nid, "mac_address": "zz:00"}})
    assert bad_mac.status_code == 400
    moved = api.put(f"/ports/{p1['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sid, "ip_address": "10.60.0.51"}]}}).json()["port"]
    assert moved["fixed_ips"] == [{"subnet_id": sid, "ip_address": "10.60.0.51"}]
    again = api.create("port", network_id=nid, fixed_ips=[{"ip_address": "10.60.0.50"}])
    assert again["fixed_ips"][0]["ip_address"] == "10.60.0.50"
    listed = api.get("/ports", params={"fixed_ips": "ip_address=10.60.0.51"}).json()["ports"]
    assert [p["id"] for p in listed] == [p1["id"]]
    substr = api.get("/ports", params={"fixed_ips": "ip_address_substr=10.60.0.5",
                                       "network_id": nid}).json()["ports"]
    assert {p["id"] for p in substr} == {p1["id"], again["id"]}


def test_exhaustion_is_ip_address_generation_failure(api: Api, name: str) -> None:
    net, _ = api.network(name, "10.62.0.0/29")  # .2 - .6: five addresses
    for _ in range(5):
        api.create("port", network_id=net["id"])
    resp = api.post("/ports", {"port": {"network_id": net["id"]}})
    assert resp.status_code == 409
    assert error(resp)["type"] == "IpAddressGenerationFailure"
    assert len(api.get("/ports", params={"network_id": net["id"]}).json()["ports"]) == 5


def test_port_security_pairs_and_dhcp_options(api: Api, name: str) -> None:
    net, _ = api.network(name, "10.63.0.0/24")
    port = api.create("port", network_id=net["id"],
                      allowed_address_pairs=[{"ip_address": "10.63.0.200/32"},
                                             {"ip_address": "10.63.1.0/24",
                                              "mac_address": "fa:16:3e:aa:bb:cc"}],
                      extra_dhcp_opts=[{"opt_name": "bootfile-name", "opt_value": "pxe"}])
    assert port["allowed_address_pairs"][0]["mac_address"] == port["mac_address"]
    assert port["extra_dhcp_opts"][0]["opt_value"] == "pxe"
    refused = api.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False}})
    assert refused.status_code == 409
    off = api.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False,
                                                    "security_groups": [],
                                                    "allowed_address_pairs": []}})
    assert off.status_code == 200, off.text
    assert off.json()["port"]["security_groups"] == []
    dup = api.post("/ports", {"port": {"network_id": net["id"], "allowed_address_pairs": [
        {"ip_address": "10.1.1.1"}, {"ip_address": "10.1.1.1"}]}})
    assert dup.status_code == 400
    unknown = api.post("/ports", {"port": {"network_id": net["id"], "security_groups": [
        "00000000-0000-0000-0000-000000000000"]}})
    assert unknown.status_code == 404 and error(unknown)["type"] == "SecurityGroupNotFound"


def test_binding_attributes(api: Api, member: Api, name: str) -> None:
    net, _ = api.network(name, "10.64.0.0/24", shared=True)
    port = api.create("port", network_id=net["id"], **{"binding:host_id": "node-1",
                                                       "binding:vnic_type": "normal",
                                                       "device_owner": "compute:nova"})
    assert port["binding:vif_type"] == "bridge"
    assert port["binding:vif_details"]["bridge_name"] == "brq" + net["id"][:11]
    assert port["status"] == "DOWN"
    listed = api.get("/ports", params={"binding:host_id": "node-1"}).json()["ports"]
    assert port["id"] in {p["id"] for p in listed}
    unbound = api.put(f"/ports/{port['id']}", {"port": {"binding:host_id": ""}}).json()["port"]
    assert unbound["binding:vif_type"] == "unbound"
    forbidden = member.post("/ports", {"port": {"network_id": net["id"],
                                                "binding:host_id": "node-1"}})
    assert forbidden.status_code == 403
    mine = member.create("port", network_id=net["id"])
    assert "binding:vif_type" not in mine and "binding:host_id" not in mine


def test_router_ports_cannot_be_deleted_directly(api: Api, name: str) -> None:
    net, sub = api.network(name, "10.65.0.0/24")
    router = api.create("router", name=name)
    iface = api.put(f"/routers/{router['id']}/add_router_interface",
                    {"subnet_id": sub["id"]}).json()
    resp = api.delete(f"/ports/{iface['port_id']}")
    assert resp.status_code == 409 and error(resp)["type"] == "ServicePortInUse"


def test_cli_port_create_with_fixed_ip(cloud: RunningCloud, api: Api, name: str) -> None:
    net, sub = api.network(name, "10.66.0.0/24")
    out = cloud.cli("port", "create", "--network", net["id"], "--fixed-ip",
                    f"subnet={sub['id']},ip-address=10.66.0.77", name, "-f", "json")
    assert out["fixed_ips"][0]["ip_address"] == "10.66.0.77"

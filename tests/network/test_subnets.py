"""Subnets: CIDR checks, gateway, allocation pools, DNS, host routes, IPv6 modes, pools."""

from __future__ import annotations

from tests.network.conftest import Api, error


def test_defaults_and_update_with_sdk(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    net = admin.network.create_network(name=name)
    try:
        sub = admin.network.create_subnet(network_id=net.id, cidr="10.50.0.0/24", ip_version=4,
                                          dns_nameservers=["8.8.8.8"], name=name,
                                          host_routes=[{"destination": "10.9.0.0/16",
                                                        "nexthop": "10.50.0.9"}])
        assert sub.gateway_ip == "10.50.0.1"
        assert sub.allocation_pools == [{"start": "10.50.0.2", "end": "10.50.0.254"}]
        assert sub.is_dhcp_enabled and sub.dns_nameservers == ["8.8.8.8"]
        upd = admin.network.update_subnet(sub, gateway_ip=None, dns_nameservers=[],
                                          name=name + "x")
        assert upd.gateway_ip is None and upd.dns_nameservers == [] and upd.name == name + "x"
        assert admin.network.get_network(net.id).subnet_ids == [sub.id]
    finally:
        admin.network.delete_network(net)


def test_bad_subnets(api: Api, name: str) -> None:
    net, _ = api.network(name, "10.51.0.0/24")
    nid = net["id"]

    def post(**attrs: object) -> tuple[int, str]:
        resp = api.post("/subnets", {"subnet": {"network_id": nid, "ip_version": 4, **attrs}})
        return resp.status_code, error(resp)["type"] if resp.status_code >= 400 else ""

    assert post(cidr="10.51.0.128/25") == (400, "InvalidInput")  # overlaps
    assert post(cidr="10.52.0.0/33")[0] == 400
    assert post(cidr="not-a-cidr")[0] == 400
    assert post(cidr="10.53.0.0/24", gateway_ip="10.99.0.1") == (400, "InvalidInput")
    assert post(cidr="10.53.0.0/24", allocation_pools=[
        {"start": "10.53.1.2", "end": "10.53.1.9"}]) == (400, "OutOfBoundsAllocationPool")
    assert post(cidr="10.53.0.0/24", allocation_pools=[
        {"start": "10.53.0.2", "end": "10.53.0.9"},
        {"start": "10.53.0.5", "end": "10.53.0.20"}]) == (400, "OverlappingAllocationPools")
    assert post(cidr="10.53.0.0/24", allocation_pools=[
        {"start": "10.53.0.1", "end": "10.53.0.9"}]) == (409,
                                                         "GatewayConflictWithAllocationPools")
    assert post(cidr="2001:db8::/64")[0] == 400  # ip_version 4 with a v6 CIDR
    assert post(cidr="10.53.0.0/24", dns_nameservers=["1.1.1.1", "1.1.1.1"])[0] == 400
    assert post(cidr="10.53.0.0/24", ipv6_ra_mode="slaac")[0] == 400
    assert api.post("/subnets", {"subnet": {"network_id": nid}}).status_code == 400


def test_ipv6_modes_and_slaac_addresses(api: Api, name: str) -> None:
    net, _ = api.network(name)
    early = api.create("port", network_id=net["id"], fixed_ips=[])
    sub = api.create("subnet", network_id=net["id"], ip_version=6, cidr="2001:db8:1::/64",
                     ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert sub["gateway_ip"] == "2001:db8:1::1"
    early_ips = api.get(f"/ports/{early['id']}").json()["port"]["fixed_ips"]
    assert [ip["subnet_id"] for ip in early_ips] == [sub["id"]]  # SLAAC reaches it too
    port = api.create("port", network_id=net["id"], mac_address="fa:16:3e:11:22:33")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"],
                                  "ip_address": "2001:db8:1:0:f816:3eff:fe11:2233"}]
    bad = api.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 6,
                                           "cidr": "2001:db8:2::/80", "ipv6_ra_mode": "slaac",
                                           "ipv6_address_mode": "slaac"}})
    assert bad.status_code == 400
    mixed = api.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 6,
                                             "cidr": "2001:db8:3::/64",
                                             "ipv6_ra_mode": "slaac",
                                             "ipv6_address_mode": "dhcpv6-stateful"}})
    assert mixed.status_code == 400
    stateful = api.create("subnet", network_id=net["id"], ip_version=6,
                          cidr="2001:db8:4::/64", ipv6_address_mode="dhcpv6-stateful")
    assert stateful["ipv6_ra_mode"] is None
    # SLAAC addresses do not keep their subnet alive: they leave the ports with it.
    assert api.delete(f"/subnets/{sub['id']}").status_code == 204
    left = api.get(f"/ports/{port['id']}").json()["port"]["fixed_ips"]
    assert all(ip["subnet_id"] != sub["id"] for ip in left)


def test_subnet_in_use(api: Api, name: str) -> None:
    net, sub = api.network(name, "10.54.0.0/29")
    port = api.create("port", network_id=net["id"])
    resp = api.delete(f"/subnets/{sub['id']}")
    assert resp.status_code == 409 and error(resp)["type"] == "SubnetInUse"
    api.delete(f"/ports/{port['id']}")
    assert api.delete(f"/subnets/{sub['id']}").status_code == 204


def test_subnet_pools_and_address_scopes(api: Api, name: str) -> None:
    scope = api.create("address_scope", name=name, ip_version=4)
    pool = api.create("subnetpool", name=name, prefixes=["10.200.0.0/16"],
                      default_prefixlen=26, address_scope_id=scope["id"])
    assert pool["min_prefixlen"] == 16 and pool["max_prefixlen"] == 32
    net, _ = api.network(name)
    a = api.create("subnet", network_id=net["id"], ip_version=4, subnetpool_id=pool["id"])
    b = api.create("subnet", network_id=net["id"], ip_version=4, subnetpool_id=pool["id"],
                   prefixlen=24)
    assert a["cidr"] == "10.200.0.0/26" and b["cidr"] == "10.200.1.0/24"
    shown = api.get(f"/networks/{net['id']}").json()["network"]
    assert shown["ipv4_address_scope"] == scope["id"]
    outside = api.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                               "subnetpool_id": pool["id"],
                                               "cidr": "10.9.0.0/24"}})
    assert outside.status_code == 400
    in_use = api.delete(f"/subnetpools/{pool['id']}")
    assert in_use.status_code == 409 and error(in_use)["type"] == "SubnetPoolInUse"
    grown = api.put(f"/subnetpools/{pool['id']}", {"subnetpool": {
        "prefixes": ["10.200.0.0/16", "10.201.0.0/16"]}}).json()["subnetpool"]
    assert grown["prefixes"] == ["10.200.0.0/15"]
    scope_in_use = api.delete(f"/address-scopes/{scope['id']}")
    assert scope_in_use.status_code == 409


def test_subnet_pool_quota(member: Api, api: Api, name: str) -> None:
    pool = api.create("subnetpool", name=name, prefixes=["10.210.0.0/16"], shared=True,
                      default_prefixlen=28, default_quota=32)
    net, _ = member.network(name)
    for _ in range(2):
        member.create("subnet", network_id=net["id"], ip_version=4, subnetpool_id=pool["id"])
    over = member.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                               "subnetpool_id": pool["id"]}})
    assert over.status_code == 409
    assert over.json()["NeutronError"]["type"] == "SubnetPoolQuotaExceeded"

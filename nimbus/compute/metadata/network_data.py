"""network_data.json, as Nova builds it from an instance's ports:

    links     one per port: {"id": tap name, "vif_id": port id, "type", "mtu",
              "ethernet_mac_address"}
    networks  one per (port, subnet) the port has an address on, "network<N>": a subnet with
              DHCP is {"type": "ipv4_dhcp" | "ipv6_dhcpv6-stateful", "link", "network_id"};
              otherwise the static form {"type": "ipv4" | "ipv6" | "ipv6_slaac" |
              "ipv6_dhcpv6-stateless", "ip_address", "netmask", "routes" (the default route
              through the gateway, then the subnet's host routes), "services" (its DNS servers)}
    services  every DNS server of those subnets, once: {"type": "dns", "address"}
"""

from __future__ import annotations

import ipaddress
from typing import Any


def _netmask(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False).netmask)


def _route(destination: str, gateway: str) -> dict[str, str]:
    net = ipaddress.ip_network(destination, strict=False)
    return {"network": str(net.network_address), "netmask": str(net.netmask),
            "gateway": gateway}


def _dns(subnet: dict[str, Any]) -> list[dict[str, str]]:
    return [{"type": "dns", "address": str(a)} for a in subnet.get("dns_nameservers") or []]


def _type(version: int, subnet: dict[str, Any]) -> tuple[str, bool]:
    """(network type, whether the guest gets its address by DHCP)"""
    if version == 6:
        mode = subnet.get("ipv6_address_mode")
        if mode in ("slaac", "dhcpv6-stateless"):
            return f"ipv6_{mode}", False
        if subnet.get("enable_dhcp"):
            return "ipv6_dhcpv6-stateful", True
        return "ipv6", False
    if subnet.get("enable_dhcp"):
        return "ipv4_dhcp", True
    return "ipv4", False


def _network(num: int, link: str, network_id: str, version: int, address: str,
             subnet: dict[str, Any] | None) -> dict[str, Any]:
    kind, dhcp = _type(version, subnet or {})
    entry: dict[str, Any] = {"id": f"network{num}", "type": kind, "link": link,
                             "network_id": network_id}
    if dhcp:
        return entry
    entry["ip_address"] = address
    routes: list[dict[str, str]] = []
    services: list[dict[str, str]] = []
    if subnet is not None:
        entry["netmask"] = _netmask(subnet["cidr"])
        if subnet.get("gateway_ip"):
            routes.append(_route("::/0" if version == 6 else "0.0.0.0/0",
                                 subnet["gateway_ip"]))
        routes += [_route(r["destination"], r["nexthop"])
                   for r in subnet.get("host_routes") or []]
        services = _dns(subnet)
    entry["routes"] = routes
    entry["services"] = services
    return entry


def build(network_info: list[dict[str, Any]], subnets: dict[str, dict[str, Any]],
          networks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    links: list[dict[str, Any]] = []
    nets: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for vif in network_info:
        port_id = str(vif.get("port_id") or "")
        link_id = str(vif.get("devname") or f"tap{port_id[:11]}")
        network = networks.get(str(vif.get("network_id")), {})
        links.append({"id": link_id, "vif_id": port_id,
                      "type": vif.get("vif_type") or "bridge", "mtu": network.get("mtu"),
                      "ethernet_mac_address": vif.get("mac_address")})
        seen: set[str] = set()
        for ip in vif.get("fixed_ips") or []:
            subnet_id = str(ip.get("subnet_id") or ip["ip_address"])
            if subnet_id in seen:
                continue  # one entry per subnet, for its first address (as Nova does)
            seen.add(subnet_id)
            subnet = subnets.get(subnet_id)
            version = int(ip.get("version") or (6 if ":" in ip["ip_address"] else 4))
            nets.append(_network(len(nets), link_id, str(vif.get("network_id")), version,
                                 ip["ip_address"], subnet))
            for dns in _dns(subnet or {}):
                if dns not in services:
                    services.append(dns)
    return {"links": links, "networks": nets, "services": services}

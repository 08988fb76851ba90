"""What a host must wire for its ports, computed by the server and sent to that host's agent:
the port (MAC, addresses, network segment, bridge), its security group rules with remote
groups resolved to addresses, its allowed address pairs, and for tunneled networks where the
network's ports on other hosts live (l2pop entries, key "fdb")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.network import l2pop
from nimbus.network.models import (
    AddressGroup,
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)


def bridge_name(network_id: str) -> str:
    return "brq" + network_id[:11]


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


async def for_ports(session: AsyncSession, ports: Sequence[Port]) -> list[dict[str, Any]]:
    if not ports:
        return []
    ids = [p.id for p in ports]
    net_ids = list({p.network_id for p in ports})
    nets = {n.id: n for n in (await session.scalars(select(Network).where(
        Network.id.in_(net_ids)))).all()}
    subnets = {s.id: s for s in (await session.scalars(select(Subnet).where(
        Subnet.network_id.in_(net_ids)))).all()}
    ips: dict[str, list[dict[str, Any]]] = {}
    for alloc in (await session.scalars(select(IPAllocation).where(
            IPAllocation.port_id.in_(ids)))).all():
        sub = subnets.get(alloc.subnet_id)
        ips.setdefault(alloc.port_id, []).append({
            "subnet_id": alloc.subnet_id, "ip_address": alloc.ip_address,
            "cidr": sub.cidr if sub else None, "gateway_ip": sub.gateway_ip if sub else None,
            "ip_version": sub.ip_version if sub else None})
    groups: dict[str, list[str]] = {}
    for pid, sg in (await session.execute(select(
            PortSecurityGroup.port_id, PortSecurityGroup.security_group_id).where(
            PortSecurityGroup.port_id.in_(ids)))).all():
        groups.setdefault(pid, []).append(sg)
    rules = await _rules(session, {sg for sgs in groups.values() for sg in sgs})
    fdb = await l2pop.entries(session, net_ids)
    out = []
    for port in ports:
        net = nets.get(port.network_id)
        if net is None:
            continue
        port_groups = sorted(groups.get(port.id, []))
        out.append({
            "port_id": port.id,
            "device": tap_name(port.id),
            "device_id": port.device_id,
            "device_owner": port.device_owner,
            "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up,
            "network": {"id": net.id, "network_type": net.network_type,
                        "physical_network": net.physical_network or None,
                        "segmentation_id": net.segmentation_id, "mtu": net.mtu,
                        "bridge": bridge_name(net.id)},
            "fixed_ips": ips.get(port.id, []),
            "port_security_enabled": port.port_security_enabled,
            "allowed_address_pairs": list(port.allowed_address_pairs or []),
            "security_groups": port_groups,
            "security_group_rules": [r for sg in port_groups for r in rules.get(sg, [])],
            "host": port.binding_host_id,
            "fdb": [e for e in fdb.get(net.id, []) if e["host"] != port.binding_host_id],
        })
    return out


async def _rules(session: AsyncSession, sg_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    if not sg_ids:
        return {}
    rows = (await session.scalars(select(SecurityGroupRule).where(
        SecurityGroupRule.security_group_id.in_(sg_ids)))).all()
    remote_groups = {r.remote_group_id for r in rows if r.remote_group_id}
    members: dict[str, list[str]] = {}
    if remote_groups:
        for sg, ip in (await session.execute(
                select(PortSecurityGroup.security_group_id, IPAllocation.ip_address).join(
                    IPAllocation, IPAllocation.port_id == PortSecurityGroup.port_id).where(
                    PortSecurityGroup.security_group_id.in_(remote_groups)))).all():
            members.setdefault(sg, []).append(ip)
    groups_of_addresses: dict[str, list[str]] = {}
    ag_ids = {r.remote_address_group_id for r in rows if r.remote_address_group_id}
    if ag_ids:
        for ag in (await session.scalars(select(AddressGroup).where(
                AddressGroup.id.in_(ag_ids)))).all():
            groups_of_addresses[ag.id] = list(ag.addresses or [])
    stateful = dict((await session.execute(select(SecurityGroup.id, SecurityGroup.stateful)
                                           .where(SecurityGroup.id.in_(sg_ids)))).all())
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.security_group_id, []).append({
            "id": r.id, "direction": r.direction, "ethertype": r.ethertype,
            "protocol": r.protocol, "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
            "remote_group_id": r.remote_group_id,
            "remote_ips": sorted(members.get(r.remote_group_id, []))
            if r.remote_group_id else groups_of_addresses.get(r.remote_address_group_id or "")
            if r.remote_address_group_id else None,
            "stateful": stateful.get(r.security_group_id, True)})
    return out


async def hosts_with_remote_rules(session: AsyncSession) -> list[str]:
    """Hosts with bound ports in security groups whose rules name a remote group or address
    group: their rules list addresses that change when ports come and go."""
    groups = select(SecurityGroupRule.security_group_id).where(or_(
        SecurityGroupRule.remote_group_id.is_not(None),
        SecurityGroupRule.remote_address_group_id.is_not(None)))
    return sorted((await session.scalars(select(Port.binding_host_id).join(
        PortSecurityGroup, PortSecurityGroup.port_id == Port.id).where(
        PortSecurityGroup.security_group_id.in_(groups), Port.binding_host_id != "")
        .distinct())).all())


async def for_host(session: AsyncSession, host: str) -> list[dict[str, Any]]:
    ports = (await session.scalars(select(Port).where(Port.binding_host_id == host))).all()
    return await for_ports(session, ports)


async def dhcp_for_network(session: AsyncSession, network_id: str) -> dict[str, Any]:
    """What a DHCP server of the network hands out: subnets and one entry per address."""
    subnets = (await session.scalars(select(Subnet).where(
        Subnet.network_id == network_id, Subnet.enable_dhcp.is_(True)))).all()
    entries = []
    for port_id, mac, ip, sid, dns_name, opts in (await session.execute(select(
            Port.id, Port.mac_address, IPAllocation.ip_address, IPAllocation.subnet_id,
            Port.dns_name, Port.extra_dhcp_opts).join(
            IPAllocation, IPAllocation.port_id == Port.id).where(
            Port.network_id == network_id))).all():
        entries.append({"port_id": port_id, "mac_address": mac, "ip_address": ip,
                        "subnet_id": sid, "hostname": dns_name or
                        "host-" + ip.replace(".", "-").replace(":", "-"),
                        "extra_dhcp_opts": opts or []})
    return {"network_id": network_id,
            "subnets": [{"id": s.id, "cidr": s.cidr, "gateway_ip": s.gateway_ip,
                         "ip_version": s.ip_version, "dns_nameservers": s.dns_nameservers,
                         "host_routes": s.host_routes, "allocation_pools": s.allocation_pools,
                         "ipv6_address_mode": s.ipv6_address_mode,
                         "ipv6_ra_mode": s.ipv6_ra_mode} for s in subnets],
            "entries": entries}

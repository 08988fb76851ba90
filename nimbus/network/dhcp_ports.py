"""DHCP ports: each DHCP agent serving a network gets a port on it (device_owner
network:dhcp, bound to the agent's host), with an address in every DHCP-enabled subnet, made
when the agent asks; and what a DHCP agent serves for a network (its payload)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.common.context import RequestContext
from nimbus.network import ports, standard, wiring
from nimbus.network.errors import not_found
from nimbus.network.models import IPAllocation, Network, Port, Subnet

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from nimbus.network.service import NetworkService

OWNER = "network:dhcp"


def device_id(network_id: str, host: str) -> str:
    """Upstream's form: dhcp<uuid5 of the host>-<network id>."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


async def ensure(svc: NetworkService, network_id: str, host: str) -> dict[str, Any]:
    """The port, made on first ask; later asks give it an address on DHCP-enabled subnets
    added since and bind it to `host`. The host's L2 agent hears of every change."""
    ctx = RequestContext.admin()
    dev = device_id(network_id, host)
    changed = created = False
    async with svc.db.transaction() as session:
        net = await session.get(Network, network_id)
        if net is None:
            raise not_found("network", network_id)
        port = (await session.scalars(select(Port).where(
            Port.network_id == network_id, Port.device_id == dev))).first()
        subnets = (await session.scalars(select(Subnet).where(
            Subnet.network_id == network_id, Subnet.enable_dhcp.is_(True)))).all()
        if port is None:
            port = await ports.create(session, svc, ctx, net, {
                "device_owner": OWNER, "device_id": dev, "binding:host_id": host,
                "fixed_ips": [{"subnet_id": s.id} for s in subnets]}, net.project_id)
            changed = created = True
        else:
            have = set((await session.scalars(select(IPAllocation.subnet_id).where(
                IPAllocation.port_id == port.id))).all())
            missing = [{"subnet_id": s.id} for s in subnets if s.id not in have]
            if missing:
                await ports.allocate_ips(session, net, port, missing, list(subnets))
                changed = True
            if port.binding_host_id != host:
                port.binding_host_id = host
                ports.bind(port, net)
                changed = True
            if changed:
                standard.bump(port)
                await session.flush()
        ex = await ports.extras(session, [port], svc.settings.dns_domain)
        body = ports.render(port, ex)
    if changed:
        from nimbus.network.rpc import send_port_updates

        await svc.notify("port.create.end" if created else "port.update.end", {"port": body})
        await send_port_updates(svc, [body["id"]])
    return body


async def network_payload(session: AsyncSession, svc: NetworkService,
                          network_id: str) -> dict[str, Any]:
    """What a DHCP server of the network hands out (wiring.dhcp_for_network), with the
    network's MTU and the DNS domain. A network that is gone has no subnets."""
    payload = await wiring.dhcp_for_network(session, network_id)
    net = await session.get(Network, network_id)
    payload["mtu"] = net.mtu if net is not None else None
    payload["domain"] = svc.settings.dns_domain
    payload["exists"] = net is not None
    return payload

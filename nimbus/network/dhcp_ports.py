"""DHCP ports: each DHCP agent serving a network gets a port on it (device_owner
network:dhcp), with an address in every DHCP-enabled subnet, made when the agent asks."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.common.context import RequestContext
from nimbus.network import ports
from nimbus.network.errors import not_found
from nimbus.network.models import Network, Port, Subnet

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

OWNER = "network:dhcp"


def device_id(network_id: str, host: str) -> str:
    """Upstream's form: dhcp<uuid5 of the host>-<network id>."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


async def ensure(svc: NetworkService, network_id: str, host: str) -> dict[str, Any]:
    ctx = RequestContext.admin()
    dev = device_id(network_id, host)
    async with svc.db.transaction() as session:
        net = await session.get(Network, network_id)
        if net is None:
            raise not_found("network", network_id)
        port = (await session.scalars(select(Port).where(
            Port.network_id == network_id, Port.device_id == dev))).first()
        if port is None:
            subnets = (await session.scalars(select(Subnet).where(
                Subnet.network_id == network_id, Subnet.enable_dhcp.is_(True)))).all()
            port = await ports.create(session, svc, ctx, net, {
                "device_owner": OWNER, "device_id": dev, "binding:host_id": host,
                "fixed_ips": [{"subnet_id": s.id} for s in subnets]}, net.project_id)
        ex = await ports.extras(session, [port], svc.settings.dns_domain)
        body = ports.render(port, ex)
    await svc.notify("port.create.end", {"port": body})
    return body

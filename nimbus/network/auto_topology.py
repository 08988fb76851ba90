"""Auto-allocated topology ("get me a network"): on a project's first request, a private
network with a subnet from each default subnet pool (IPv4, and IPv6 when there is a default v6
pool) and a router from it to the default external network; the same network afterwards.

One transaction builds it all, after inserting the project's row in
auto_allocated_topologies: the row's primary key makes a concurrent first request of the
same project wait (PostgreSQL, MariaDB: on the key; SQLite: on the write lock), fail on the
key, and read the topology the first one made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network import networks, quotas, routers, subnets
from nimbus.network.errors import conflict
from nimbus.network.models import AutoAllocatedTopology, Network, Router, Subnet, SubnetPool
from nimbus.web.errors import ApiError, Conflict

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

NETWORK_NAME = "auto_allocated_network"
ROUTER_NAME = "auto_allocated_router"
SUBNET_NAME = "auto_allocated_subnet_v{version}"
DRY_RUN = "dry-run"


def failure(reason: str) -> Conflict:
    return conflict(f"Deployment error: {reason}.", "AutoAllocationFailure")


async def default_external(session: AsyncSession) -> Network:
    net = (await session.scalars(select(Network).where(
        Network.external.is_(True), Network.is_default.is_(True)).limit(1))).first()
    if net is None:
        raise failure("No default router:external network")
    return net


async def default_pools(session: AsyncSession) -> list[SubnetPool]:
    """The default subnet pool of each IP version that has one, IPv4 first."""
    found: dict[int, SubnetPool] = {}
    for pool in (await session.scalars(select(SubnetPool).where(
            SubnetPool.is_default.is_(True)).order_by(SubnetPool.created_at))).all():
        found.setdefault(pool.ip_version, pool)
    return [found[v] for v in sorted(found)]


async def check(session: AsyncSession, project_id: str) -> dict[str, Any]:
    """?fields=dry-run: whether a topology could be made, making none."""
    await default_external(session)
    if not await default_pools(session):
        raise failure("No default subnetpools defined")
    return {"id": "dry-run=pass", "dry_run": "pass", "tenant_id": project_id,
            "project_id": project_id}


def response(network_id: str, project_id: str) -> dict[str, Any]:
    return {"id": network_id, "tenant_id": project_id, "project_id": project_id}


@dataclass
class Built:
    """What a first request made (for notifications and agent updates)."""

    network: Network
    router: Router
    subnets: list[Subnet] = field(default_factory=list)
    interfaces: list[dict[str, Any]] = field(default_factory=list)


async def ensure(session: AsyncSession, svc: NetworkService,
                 project_id: str) -> tuple[str, Built | None]:
    """The project's auto-allocated network id, and what was built if it was made now."""
    row = await session.get(AutoAllocatedTopology, project_id)
    if row is not None and row.network_id is not None:
        if await session.get(Network, row.network_id) is not None:
            return row.network_id, None
    if row is None:
        row = AutoAllocatedTopology(project_id=project_id, network_id=None, router_id=None)
        session.add(row)
        await session.flush()  # claims the project (see the module's docstring)
    external = await default_external(session)
    pools = await default_pools(session)
    if not pools:
        raise failure("Unable to provide tenant private network")
    await quotas.check(session, project_id, "network")
    await quotas.check(session, project_id, "subnet", len(pools))
    await quotas.check(session, project_id, "router")
    ctx = RequestContext.admin()
    net = await networks.create(session, svc, ctx, {"name": NETWORK_NAME}, project_id)
    built_subnets: list[Subnet] = []
    try:
        for pool in pools:
            attrs: dict[str, Any] = {"name": SUBNET_NAME.format(version=pool.ip_version),
                                     "ip_version": pool.ip_version, "subnetpool_id": pool.id}
            if pool.ip_version == 6:
                attrs.update(ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
            built_subnets.append(await subnets.create(session, svc, ctx, net, attrs,
                                                      project_id))
    except ApiError as exc:
        raise failure(f"Unable to provide tenant private network ({exc.message})") from exc
    try:
        router = await routers.create(session, svc, ctx, {
            "name": ROUTER_NAME, "external_gateway_info": {"network_id": external.id}},
            project_id)
        interfaces = [await routers.add_interface(session, svc, ctx, router,
                                                  {"subnet_id": s.id}) for s in built_subnets]
    except ApiError as exc:
        raise failure(f"Unable to provide external connectivity ({exc.message})") from exc
    row.network_id, row.router_id = net.id, router.id
    await session.flush()
    return net.id, Built(net, router, built_subnets, interfaces)


async def bodies(session: AsyncSession, ctx: RequestContext, built: Built) -> dict[str, Any]:
    """Rendered resources of a new topology, for the notifications."""
    ex = await networks.extras(session, ctx, [built.network])
    return {"network": networks.render(built.network, ex),
            "subnets": await subnets.render_many(session, built.subnets),
            "router": (await routers.render_many(session, [built.router]))[0],
            "interfaces": built.interfaces}


@dataclass
class Removed:
    network_id: str | None
    router_id: str | None
    interfaces: list[dict[str, Any]]


async def remove(session: AsyncSession, project_id: str) -> Removed | None:
    """Take the project's topology apart: router interfaces, router, network (409 when
    servers still use the network, or the router has interfaces of its own)."""
    row = await session.get(AutoAllocatedTopology, project_id)
    if row is None:
        return None
    network_id, router_id = row.network_id, row.router_id
    await session.delete(row)
    await session.flush()
    ctx = RequestContext.admin()
    router = await session.get(Router, router_id) if router_id else None
    net = await session.get(Network, network_id) if network_id else None
    interfaces: list[dict[str, Any]] = []
    if router is not None:
        for port in await routers.interface_ports(session, router.id):
            if net is not None and port.network_id == net.id:
                interfaces.append(await routers.remove_interface(
                    session, ctx, router, {"port_id": port.id}))
        await session.flush()
        await routers.delete_router(session, router)
    if net is not None:
        await networks.delete_network(session, net)
    return Removed(net.id if net is not None else None,
                   router.id if router is not None else None, interfaces)

"""What a new cloud gets, as DevStack sets it up.

At start: the external network `public` (flat, router:external) with a subnet whose pool
serves floating IPs and router gateways. On the first request made with a token of the admin
project (the network service knows identity only through tokens): that project becomes the
owner of `public`, and gets a `private` network and subnet and a router `router1` with its
gateway on `public` and an interface on `private`. Both steps are idempotent.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network import networks, subnets
from nimbus.network.models import Mark, Network

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

LOG = logging.getLogger(__name__)
ADMIN_MARK = "bootstrap.admin_project"


async def public_network(svc: NetworkService) -> None:
    settings = svc.settings
    async with svc.db.session() as session:
        exists = await session.scalar(select(Network.id).where(
            Network.name == settings.public_network, Network.external.is_(True)).limit(1))
        mark = await session.get(Mark, ADMIN_MARK)
    if mark is not None:
        svc.bootstrapped_projects.add(mark.value)
    if exists:
        return
    ctx = RequestContext.admin()
    net_cidr = ipaddress.ip_network(settings.public_cidr)
    gateway = str(net_cidr.network_address + 1)
    async with svc.db.transaction() as session:
        net = await networks.create(session, svc, ctx, {
            "name": settings.public_network, "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": settings.public_physical_network,
        }, mark.value if mark is not None else "")
        net.mtu = svc.settings.global_mtu
        await subnets.create(session, svc, ctx, net, {
            "name": settings.public_network + "-subnet", "ip_version": 4,
            "cidr": str(net_cidr), "gateway_ip": gateway, "enable_dhcp": False,
            "allocation_pools": [{"start": settings.public_pool[0],
                                  "end": settings.public_pool[1]}],
        }, net.project_id)


async def maybe_admin_project(svc: NetworkService, ctx: RequestContext) -> None:
    """Called for requests whose token is scoped to the admin project."""
    pid = ctx.project_id or ""
    if not svc.settings.bootstrap or not pid or pid in svc.bootstrapped_projects:
        return
    async with svc.db.transaction() as session:
        if await session.get(Mark, ADMIN_MARK) is not None:
            svc.bootstrapped_projects.add(pid)
            return
        session.add(Mark(key=ADMIN_MARK, value=pid))
        await session.flush()
        await _admin_resources(session, svc, pid)
    svc.bootstrapped_projects.add(pid)
    LOG.info("network bootstrap done for the admin project %s", pid)


async def _admin_resources(session: AsyncSession, svc: NetworkService, pid: str) -> None:
    settings = svc.settings
    ctx = RequestContext.admin()
    public = (await session.scalars(select(Network).where(
        Network.name == settings.public_network, Network.external.is_(True)))).first()
    if public is not None and not public.project_id:
        public.project_id = pid
        from nimbus.network.models import RBACPolicy, Subnet

        for sub in (await session.scalars(select(Subnet).where(
                Subnet.network_id == public.id))).all():
            sub.project_id = pid
        for rbac in (await session.scalars(select(RBACPolicy).where(
                RBACPolicy.object_id == public.id))).all():
            rbac.project_id = pid
    private = await networks.create(session, svc, ctx, {"name": settings.private_network}, pid)
    subnet = await subnets.create(session, svc, ctx, private, {
        "name": settings.private_network + "-subnet", "ip_version": 4,
        "cidr": settings.private_cidr}, pid)
    from nimbus.network import routers

    await routers.bootstrap_router(session, svc, ctx, pid, settings.router_name, public,
                                   subnet)

"""What a new cloud gets, as DevStack sets it up.

At start: the external network `public` (flat, router:external, the default external
network) with a subnet whose pool serves floating IPs and router gateways, and the shared
default IPv4 subnet pool `shared-default-subnetpool-v4` (what auto-allocated topologies take
their subnets from). On the first request made with a token of the admin
project (the network service knows identity only through tokens): that project becomes the
owner of `public`, and gets a `private` network and subnet and a router `router1` with its
gateway on `public` and an interface on `private`. Both steps are idempotent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network import networks, subnetpools, subnets
from nimbus.network.models import Mark, Network, SubnetPool

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

LOG = logging.getLogger(__name__)
ADMIN_MARK = "bootstrap.admin_project"
AUTO_MARK = "bootstrap.auto_allocation"
DEFAULT_POOL_V4 = "shared-default-subnetpool-v4"
# Apart from the bootstrap's private (10.0.0.0/26) and public (172.24.4.0/24) ranges.
DEFAULT_POOL_V4_PREFIX = "10.128.0.0/16"
DEFAULT_POOL_V4_PREFIXLEN = 26


async def public_network(svc: NetworkService) -> None:
    settings = svc.settings
    async with svc.db.session() as session:
        exists = await session.scalar(select(Network.id).where(
            Network.name == settings.public_network, Network.external.is_(True)).limit(1))
        mark = await session.get(Mark, ADMIN_MARK)
    if mark is not None:
        svc.bootstrapped_projects.add(mark.value)
    if not exists:
        await _public(svc, mark.value if mark is not None else "")
    await _auto_allocation(svc)


async def _public(svc: NetworkService, project_id: str) -> None:
    settings = svc.settings
    ctx = RequestContext.admin()
    net_cidr = ipaddress.ip_network(settings.public_cidr)
    gateway = str(net_cidr.network_address + 1)
    async with svc.db.transaction() as session:
        net = await networks.create(session, svc, ctx, {
            "name": settings.public_network, "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": settings.public_physical_network,
            "is_default": True,
        }, project_id)
        net.mtu = svc.settings.global_mtu
        await subnets.create(session, svc, ctx, net, {
            "name": settings.public_network + "-subnet", "ip_version": 4,
            "cidr": str(net_cidr), "gateway_ip": gateway, "enable_dhcp": False,
            "allocation_pools": [{"start": settings.public_pool[0],
                                  "end": settings.public_pool[1]}],
        }, net.project_id)


async def _auto_allocation(svc: NetworkService) -> None:
    """Once per cloud (also one made before auto-allocation existed): `public` becomes the
    default external network and the shared default IPv4 subnet pool is made, unless the
    operator has a default of either already."""
    async with svc.db.session() as session:
        if await session.get(Mark, AUTO_MARK) is not None:
            return
    settings = svc.settings
    async with svc.db.transaction() as session:
        if await session.get(Mark, AUTO_MARK) is not None:
            return
        session.add(Mark(key=AUTO_MARK, value="done"))
        has_default = await session.scalar(select(Network.id).where(
            Network.external.is_(True), Network.is_default.is_(True)).limit(1))
        public = (await session.scalars(select(Network).where(
            Network.name == settings.public_network, Network.external.is_(True)))).first()
        if not has_default and public is not None:
            public.is_default = True
        has_pool = await session.scalar(select(SubnetPool.id).where(
            SubnetPool.is_default.is_(True), SubnetPool.ip_version == 4).limit(1))
        if not has_pool:
            await subnetpools.create(session, RequestContext.admin(), {
                "name": DEFAULT_POOL_V4, "prefixes": [DEFAULT_POOL_V4_PREFIX],
                "default_prefixlen": DEFAULT_POOL_V4_PREFIXLEN, "shared": True,
                "is_default": True}, public.project_id if public is not None else "")


async def maybe_admin_project(svc: NetworkService, ctx: RequestContext) -> None:
    """Called for requests whose token is scoped to the admin project."""
    pid = ctx.project_id or ""
    if not svc.settings.bootstrap or not pid or pid in svc.bootstrapped_projects:
        return
    async with svc.bootstrap_lock:  # the start-up task and a first request may race
        if pid in svc.bootstrapped_projects:
            return
        try:
            async with svc.db.transaction() as session:
                if await session.get(Mark, ADMIN_MARK) is not None:
                    svc.bootstrapped_projects.add(pid)
                    return
                session.add(Mark(key=ADMIN_MARK, value=pid))
                await session.flush()
                network_id, router_id = await _admin_resources(session, svc, pid)
        except IntegrityError:  # another process did it first
            svc.bootstrapped_projects.add(pid)
            return
        svc.bootstrapped_projects.add(pid)
    LOG.info("network bootstrap done for the admin project %s", pid)
    # DHCP and the router come up now, not when a server first needs them.
    svc.after(svc.subnets_changed(network_id))
    svc.after(svc.routers_changed([router_id]))


async def admin_project_at_start(svc: NetworkService) -> None:
    """Make the admin project's network as soon as identity answers (it runs in another
    process, or behind the gateway this process is about to open), so that its DHCP server
    and router are ready before the first server boots."""
    from nimbus.clients.identity import IdentityClient

    settings = svc.cloud.settings.identity
    delay = 0.1
    while svc.settings.bootstrap:
        try:
            client = svc.cloud.clients.get(IdentityClient)
            found = await client.projects(filters={"name": settings.admin_project,
                                                   "domain_id": "default"})
            if found:
                await maybe_admin_project(svc, RequestContext(
                    project_id=found[0]["id"], project_name=settings.admin_project,
                    project_domain_id="default"))
            return
        except Exception as exc:
            LOG.debug("admin project network bootstrap waits for identity: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _admin_resources(session: AsyncSession, svc: NetworkService,
                           pid: str) -> tuple[str, str]:
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
    pool = (await session.scalars(select(SubnetPool).where(
        SubnetPool.name == DEFAULT_POOL_V4, SubnetPool.project_id == ""))).first()
    if pool is not None:
        pool.project_id = pid
        from nimbus.network.models import RBACPolicy as Rbac

        for rbac in (await session.scalars(select(Rbac).where(
                Rbac.object_id == pool.id))).all():
            rbac.project_id = pid
    private = await networks.create(session, svc, ctx, {"name": settings.private_network}, pid)
    subnet = await subnets.create(session, svc, ctx, private, {
        "name": settings.private_network + "-subnet", "ip_version": 4,
        "cidr": settings.private_cidr}, pid)
    from nimbus.network import routers

    router = await routers.bootstrap_router(session, svc, ctx, pid, settings.router_name,
                                            public, subnet)
    return private.id, router.id

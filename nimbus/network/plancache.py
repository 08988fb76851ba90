"""A short-lived, per-process memory of what creating a port reads: the network with its
subnets, and the project's port quota limit.

Entries live CACHE_SECONDS at most. Changes made through this process forget everything at
once; changes made by another process are seen within CACHE_SECONDS, and a port create that
trips over one (a subnet gone: foreign key error) forgets and reads again (api.ports)."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network import quotas
from nimbus.network.models import Network, Subnet

CACHE_SECONDS = 2.0


class PlanCache:
    def __init__(self) -> None:
        self._networks: dict[str, tuple[float, Network, list[Subnet]]] = {}
        self._limits: dict[tuple[str, str], tuple[float, int]] = {}

    def clear(self) -> None:
        self._networks.clear()
        self._limits.clear()

    async def network_and_subnets(self, session: AsyncSession, ctx: RequestContext,
                                  network_id: str) -> tuple[Network, list[Subnet]]:
        from nimbus.network.ports import network_and_subnets

        now = time.monotonic()
        hit = self._networks.get(network_id)
        if hit is not None and hit[0] > now:
            _, net, subnets = hit
            if ctx.is_admin or net.project_id == (ctx.project_id or "") or net.shared \
                    or net.external:
                return net, subnets
        net, subnets = await network_and_subnets(session, ctx, network_id)
        self._networks[network_id] = (now + CACHE_SECONDS, net, subnets)
        return net, subnets

    async def limit(self, session: AsyncSession, project_id: str, resource: str) -> int:
        now = time.monotonic()
        hit = self._limits.get((project_id, resource))
        if hit is not None and hit[0] > now:
            return hit[1]
        limit = await quotas.limit_of(session, project_id, resource)
        self._limits[(project_id, resource)] = (now + CACHE_SECONDS, limit)
        return limit



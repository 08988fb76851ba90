"""A short-lived, per-process memory of what creating a port reads: the network with its
subnets, and the project's port quota limit.

Entries live CACHE_SECONDS at most. Changes made through this process forget everything at
once; changes made by another process are seen within CACHE_SECONDS, and a port create that
trips over one (a subnet gone: foreign key error) forgets and reads again (api.ports)."""

from __future__ import annotations

import contextlib
import time
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network import quotas
from nimbus.network.models import Network, Subnet

if TYPE_CHECKING:
    from nimbus.db.engine import Database

CACHE_SECONDS = 2.0
# Below this share of its pool in use, a subnet is "sparse": an address may be picked at
# random without looking first (ipam.allocate_any's blind mode).
SPARSE = 0.02


class Reads:
    """A read session opened on first use: a plan served from memory needs none (opening and
    closing an unused session is a tenth of a port create's CPU)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stack = contextlib.AsyncExitStack()
        self._session: AsyncSession | None = None

    async def session(self) -> AsyncSession:
        if self._session is None:
            self._session = await self._stack.enter_async_context(self._db.session())
        return self._session

    async def __aenter__(self) -> Reads:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._session = None
        await self._stack.__aexit__(kind, exc, tb)


class PlanCache:
    def __init__(self) -> None:
        self._networks: dict[str, tuple[float, Network, list[Subnet]]] = {}
        self._sparse: dict[str, tuple[float, frozenset[str]]] = {}
        self._limits: dict[tuple[str, str], tuple[float, int]] = {}

    def clear(self) -> None:
        self._networks.clear()
        self._sparse.clear()
        self._limits.clear()

    async def network_and_subnets(self, reads: Reads, ctx: RequestContext,
                                  network_id: str) -> tuple[Network, list[Subnet]]:
        from nimbus.network.ports import network_and_subnets

        now = time.monotonic()
        hit = self._networks.get(network_id)
        if hit is not None and hit[0] > now:
            _, net, subnets = hit
            if ctx.is_admin or net.project_id == (ctx.project_id or "") or net.shared \
                    or net.external:
                return net, subnets
        net, subnets = await network_and_subnets(await reads.session(), ctx, network_id)
        self._networks[network_id] = (now + CACHE_SECONDS, net, subnets)
        return net, subnets

    async def sparse(self, reads: Reads, subnets: list[Subnet]) -> frozenset[str]:
        """Which of these subnets have less than SPARSE of their pool in use."""
        from sqlalchemy import func, select

        from nimbus.network import ipam
        from nimbus.network.models import IPAllocation

        big = [s for s in subnets if ipam.pool_size(s) > ipam.SCAN_LIMIT]
        if not big:
            return frozenset()
        key = ",".join(sorted(s.id for s in big))
        now = time.monotonic()
        hit = self._sparse.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        session = await reads.session()
        used = dict((await session.execute(select(IPAllocation.subnet_id, func.count()).where(
            IPAllocation.subnet_id.in_([s.id for s in big])).group_by(
            IPAllocation.subnet_id))).all())
        found = frozenset(s.id for s in big if used.get(s.id, 0) < SPARSE * ipam.pool_size(s))
        self._sparse[key] = (now + CACHE_SECONDS, found)
        return found

    async def limit(self, reads: Reads, project_id: str, resource: str) -> int:
        now = time.monotonic()
        hit = self._limits.get((project_id, resource))
        if hit is not None and hit[0] > now:
            return hit[1]
        limit = await quotas.limit_of(await reads.session(), project_id, resource)
        self._limits[(project_id, resource)] = (now + CACHE_SECONDS, limit)
        return limit



"""The service catalog as tokens and /v3/auth/catalog present it, cached per process."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from nimbus.db.engine import Database
from nimbus.identity.models import (
    CatalogService,
    Endpoint,
    EndpointGroup,
    ProjectEndpoint,
    ProjectEndpointGroup,
)

_TTL = 10.0  # other identity processes may change the catalog; re-read at least this often


class CatalogCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._services: list[dict[str, Any]] | None = None
        self._filters: dict[str, set[str]] = {}
        self._loaded_at = 0.0
        self._scoped: dict[str | None, list[dict[str, Any]]] = {}
        self._services_seen: list[dict[str, Any]] | None = None

    def invalidate(self) -> None:
        self._services = None
        self._scoped.clear()

    async def _load(self) -> list[dict[str, Any]]:
        if self._services is not None and time.monotonic() - self._loaded_at < _TTL:
            return self._services
        async with self.db.session() as session:
            services = (await session.scalars(
                select(CatalogService).where(CatalogService.enabled.is_(True)))).all()
            endpoints = (await session.scalars(
                select(Endpoint).where(Endpoint.enabled.is_(True)))).all()
            links = (await session.execute(
                select(ProjectEndpoint.endpoint_id, ProjectEndpoint.project_id))).all()
            groups = {g.id: g.filters or {} for g in (await session.scalars(
                select(EndpointGroup))).all()}
            group_links = (await session.execute(select(
                ProjectEndpointGroup.endpoint_group_id, ProjectEndpointGroup.project_id))).all()
            every_endpoint = (await session.scalars(select(Endpoint))).all() if groups else []
        by_service: dict[str, list[Endpoint]] = {}
        for ep in endpoints:
            by_service.setdefault(ep.service_id, []).append(ep)
        built = []
        for svc in sorted(services, key=lambda s: (s.type, s.id)):
            built.append({
                "id": svc.id, "type": svc.type, "name": svc.name or "",
                "endpoints": [
                    {"id": ep.id, "interface": ep.interface, "region_id": ep.region_id,
                     "region": ep.region_id, "url": ep.url}
                    for ep in sorted(by_service.get(svc.id, []), key=lambda e: e.interface)
                ],
            })
        filters: dict[str, set[str]] = {}
        for endpoint_id, project_id in links:
            filters.setdefault(project_id, set()).add(endpoint_id)
        # OS-EP-FILTER endpoint groups: the endpoints whose attributes match the group's filters
        for group_id, project_id in group_links:
            wanted = groups.get(group_id)
            if wanted is None:
                continue
            chosen = {ep.id for ep in every_endpoint
                      if all(getattr(ep, k, None) == v for k, v in wanted.items())}
            if chosen:  # as in Keystone, a filter that selects nothing filters nothing
                filters.setdefault(project_id, set()).update(chosen)
        self._services, self._filters = built, filters
        self._loaded_at = time.monotonic()
        return built

    async def for_scope(self, project_id: str | None) -> list[dict[str, Any]]:
        """The catalog with $(project_id)s filled in; endpoints that need a project but have
        none are left out, and a project with endpoint filters (OS-EP-FILTER endpoints or
        endpoint groups) sees only those endpoints, and only services that have some."""
        services = await self._load()
        cached = self._scoped.get(project_id)
        if cached is not None and services is self._services_seen:
            return cached
        if services is not self._services_seen:
            self._scoped.clear()
            self._services_seen = services
        allowed = self._filters.get(project_id or "")
        result = []
        for svc in services:
            eps = []
            for ep in svc["endpoints"]:
                if allowed is not None and ep["id"] not in allowed:
                    continue
                url: str = ep["url"]
                if "$(" in url or "%(" in url:
                    if not project_id:
                        continue
                    url = (url.replace("$(project_id)s", project_id)
                           .replace("$(tenant_id)s", project_id)
                           .replace("%(project_id)s", project_id)
                           .replace("%(tenant_id)s", project_id))
                eps.append({**ep, "url": url})
            if allowed and not eps:
                continue
            result.append({**svc, "endpoints": eps})
        if len(self._scoped) > 10000:
            self._scoped.clear()
        self._scoped[project_id] = result
        return result

"""What other services ask identity: does a project exist, which projects are there."""

from __future__ import annotations

from typing import Any

from nimbus.clients.base import RemoteApiError, ServiceClient
from nimbus.common.context import RequestContext


class IdentityClient(ServiceClient):
    service = "identity"

    async def project(self, project_id: str, *,
                      ctx: RequestContext | None = None) -> dict[str, Any] | None:
        try:
            body = await self.get_json(f"/v3/projects/{project_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status == 404:
                return None
            raise
        project: dict[str, Any] = body["project"]
        return project

    async def projects(self, *, ctx: RequestContext | None = None,
                       filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v3/projects", ctx=ctx, params=filters or {})
        projects: list[dict[str, Any]] = body["projects"]
        return projects

"""/v2.0/quotas: show, update, reset, details, defaults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import quotas as logic
from nimbus.network.api.common import Caller, caller
from nimbus.network.errors import bad_request
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.get("/v2.0/quotas")
async def list_quotas(c: Caller = Depends(caller)) -> Response:
    c.enforce("update_quota", {})  # listing every project's quotas is for admins
    async with c.svc.db.session() as session:
        projects = await logic.projects_with_quotas(session)
        out = []
        for pid in projects:
            limits = await logic.limits(session, pid)
            out.append({**limits, "project_id": pid, "tenant_id": pid})
    return json_response({"quotas": out})


@router.get("/v2.0/quotas/tenant")
@router.get("/v2.0/quotas/project")
async def my_project(c: Caller = Depends(caller)) -> Response:
    return json_response({"tenant": {"tenant_id": c.project_id},
                          "project": {"project_id": c.project_id}})


@router.get("/v2.0/quotas/{project_id}/default")
async def show_defaults(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_quota", {"project_id": project_id})
    return json_response({"quota": dict(logic.DEFAULTS)})


@router.get("/v2.0/quotas/{project_id}/details")
@router.get("/v2.0/quotas/{project_id}/details.json")
async def show_details(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_quota", {"project_id": project_id})
    async with c.svc.db.session() as session:
        return json_response({"quota": await logic.details(session, project_id)})


@router.get("/v2.0/quotas/{project_id}")
async def show_quota(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_quota", {"project_id": project_id})
    async with c.svc.db.session() as session:
        return json_response({"quota": await logic.limits(session, project_id)})


@router.put("/v2.0/quotas/{project_id}")
async def update_quota(project_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    c.enforce("update_quota", {"project_id": project_id})
    if set(body) != {"quota"}:
        raise bad_request("Invalid input: the body must be {\"quota\": {...}}.")
    async with c.svc.db.transaction() as session:
        limits = await logic.update(session, project_id, body["quota"])
    c.changed()
    return json_response({"quota": limits})


@router.delete("/v2.0/quotas/{project_id}", status_code=204)
async def reset_quota(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_quota", {"project_id": project_id})
    async with c.svc.db.transaction() as session:
        await logic.reset(session, project_id)
    c.changed()
    return no_content()

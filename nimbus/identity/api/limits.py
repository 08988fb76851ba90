"""/v3/registered_limits, /v3/limits and /v3/limits/model (unified limits, flat model)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import select
from starlette.responses import Response

from nimbus.identity import limits as logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.models import Project
from nimbus.identity.policy import ADMIN
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {
    # Keystone names the batch creations in the plural.
    "identity:create_registered_limits": ADMIN,
    "identity:create_limits": ADMIN,
    "identity:get_limit_model": "@",
}

LimitValue = StrictInt
MAX_LIMIT = 0x7FFFFFFF  # the largest signed 32-bit integer, as Keystone allows


class RegisteredLimitFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service_id: StrictStr | None = None
    region_id: StrictStr | None = Field(None, min_length=1, max_length=255)
    resource_name: StrictStr | None = Field(None, min_length=1, max_length=255)
    default_limit: LimitValue | None = Field(None, ge=-1, le=MAX_LIMIT)
    description: StrictStr | None = Field(None, max_length=255)


class RegisteredLimitCreateFields(RegisteredLimitFields):
    service_id: StrictStr
    resource_name: StrictStr = Field(..., min_length=1, max_length=255)
    default_limit: LimitValue = Field(..., ge=-1, le=MAX_LIMIT)


class RegisteredLimitsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registered_limits: list[RegisteredLimitCreateFields]


class RegisteredLimitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registered_limit: RegisteredLimitFields


class LimitCreateFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_id: StrictStr | None = None
    domain_id: StrictStr | None = None
    service_id: StrictStr
    region_id: StrictStr | None = Field(None, min_length=1, max_length=255)
    resource_name: StrictStr = Field(..., min_length=1, max_length=255)
    resource_limit: LimitValue = Field(..., ge=-1, le=MAX_LIMIT)
    description: StrictStr | None = Field(None, max_length=255)


class LimitsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limits: list[LimitCreateFields] = Field(..., min_length=1)


class LimitFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_limit: LimitValue | None = Field(None, ge=-1, le=MAX_LIMIT)
    description: StrictStr | None = Field(None, max_length=255)


class LimitUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: LimitFields


# -- registered limits -------------------------------------------------------------------------
@router.get("/v3/registered_limits")
async def list_registered_limits(c: Caller = Depends(caller), service_id: str | None = None,
                                 region_id: str | None = None,
                                 resource_name: str | None = None) -> Response:
    c.enforce("identity:list_registered_limits")
    async with c.svc.db.session() as session:
        rows = await logic.list_registered(session, {"service_id": service_id,
                                                     "region_id": region_id,
                                                     "resource_name": resource_name})
    base = c.url("")
    return json_response({"registered_limits": [logic.render_registered(r, base) for r in rows],
                          "links": c.collection_links()})


@router.post("/v3/registered_limits", status_code=201)
async def create_registered_limits(body: RegisteredLimitsCreate,
                                   c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_registered_limits")
    items = [r.model_dump(exclude_unset=True) for r in body.registered_limits]
    async with c.svc.db.transaction() as session:
        rows = await logic.create_registered(session, c.svc, items)
        base = c.url("")
        out = [logic.render_registered(r, base) for r in rows]
    return json_response({"registered_limits": out}, 201)


@router.get("/v3/registered_limits/{limit_id}")
async def show_registered_limit(limit_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_registered_limit")
    async with c.svc.db.session() as session:
        row = await logic.get_registered(session, limit_id)
    return json_response({"registered_limit": logic.render_registered(row, c.url(""))})


@router.patch("/v3/registered_limits/{limit_id}")
async def update_registered_limit(limit_id: str, body: RegisteredLimitUpdate,
                                  c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_registered_limit")
    data = body.registered_limit.model_dump(exclude_unset=True)
    for field in ("service_id", "resource_name", "default_limit"):
        if field in data and data[field] is None:
            raise BadRequest(f"Invalid input for field '{field}': None is not a valid value.")
    async with c.svc.db.transaction() as session:
        row = await logic.get_registered(session, limit_id)
        await logic.update_registered(session, c.svc, row, data)
        out = logic.render_registered(row, c.url(""))
    return json_response({"registered_limit": out})


@router.delete("/v3/registered_limits/{limit_id}", status_code=204)
async def delete_registered_limit(limit_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_registered_limit")
    async with c.svc.db.transaction() as session:
        row = await logic.get_registered(session, limit_id)
        await logic.delete_registered(session, c.svc, row)
    return no_content()


# -- limits ------------------------------------------------------------------------------------
@router.get("/v3/limits/model")
async def limit_model(c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_limit_model")
    return json_response({"model": dict(logic.MODEL)})


@router.get("/v3/limits")
async def list_limits(c: Caller = Depends(caller), service_id: str | None = None,
                      region_id: str | None = None, resource_name: str | None = None,
                      project_id: str | None = None, domain_id: str | None = None) -> Response:
    c.enforce("identity:list_limits")
    filters: dict[str, Any] = {"service_id": service_id, "region_id": region_id,
                               "resource_name": resource_name, "project_id": project_id,
                               "domain_id": domain_id}
    superuser = bool(c.ctx.system_scope) or c.ctx.is_admin or "service" in c.ctx.roles
    async with c.svc.db.session() as session:
        if superuser:
            rows = await logic.list_limits(session, filters)
        elif c.ctx.domain_id:
            in_domain = set((await session.scalars(select(Project.id).where(
                Project.domain_id == c.ctx.domain_id, Project.is_domain.is_(False)))).all())
            rows = [r for r in await logic.list_limits(session, filters)
                    if (r.project_id in in_domain if r.project_id
                        else r.domain_id == c.ctx.domain_id)]
        elif c.ctx.project_id:
            if project_id is not None and project_id != c.ctx.project_id:
                rows = []
            else:
                rows = await logic.list_limits(session, {**filters,
                                                         "project_id": c.ctx.project_id})
        else:
            rows = []
    base = c.url("")
    return json_response({"limits": [logic.render_limit(r, base) for r in rows],
                          "links": c.collection_links()})


@router.post("/v3/limits", status_code=201)
async def create_limits(body: LimitsCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_limits")
    items = []
    for limit in body.limits:
        data = limit.model_dump(exclude_unset=True)
        if (data.get("project_id") is None) == (data.get("domain_id") is None):
            raise BadRequest("Invalid input for field 'limits': a limit needs exactly one of "
                             "'project_id' and 'domain_id'.")
        items.append(data)
    async with c.svc.db.transaction() as session:
        rows = await logic.create_limits(session, c.svc, items)
        base = c.url("")
        out = [logic.render_limit(r, base) for r in rows]
    return json_response({"limits": out}, 201)


@router.get("/v3/limits/{limit_id}")
async def show_limit(limit_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await logic.get_limit(session, limit_id)
    c.enforce("identity:get_limit", {"target": {"limit": logic.render_limit(row, ""),
                                                "project_id": row.project_id,
                                                "domain_id": row.domain_id}})
    return json_response({"limit": logic.render_limit(row, c.url(""))})


@router.patch("/v3/limits/{limit_id}")
async def update_limit(limit_id: str, body: LimitUpdate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_limit")
    data = body.limit.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        row = await logic.get_limit(session, limit_id)
        await logic.update_limit(session, c.svc, row, data)
        out = logic.render_limit(row, c.url(""))
    return json_response({"limit": out})


@router.delete("/v3/limits/{limit_id}", status_code=204)
async def delete_limit(limit_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_limit")
    async with c.svc.db.transaction() as session:
        row = await logic.get_limit(session, limit_id)
        await logic.delete_limit(session, c.svc, row)
    return no_content()

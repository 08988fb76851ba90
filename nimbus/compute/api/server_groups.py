"""/os-server-groups: affinity, anti-affinity and their soft variants (with rules from 2.64)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import utcnow
from nimbus.compute import quotas
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.errors import QuotaExceeded
from nimbus.compute.models import Instance, ServerGroup, ServerGroupMember
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

_POLICIES = {"type": "array", "items": {"type": "string", "enum": ["anti-affinity",
                                                                    "affinity"]},
             "uniqueItems": True, "minItems": 1, "maxItems": 1}
CREATE: dict[str, Any] = {"type": "object", "properties": {"server_group": {
    "type": "object", "properties": {"name": v.NAME, "policies": _POLICIES},
    "required": ["name", "policies"], "additionalProperties": False}},
    "required": ["server_group"], "additionalProperties": False}
CREATE_215 = copy.deepcopy(CREATE)
CREATE_215["properties"]["server_group"]["properties"]["policies"]["items"]["enum"] += [
    "soft-anti-affinity", "soft-affinity"]
CREATE_264 = copy.deepcopy(CREATE_215)
_group = CREATE_264["properties"]["server_group"]
del _group["properties"]["policies"]
_group["required"] = ["name", "policy"]
_group["properties"]["policy"] = {"type": "string", "enum": [
    "anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]}
_group["properties"]["rules"] = {"type": "object", "properties": {
    "max_server_per_host": v.POSITIVE_INT}, "additionalProperties": False}


async def members_of(session: AsyncSession, groups: list[ServerGroup]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {g.id: [] for g in groups}
    if groups:
        for gid, uuid in (await session.execute(select(
                ServerGroupMember.group_id, ServerGroupMember.instance_uuid).join(
                Instance, Instance.uuid == ServerGroupMember.instance_uuid).where(
                ServerGroupMember.group_id.in_(list(out)), Instance.deleted.is_(False)))).all():
            out[gid].append(uuid)
    return out


def view(c: Caller, group: ServerGroup, members: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if c.at(64):
        out["policy"] = group.policy
        out["rules"] = group.rules or {}
    else:
        out["policies"] = [group.policy]
        out["metadata"] = {}
    out["members"] = members
    if c.at(13):
        out["project_id"] = group.project_id
        out["user_id"] = group.user_id
    return out


async def _get(c: Caller, session: AsyncSession, ident: str) -> ServerGroup:
    group = (await session.scalars(select(ServerGroup).where(ServerGroup.uuid == ident))
             ).first()
    if group is None:
        raise NotFound(f"Instance group {ident} could not be found.")
    return group


@router.post("/v2.1/os-server-groups", openapi_extra=body_doc(CREATE_264))
async def create_group(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-server-groups:create")
    schema = CREATE_264 if c.at(64) else CREATE_215 if c.at(15) else CREATE
    body = (await c.body(schema))["server_group"]
    if c.at(64):
        policy = body["policy"]
        rules = {k: int(val) for k, val in (body.get("rules") or {}).items()}
        if rules and policy != "anti-affinity":
            raise BadRequest("Only anti-affinity policy supports rules.")
    else:
        policy = body["policies"][0]
        rules = {}
    project = c.ctx.project_id or ""
    async with c.svc.db.transaction() as session:
        limit = (await quotas.limits(session, project, c.ctx.user_id))["server_groups"]
        count = int(await session.scalar(select(func.count()).select_from(ServerGroup).where(
            ServerGroup.project_id == project)) or 0)
        if limit >= 0 and count + 1 > limit:
            raise QuotaExceeded("Quota exceeded, too many server groups.")
        group = ServerGroup(uuid=new_uuid(), name=body["name"], project_id=project,
                            user_id=c.ctx.user_id or "", policy=policy, rules=rules,
                            created_at=utcnow())
        session.add(group)
    await c.svc.notify("server_group.create", {"server_group_id": group.uuid,
                                               "policy": policy})
    return json_response({"server_group": view(c, group, [])})


@router.get("/v2.1/os-server-groups")
async def list_groups(c: Caller = Depends(caller)) -> Response:
    params = c.query({"type": "object", "properties": {
        "all_projects": {"type": "string"}, "limit": v.NON_NEGATIVE_QUERY,
        "offset": v.NON_NEGATIVE_QUERY}, "additionalProperties": not c.at(75)})
    c.enforce("os_compute_api:os-server-groups:index")
    query = select(ServerGroup).order_by(ServerGroup.id)
    if "all_projects" in params and c.ctx.is_admin:
        c.enforce("os_compute_api:os-server-groups:index:all_projects")
    else:
        query = query.where(ServerGroup.project_id == c.ctx.project_id)
    offset = int(params.get("offset", 0))
    limit = c.limit(params)
    async with c.svc.db.session() as session:
        rows = list((await session.scalars(query.offset(offset).limit(limit))).all())
        members = await members_of(session, rows)
    return json_response({"server_groups": [view(c, g, members[g.id]) for g in rows]})


@router.get("/v2.1/os-server-groups/{ident}")
async def show_group(ident: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        group = await _get(c, session, ident)
        c.enforce("os_compute_api:os-server-groups:show", {"project_id": group.project_id})
        if not c.ctx.is_admin and group.project_id != c.ctx.project_id:
            raise NotFound(f"Instance group {ident} could not be found.")
        members = await members_of(session, [group])
    return json_response({"server_group": view(c, group, members[group.id])})


@router.delete("/v2.1/os-server-groups/{ident}")
async def delete_group(ident: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        group = await _get(c, session, ident)
        c.enforce("os_compute_api:os-server-groups:delete", {"project_id": group.project_id})
        if not c.ctx.is_admin and group.project_id != c.ctx.project_id:
            raise NotFound(f"Instance group {ident} could not be found.")
        await session.execute(delete(ServerGroupMember).where(
            ServerGroupMember.group_id == group.id))
        await session.delete(group)
    return Response(status_code=204)

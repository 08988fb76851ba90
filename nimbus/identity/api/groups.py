"""/v3/groups routes: CRUD and membership."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.requests import Request
from starlette.responses import Response

from nimbus.identity import groups as logic
from nimbus.identity import users as user_logic
from nimbus.identity.api.common import Caller, caller, truthy
from nimbus.identity.api.users import ID_PATTERN, name_comparators
from nimbus.identity.models import Group, User
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {}


class GroupFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, min_length=1, max_length=255)
    domain_id: StrictStr | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN)
    description: StrictStr | None = None


class GroupCreateFields(GroupFields):
    name: StrictStr = Field(..., min_length=1, max_length=255)


class GroupCreate(BaseModel):
    group: GroupCreateFields


class GroupUpdate(BaseModel):
    group: GroupFields


def _target(group: Group) -> dict[str, Any]:
    return {"target": {"group": {"id": group.id, "domain_id": group.domain_id},
                       "domain_id": group.domain_id}}


def _membership_target(group: Group, user: User) -> dict[str, Any]:
    return {"target": {"group": {"id": group.id, "domain_id": group.domain_id},
                       "user": {"id": user.id, "domain_id": user.domain_id},
                       "domain_id": group.domain_id}}


@router.post("/v3/groups", status_code=201)
async def create_group(body: GroupCreate, c: Caller = Depends(caller)) -> Response:
    data = body.group.model_dump(exclude_unset=True)
    domain_id = data.get("domain_id") or c.ctx.domain_id or c.ctx.project_domain_id or "default"
    c.enforce("identity:create_group", {"target": {"group": {"domain_id": domain_id},
                                                   "domain_id": domain_id}})
    async with c.svc.db.transaction() as session:
        group = await logic.create(session, c.svc, data, domain_id)
        out = logic.render(group, c.url(""))
    return json_response({"group": out}, 201)


@router.get("/v3/groups")
async def list_groups(request: Request, c: Caller = Depends(caller), name: str | None = None,
                      domain_id: str | None = None) -> Response:
    domain_id = domain_id or c.ctx.domain_id
    c.enforce("identity:list_groups", {"target": {"domain_id": domain_id}})
    filters = {"name": name, "domain_id": domain_id,
               "name_comparators": name_comparators(request)}
    async with c.svc.db.session() as session:
        rows = await logic.list_groups(session, filters)
    base = c.url("")
    return json_response({"groups": [logic.render(g, base) for g in rows],
                          "links": c.collection_links()})


@router.get("/v3/groups/{group_id}")
async def show_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        group = await logic.get(session, group_id)
        c.enforce("identity:get_group", _target(group))
    return json_response({"group": logic.render(group, c.url(""))})


@router.patch("/v3/groups/{group_id}")
async def update_group(group_id: str, body: GroupUpdate, c: Caller = Depends(caller)) -> Response:
    data = body.group.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        group = await logic.get(session, group_id)
        c.enforce("identity:update_group", _target(group))
        await logic.update(session, c.svc, group, data)
        out = logic.render(group, c.url(""))
    return json_response({"group": out})


@router.delete("/v3/groups/{group_id}", status_code=204)
async def delete_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        group = await logic.get(session, group_id)
        c.enforce("identity:delete_group", _target(group))
        await logic.delete_group(session, c.svc, group)
    return no_content()


# -- membership --------------------------------------------------------------------------------
@router.get("/v3/groups/{group_id}/users")
async def list_group_users(request: Request, group_id: str, c: Caller = Depends(caller),
                           name: str | None = None, domain_id: str | None = None,
                           enabled: str | None = None,
                           password_expires_at: str | None = None) -> Response:
    async with c.svc.db.session() as session:
        group = await logic.get(session, group_id)
        c.enforce("identity:list_users_in_group", _target(group))
        rows = await logic.members(session, group.id, {
            "name": name, "domain_id": domain_id, "enabled": truthy(enabled),
            "password_expires_at": password_expires_at,
            "name_comparators": name_comparators(request)})
    base = c.url("")
    return json_response({"users": [user_logic.render(u, base) for u in rows],
                          "links": c.collection_links()})


async def _pair(session: Any, c: Caller, rule: str, group_id: str,
                user_id: str) -> tuple[Group, User]:
    group = await logic.get(session, group_id)
    user = await user_logic.get(session, user_id)
    c.enforce(rule, _membership_target(group, user))
    if user.domain_id != group.domain_id:
        # A domain manager manages memberships only when both sides are in their domain.
        target = _membership_target(group, user)
        target["target"]["domain_id"] = user.domain_id
        c.enforce(rule, target)
    return group, user


@router.put("/v3/groups/{group_id}/users/{user_id}", status_code=204)
async def add_user(group_id: str, user_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        group, user = await _pair(session, c, "identity:add_user_to_group", group_id, user_id)
        await logic.add_member(session, c.svc, group, user)
    return no_content()


@router.api_route("/v3/groups/{group_id}/users/{user_id}", methods=["GET", "HEAD"],
                  status_code=204)
async def check_user(group_id: str, user_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        group, user = await _pair(session, c, "identity:check_user_in_group", group_id,
                                  user_id)
        if not await logic.is_member(session, group.id, user.id):
            raise logic.not_member(group.id, user.id)
    return no_content()


@router.delete("/v3/groups/{group_id}/users/{user_id}", status_code=204)
async def remove_user(group_id: str, user_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        group, user = await _pair(session, c, "identity:remove_user_from_group", group_id,
                                  user_id)
        await logic.remove_member(session, c.svc, group, user)
    return no_content()

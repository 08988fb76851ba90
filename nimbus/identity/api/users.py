"""/v3/users routes: CRUD, self-service password change, a user's groups and projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.requests import Request
from starlette.responses import Response

from nimbus.common.context import RequestContext
from nimbus.identity import groups as group_logic
from nimbus.identity import projects as project_logic
from nimbus.identity import users as logic
from nimbus.identity.api.common import Caller, caller, service, truthy
from nimbus.identity.models import User
from nimbus.web.auth import optional_context
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {}

ID_PATTERN = r"^[a-zA-Z0-9_-]+$"


class UserFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, min_length=1, max_length=255)
    domain_id: StrictStr | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN)
    enabled: StrictBool | None = None
    default_project_id: StrictStr | None = Field(None, min_length=1, max_length=64,
                                                 pattern=ID_PATTERN)
    description: StrictStr | None = None
    password: StrictStr | None = Field(None, max_length=logic.MAX_PASSWORD)
    options: dict[str, Any] | None = None
    federated: list[Any] | None = None


class UserCreateFields(UserFields):
    name: StrictStr = Field(..., min_length=1, max_length=255)


class UserCreate(BaseModel):
    user: UserCreateFields


class UserUpdate(BaseModel):
    user: UserFields


class PasswordFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: StrictStr = Field(..., max_length=logic.MAX_PASSWORD)
    original_password: StrictStr = Field(..., max_length=logic.MAX_PASSWORD)


class PasswordChange(BaseModel):
    user: PasswordFields


def _target(user: User) -> dict[str, Any]:
    return {"target": {"user": {"id": user.id, "domain_id": user.domain_id},
                       "user_id": user.id, "domain_id": user.domain_id}}


def name_comparators(request: Request) -> dict[str, str]:
    """Keystone's `name__icontains=...`-style filters."""
    found = {}
    for key, value in request.query_params.items():
        prefix, sep, comparator = key.partition("__")
        if prefix == "name" and sep and comparator in logic.NAME_COMPARATORS:
            found[comparator] = value
    return found


def _body(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The request's attributes without the clear-text password, and that password."""
    password = data.pop("password", None)
    logic.check_password_length(password)
    return data, password


@router.post("/v3/users", status_code=201)
async def create_user(body: UserCreate, c: Caller = Depends(caller)) -> Response:
    data, password = _body(body.user.model_dump(exclude_unset=True))
    domain_id = data.get("domain_id") or c.ctx.domain_id or c.ctx.project_domain_id or "default"
    c.enforce("identity:create_user", {"target": {"user": {"domain_id": domain_id},
                                                  "domain_id": domain_id}})
    password_hash = await c.svc.hasher.hash(password) if password is not None else None
    async with c.svc.db.transaction() as session:
        user = await logic.create(session, c.svc, data, domain_id, password_hash)
        out = logic.render(user, c.url(""))
    return json_response({"user": out}, 201)


@router.get("/v3/users")
async def list_users(request: Request, c: Caller = Depends(caller), name: str | None = None,
                     domain_id: str | None = None, enabled: str | None = None,
                     idp_id: str | None = None, protocol_id: str | None = None,
                     unique_id: str | None = None,
                     password_expires_at: str | None = None) -> Response:
    # A domain-scoped token lists its own domain unless the caller names one (as Keystone).
    domain_id = domain_id or c.ctx.domain_id
    c.enforce("identity:list_users", {"target": {"domain_id": domain_id}})
    filters = {"name": name, "domain_id": domain_id, "enabled": truthy(enabled),
               "idp_id": idp_id, "protocol_id": protocol_id, "unique_id": unique_id,
               "password_expires_at": password_expires_at,
               "name_comparators": name_comparators(request)}
    async with c.svc.db.session() as session:
        rows = await logic.list_users(session, filters)
    base = c.url("")
    return json_response({"users": [logic.render(u, base) for u in rows],
                          "links": c.collection_links()})


@router.get("/v3/users/{user_id}")
async def show_user(user_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        user = await logic.get(session, user_id)
        c.enforce("identity:get_user", _target(user))
    return json_response({"user": logic.render(user, c.url(""))})


@router.patch("/v3/users/{user_id}")
async def update_user(user_id: str, body: UserUpdate, c: Caller = Depends(caller)) -> Response:
    data, password = _body(body.user.model_dump(exclude_unset=True))
    if "password" in body.user.model_fields_set:
        data["password"] = None  # marks the change; the clear text stays out of the logic
    async with c.svc.db.session() as session:
        c.enforce("identity:update_user", _target(await logic.get(session, user_id)))
    password_hash = await c.svc.hasher.hash(password) if password is not None else None
    async with c.svc.db.transaction() as session:
        user = await logic.get(session, user_id)
        c.enforce("identity:update_user", _target(user))
        await logic.update(session, c.svc, user, data, password_hash)
        out = logic.render(user, c.url(""))
    return json_response({"user": out})


@router.delete("/v3/users/{user_id}", status_code=204)
async def delete_user(user_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        user = await logic.get(session, user_id)
        c.enforce("identity:delete_user", _target(user))
        await logic.delete_user(session, c.svc, user)
    return no_content()


@router.post("/v3/users/{user_id}/password", status_code=204)
async def change_password(request: Request, user_id: str, body: PasswordChange,
                          ctx: RequestContext = Depends(optional_context)) -> Response:
    """The original password proves who is asking, so (as in Keystone) no token is needed:
    a user whose password expired can still change it. A token, when given, must pass
    policy."""
    svc = service(request)
    if ctx.user_id is not None:
        svc.enforce("identity:change_password", ctx.policy_credentials(),
                    {"target": {"user_id": user_id, "user": {"id": user_id}}})
    async with svc.db.session() as session:
        await logic.check_original_password(svc, await session.get(User, user_id),
                                            body.user.original_password)
    password_hash = await svc.hasher.hash(body.user.password)
    async with svc.db.transaction() as session:
        user = await logic.get(session, user_id)
        await logic.change_password(session, svc, user, password_hash)
    return no_content()


@router.get("/v3/users/{user_id}/groups")
async def list_user_groups(user_id: str, c: Caller = Depends(caller), name: str | None = None,
                           domain_id: str | None = None) -> Response:
    async with c.svc.db.session() as session:
        user = await logic.get(session, user_id)
        c.enforce("identity:list_groups_for_user", _target(user))
        rows = await logic.groups_of(session, user.id, {"name": name, "domain_id": domain_id})
    base = c.url("")
    return json_response({"groups": [group_logic.render(g, base) for g in rows],
                          "links": c.collection_links()})


@router.get("/v3/users/{user_id}/projects")
async def list_user_projects(user_id: str, c: Caller = Depends(caller), name: str | None = None,
                             domain_id: str | None = None,
                             enabled: str | None = None) -> Response:
    async with c.svc.db.session() as session:
        user = await logic.get(session, user_id)
        c.enforce("identity:list_user_projects", _target(user))
        ids = await logic.project_ids_of(session, user.id)
        rows = await project_logic.list_projects(
            session, {"name": name, "domain_id": domain_id, "enabled": truthy(enabled)},
            sorted(ids))
        tags = await project_logic.tags_of(session, [p.id for p in rows])
    base = c.url("")
    return json_response({"projects": [project_logic.render(p, tags[p.id], base)
                                       for p in rows],
                          "links": c.collection_links()})

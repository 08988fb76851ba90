"""/v3/roles, implied roles (/v3/roles/{prior}/implies/...) and /v3/role_inferences."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import Response

from nimbus.identity import roles as logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.models import Role
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {}


class RoleFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr | None = Field(None, min_length=1, max_length=255)
    description: StrictStr | None = None
    domain_id: StrictStr | None = Field(None, max_length=64)
    options: dict[str, Any] | None = None


class RoleCreateFields(RoleFields):
    name: StrictStr = Field(..., min_length=1, max_length=255)


class RoleCreate(BaseModel):
    role: RoleCreateFields


class RoleUpdate(BaseModel):
    role: RoleFields


def _target(role: Role) -> dict[str, Any]:
    domain_id = logic.domain_of(role)
    return {"target": {"role": {"id": role.id, "name": role.name, "domain_id": domain_id},
                       "domain_id": domain_id}}


def _rule(action: str, role: Role) -> str:
    """Keystone protects domain-specific roles with their own rules."""
    return f"identity:{action}_domain_role" if logic.domain_of(role) else f"identity:{action}_role"


# -- roles -------------------------------------------------------------------------------------
@router.post("/v3/roles", status_code=201)
async def create_role(body: RoleCreate, c: Caller = Depends(caller)) -> Response:
    data = body.role.model_dump(exclude_unset=True)
    domain_id = data.get("domain_id")
    if domain_id:
        c.enforce("identity:create_domain_role", {"target": {
            "role": {"name": data["name"], "domain_id": domain_id}, "domain_id": domain_id}})
    else:
        c.enforce("identity:create_role")
    async with c.svc.db.transaction() as session:
        role = await logic.create(session, c.svc, data)
        out = logic.render(role, c.url(""))
    return json_response({"role": out}, 201)


@router.api_route("/v3/roles", methods=["GET", "HEAD"])
async def list_roles(c: Caller = Depends(caller), name: str | None = None,
                     domain_id: str | None = None) -> Response:
    if domain_id:
        c.enforce("identity:list_domain_roles", {"target": {"domain_id": domain_id}})
    else:
        c.enforce("identity:list_roles", {"target": {"domain_id": c.ctx.domain_id}})
    async with c.svc.db.session() as session:
        rows = await logic.list_roles(session, {"name": name, "domain_id": domain_id})
    base = c.url("")
    return json_response({"roles": [logic.render(r, base) for r in rows],
                          "links": c.collection_links()})


@router.api_route("/v3/roles/{role_id}", methods=["GET", "HEAD"])
async def show_role(role_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        role = await logic.get(session, role_id)
        c.enforce(_rule("get", role), _target(role))
    return json_response({"role": logic.render(role, c.url(""))})


@router.patch("/v3/roles/{role_id}")
async def update_role(role_id: str, body: RoleUpdate, c: Caller = Depends(caller)) -> Response:
    data = body.role.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        role = await logic.get(session, role_id)
        c.enforce(_rule("update", role), _target(role))
        await logic.update(session, c.svc, role, data)
        out = logic.render(role, c.url(""))
    return json_response({"role": out})


@router.delete("/v3/roles/{role_id}", status_code=204)
async def delete_role(role_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        role = await logic.get(session, role_id)
        c.enforce(_rule("delete", role), _target(role))
        await logic.delete_role(session, c.svc, role)
    return no_content()


# -- implied roles -----------------------------------------------------------------------------
def _pair_target(prior: Role, implied: Role | None = None) -> dict[str, Any]:
    target: dict[str, Any] = {"prior_role": {"id": prior.id, "name": prior.name,
                                             "domain_id": logic.domain_of(prior)}}
    if implied is not None:
        target["implied_role"] = {"id": implied.id, "name": implied.name,
                                  "domain_id": logic.domain_of(implied)}
    return {"target": target}


def _one_inference(prior: Role, implied: Role, c: Caller) -> dict[str, Any]:
    base = c.url("")
    return {"role_inference": logic.inference(prior, logic.ref(implied, base), base),
            "links": {"self": c.url(f"/v3/roles/{prior.id}/implies/{implied.id}")}}


@router.api_route("/v3/roles/{prior_id}/implies", methods=["GET", "HEAD"])
async def list_implied_roles(prior_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        prior = await logic.get(session, prior_id)
        c.enforce("identity:list_implied_roles", _pair_target(prior))
        implied = await logic.implied_by(session, prior.id)
    base = c.url("")
    return json_response({
        "role_inference": logic.inference(prior, [logic.ref(r, base) for r in implied], base),
        "links": {"self": c.url(f"/v3/roles/{prior.id}/implies")}})


@router.put("/v3/roles/{prior_id}/implies/{implied_id}", status_code=201)
async def create_implied_role(prior_id: str, implied_id: str,
                              c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        prior = await logic.get(session, prior_id)
        implied = await logic.get(session, implied_id)
        c.enforce("identity:create_implied_role", _pair_target(prior, implied))
        await logic.create_rule(session, c.svc, prior, implied)
    return json_response(_one_inference(prior, implied, c), 201)


@router.get("/v3/roles/{prior_id}/implies/{implied_id}")
async def show_implied_role(prior_id: str, implied_id: str,
                            c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        prior = await logic.get(session, prior_id)
        implied = await logic.get(session, implied_id)
        c.enforce("identity:get_implied_role", _pair_target(prior, implied))
        await logic.get_rule(session, prior, implied)
    return json_response(_one_inference(prior, implied, c))


@router.head("/v3/roles/{prior_id}/implies/{implied_id}", status_code=204)
async def check_implied_role(prior_id: str, implied_id: str,
                             c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        prior = await logic.get(session, prior_id)
        implied = await logic.get(session, implied_id)
        c.enforce("identity:check_implied_role", _pair_target(prior, implied))
        await logic.get_rule(session, prior, implied)
    return no_content()


@router.delete("/v3/roles/{prior_id}/implies/{implied_id}", status_code=204)
async def delete_implied_role(prior_id: str, implied_id: str,
                              c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        prior = await logic.get(session, prior_id)
        implied = await logic.get(session, implied_id)
        c.enforce("identity:delete_implied_role", _pair_target(prior, implied))
        await logic.delete_rule(session, c.svc, prior, implied)
    return no_content()


@router.api_route("/v3/role_inferences", methods=["GET", "HEAD"])
async def list_role_inferences(c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_role_inference_rules")
    async with c.svc.db.session() as session:
        rules = await logic.all_rules(session)
    base = c.url("")
    return json_response({"role_inferences": [
        logic.inference(prior, [logic.ref(r, base) for r in implied], base)
        for prior, implied in rules]})

"""/v3/policies (deprecated in Keystone since Queens, still served)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import Response

from nimbus.identity import policies as logic
from nimbus.identity.api.common import Caller, caller
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {}


class PolicyFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    blob: StrictStr | None = None
    type: StrictStr | None = Field(None, max_length=255)


class PolicyCreateFields(PolicyFields):
    blob: StrictStr
    type: StrictStr = Field(..., max_length=255)


class PolicyCreate(BaseModel):
    policy: PolicyCreateFields


class PolicyUpdate(BaseModel):
    policy: PolicyFields


@router.get("/v3/policies")
async def list_policies(c: Caller = Depends(caller), type: str | None = None) -> Response:
    c.enforce("identity:list_policies")
    async with c.svc.db.session() as session:
        rows = await logic.list_policies(session, type)
    base = c.url("")
    return json_response({"policies": [logic.render(p, base) for p in rows],
                          "links": c.collection_links()})


@router.post("/v3/policies", status_code=201)
async def create_policy(body: PolicyCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_policy")
    async with c.svc.db.transaction() as session:
        policy = await logic.create(session, c.svc, body.policy.model_dump(exclude_unset=True))
        out = logic.render(policy, c.url(""))
    return json_response({"policy": out}, 201)


@router.get("/v3/policies/{policy_id}")
async def show_policy(policy_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_policy")
    async with c.svc.db.session() as session:
        policy = await logic.get(session, policy_id)
    return json_response({"policy": logic.render(policy, c.url(""))})


@router.patch("/v3/policies/{policy_id}")
async def update_policy(policy_id: str, body: PolicyUpdate,
                        c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_policy")
    data = body.policy.model_dump(exclude_unset=True)
    if not data:
        raise BadRequest("Invalid input for field 'policy': {} does not have enough "
                         "properties.")
    for field in ("blob", "type"):
        if field in data and data[field] is None:
            raise BadRequest(f"Invalid input for field '{field}': None is not of type "
                             "'string'.")
    async with c.svc.db.transaction() as session:
        policy = await logic.get(session, policy_id)
        await logic.update(session, c.svc, policy, data)
        out = logic.render(policy, c.url(""))
    return json_response({"policy": out})


@router.delete("/v3/policies/{policy_id}", status_code=204)
async def delete_policy(policy_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_policy")
    async with c.svc.db.transaction() as session:
        policy = await logic.get(session, policy_id)
        await logic.delete(session, c.svc, policy)
    return no_content()

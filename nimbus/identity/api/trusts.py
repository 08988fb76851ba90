"""/v3/OS-TRUST/trusts: create, list, show and delete trusts; the roles they delegate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.responses import Response

from nimbus.common.tokens import TokenData
from nimbus.identity import trusts as logic
from nimbus.identity.api.application_credentials import RoleRef, caller_token
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.errors import not_found
from nimbus.web.errors import Forbidden
from nimbus.web.responses import json_response, no_content

router = APIRouter()

_ADMIN_OR_READER = "role:admin or (role:reader and system_scope:all)"
_TRUSTOR = "user_id:%(target.trust.trustor_user_id)s"
_TRUSTEE = "user_id:%(target.trust.trustee_user_id)s"
POLICY: dict[str, str] = {
    "identity:create_trust": _TRUSTOR,
    "identity:list_trusts": _ADMIN_OR_READER,
    "identity:list_trusts_for_trustor": f"{_ADMIN_OR_READER} or {_TRUSTOR}",
    "identity:list_trusts_for_trustee": f"{_ADMIN_OR_READER} or {_TRUSTEE}",
    "identity:get_trust": f"{_ADMIN_OR_READER} or {_TRUSTOR} or {_TRUSTEE}",
    "identity:list_roles_for_trust": f"{_ADMIN_OR_READER} or {_TRUSTOR} or {_TRUSTEE}",
    "identity:get_role_for_trust": f"{_ADMIN_OR_READER} or {_TRUSTOR} or {_TRUSTEE}",
    "identity:delete_trust": f"role:admin or {_TRUSTOR}",
}


class TrustFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    trustor_user_id: StrictStr = Field(..., min_length=1, max_length=64)
    trustee_user_id: StrictStr = Field(..., min_length=1, max_length=64)
    impersonation: StrictBool
    project_id: StrictStr | None = Field(None, max_length=64)
    roles: list[RoleRef] | None = None
    expires_at: StrictStr | None = None
    remaining_uses: StrictInt | None = Field(None, ge=1)
    allow_redelegation: StrictBool | None = None
    redelegation_count: StrictInt | None = Field(None, ge=0)


class TrustCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trust: TrustFields


def _no_app_cred(token: TokenData) -> None:
    if token.app_cred_id:
        raise Forbidden("You are not authorized to perform the requested action: Using method "
                        "'application_credential' is not allowed for managing trusts.")


def _target(trust: Any) -> dict[str, Any]:
    return {"target": {"trust": {"id": trust.id, "trustor_user_id": trust.trustor_user_id,
                                 "trustee_user_id": trust.trustee_user_id,
                                 "project_id": trust.project_id}}}


@router.post("/v3/OS-TRUST/trusts", status_code=201)
async def create_trust(body: TrustCreate, c: Caller = Depends(caller)) -> Response:
    data = body.trust.model_dump(exclude_unset=True)
    data["roles"] = [{k: v for k, v in r.items() if v is not None}
                     for r in data.get("roles") or []]
    c.enforce("identity:create_trust", {"target": {"trust": {
        "trustor_user_id": data["trustor_user_id"],
        "trustee_user_id": data["trustee_user_id"]}}})
    token = caller_token(c)
    _no_app_cred(token)
    if c.ctx.user_id != data["trustor_user_id"]:
        raise Forbidden("You are not authorized to perform the requested action: The "
                        "authenticated user should match the trustor.")
    async with c.svc.db.transaction() as session:
        source = await logic.get(session, token.trust_id) if token.trust_id else None
        trust, roles = await logic.create(session, c.svc, data, source)
        out = logic.render(trust, c.url(""), roles)
    return json_response({"trust": out}, 201)


@router.api_route("/v3/OS-TRUST/trusts", methods=["GET", "HEAD"])
@router.api_route("/v3/OS-TRUST/trusts/", methods=["GET", "HEAD"], include_in_schema=False)
async def list_trusts(c: Caller = Depends(caller), trustor_user_id: str | None = None,
                      trustee_user_id: str | None = None) -> Response:
    involving = None
    if trustor_user_id:
        c.enforce("identity:list_trusts_for_trustor",
                  {"target": {"trust": {"trustor_user_id": trustor_user_id}}})
    elif trustee_user_id:
        c.enforce("identity:list_trusts_for_trustee",
                  {"target": {"trust": {"trustee_user_id": trustee_user_id}}})
    elif not c.allowed("identity:list_trusts"):
        involving = c.ctx.user_id  # everyone may list the trusts they are part of
    _no_app_cred(caller_token(c))
    async with c.svc.db.session() as session:
        rows = await logic.list_trusts(session, trustor=trustor_user_id or None,
                                       trustee=trustee_user_id or None, involving=involving)
    base = c.url("")
    return json_response({"trusts": [logic.render(t, base) for t in rows],
                          "links": c.collection_links()})


@router.api_route("/v3/OS-TRUST/trusts/{trust_id}", methods=["GET", "HEAD"])
async def show_trust(trust_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        trust = await logic.get(session, trust_id)
        c.enforce("identity:get_trust", _target(trust))
        _no_app_cred(caller_token(c))
        roles = await logic.roles_of(session, trust)
    return json_response({"trust": logic.render(trust, c.url(""), roles)})


@router.delete("/v3/OS-TRUST/trusts/{trust_id}", status_code=204)
async def delete_trust(trust_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        trust = await logic.get(session, trust_id, inactive=True)
        c.enforce("identity:delete_trust", _target(trust))
        _no_app_cred(caller_token(c))
        await logic.delete(session, c.svc, trust)
    return no_content()


@router.api_route("/v3/OS-TRUST/trusts/{trust_id}/roles", methods=["GET", "HEAD"])
async def list_trust_roles(trust_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        trust = await logic.get(session, trust_id)
        c.enforce("identity:list_roles_for_trust", _target(trust))
        _no_app_cred(caller_token(c))
        roles = await logic.roles_of(session, trust)
    base = c.url("")
    return json_response({"roles": [logic.render_role_link(r, base) for r in roles],
                          "links": {"self": f"{base}/v3/OS-TRUST/trusts/{trust.id}/roles",
                                    "previous": None, "next": None}})


@router.api_route("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", methods=["GET", "HEAD"])
async def show_trust_role(trust_id: str, role_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        trust = await logic.get(session, trust_id)
        c.enforce("identity:get_role_for_trust", _target(trust))
        _no_app_cred(caller_token(c))
        roles = [r for r in await logic.roles_of(session, trust) if r.id == role_id]
    if not roles:
        raise not_found("role", role_id)
    return json_response({"role": logic.render_role_link(roles[0], c.url(""))})

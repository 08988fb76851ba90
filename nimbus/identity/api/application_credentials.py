"""/v3/users/{user_id}/application_credentials and /v3/users/{user_id}/access_rules."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator
from starlette.responses import Response

from nimbus.common.tokens import InvalidToken, TokenData
from nimbus.identity import application_credentials as logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.errors import not_found
from nimbus.web.errors import BadRequest, Forbidden, Unauthorized
from nimbus.web.responses import json_response, no_content

router = APIRouter()

OWNER = "user_id:%(target.user_id)s"
POLICY: dict[str, str] = {
    # Only the user themself creates their credentials (an admin cannot for someone else).
    "identity:create_application_credential": OWNER,
}


def caller_token(c: Caller) -> TokenData:
    """The caller's token payload (already validated by the middleware; this hits its cache)."""
    try:
        return c.svc.cloud.token_auth.validate(c.ctx.auth_token or "")
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


def forbid_trust_token(token: TokenData) -> None:
    if token.trust_id:
        raise Forbidden("Cannot manage application credentials with a token issued via "
                        "delegation.")


def forbid_restricted(token: TokenData) -> None:
    if token.app_cred_id and token.app_cred_restricted:
        raise Forbidden("Using method 'application_credential' is not allowed for managing "
                        "additional application credentials.")


class RoleRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = Field(None, min_length=1, max_length=64)
    name: StrictStr | None = Field(None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def one_of(self) -> RoleRef:
        if (self.id is None) == (self.name is None):
            raise ValueError("give exactly one of id and name")
        return self


class AccessRuleRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = Field(None, min_length=1, max_length=64)
    service: StrictStr | None = Field(None, min_length=1, max_length=64)
    path: StrictStr | None = Field(None, max_length=225, pattern=r"^/")
    method: Literal["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"] | None = None


class AppCredFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(..., min_length=1, max_length=255, pattern=r"\S")
    description: StrictStr | None = None
    secret: StrictStr | None = None
    expires_at: StrictStr | None = None
    roles: list[RoleRef] | None = None
    access_rules: list[AccessRuleRef] | None = None
    unrestricted: StrictBool | None = None
    # Accepted as Keystone does, but the token decides the project and the id is generated.
    id: StrictStr | None = None
    project_id: StrictStr | None = None
    system: StrictStr | None = None


class AppCredCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    application_credential: AppCredFields


def _target(user_id: str) -> dict[str, Any]:
    return {"target": {"user_id": user_id, "user": {"id": user_id}}}


# -- application credentials ------------------------------------------------------------------
@router.post("/v3/users/{user_id}/application_credentials", status_code=201)
async def create_application_credential(user_id: str, body: AppCredCreate,
                                        c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_application_credential", _target(user_id))
    token = caller_token(c)
    forbid_trust_token(token)
    forbid_restricted(token)
    if c.ctx.user_id != user_id:
        raise Forbidden("Cannot create an application credential for another user.")
    if not (c.ctx.project_id or c.ctx.system_scope):
        raise BadRequest("Invalid application credential: it is created for the project of "
                         "the token, and this token is not project-scoped.")
    data = body.application_credential.model_dump(exclude_unset=True, mode="json")
    data["roles"] = [{k: v for k, v in r.items() if v is not None}
                     for r in data.get("roles") or []]
    data["access_rules"] = [{k: v for k, v in r.items() if v is not None}
                            for r in data.get("access_rules") or []]
    secret = data.get("secret") or logic.generate_secret()
    secret_hash = await c.svc.hasher.hash(secret)
    async with c.svc.db.transaction() as session:
        cred, roles, rules = await logic.create(
            session, c.svc, user_id=user_id, project_id=c.ctx.project_id,
            system=None if c.ctx.project_id else c.ctx.system_scope,
            token_role_ids=c.ctx.role_ids, data=data, secret_hash=secret_hash)
        out = logic.render(cred, roles, rules, c.url(""), secret=secret)
    return json_response({"application_credential": out}, 201)


@router.api_route("/v3/users/{user_id}/application_credentials", methods=["GET", "HEAD"])
async def list_application_credentials(user_id: str, c: Caller = Depends(caller),
                                       name: str | None = None) -> Response:
    c.enforce("identity:list_application_credentials", _target(user_id))
    forbid_trust_token(caller_token(c))
    async with c.svc.db.session() as session:
        creds = await logic.list_for_user(session, user_id, name)
        extra = await logic.details(session, creds)
    base = c.url("")
    return json_response({"application_credentials": [
        logic.render(cred, *extra[cred.id], base) for cred in creds],
        "links": c.collection_links()})


@router.api_route("/v3/users/{user_id}/application_credentials/{cred_id}",
                  methods=["GET", "HEAD"])
async def show_application_credential(user_id: str, cred_id: str,
                                      c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_application_credential", _target(user_id))
    forbid_trust_token(caller_token(c))
    async with c.svc.db.session() as session:
        cred = await logic.get(session, cred_id)
        if cred.user_id != user_id:
            raise not_found("application credential", cred_id)
        extra = await logic.details(session, [cred])
    return json_response({"application_credential": logic.render(cred, *extra[cred.id],
                                                                 c.url(""))})


@router.delete("/v3/users/{user_id}/application_credentials/{cred_id}", status_code=204)
async def delete_application_credential(user_id: str, cred_id: str,
                                        c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_application_credential", _target(user_id))
    token = caller_token(c)
    forbid_trust_token(token)
    forbid_restricted(token)
    async with c.svc.db.transaction() as session:
        cred = await logic.get(session, cred_id)
        if cred.user_id != user_id:
            raise not_found("application credential", cred_id)
        await logic.delete(session, c.svc, cred)
    return no_content()


# -- access rules -----------------------------------------------------------------------------
@router.api_route("/v3/users/{user_id}/access_rules", methods=["GET", "HEAD"])
async def list_access_rules(user_id: str, c: Caller = Depends(caller),
                            service: str | None = None, path: str | None = None,
                            method: str | None = None) -> Response:
    c.enforce("identity:list_access_rules", _target(user_id))
    forbid_trust_token(caller_token(c))
    async with c.svc.db.session() as session:
        rules = await logic.list_rules(session, user_id,
                                       {"service": service, "path": path, "method": method})
    base = c.url("")
    return json_response({"access_rules": [logic.render_rule(r, base) for r in rules],
                          "links": c.collection_links()})


@router.api_route("/v3/users/{user_id}/access_rules/{rule_id}", methods=["GET", "HEAD"])
async def show_access_rule(user_id: str, rule_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_access_rule", _target(user_id))
    forbid_trust_token(caller_token(c))
    async with c.svc.db.session() as session:
        rule = await logic.get_rule(session, user_id, rule_id)
    return json_response({"access_rule": logic.render_rule(rule, c.url(""))})


@router.delete("/v3/users/{user_id}/access_rules/{rule_id}", status_code=204)
async def delete_access_rule(user_id: str, rule_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_access_rule", _target(user_id))
    forbid_trust_token(caller_token(c))
    async with c.svc.db.transaction() as session:
        rule = await logic.get_rule(session, user_id, rule_id)
        await logic.delete_rule(session, c.svc, rule)
    return no_content()

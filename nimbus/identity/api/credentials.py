"""/v3/credentials and /v3/users/{user_id}/credentials/OS-EC2."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StrictStr
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.identity import credentials as logic
from nimbus.identity import projects as project_logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.errors import not_found
from nimbus.identity.models import ApplicationCredential, Credential, User
from nimbus.identity.policy import ADMIN, SYSTEM_READER
from nimbus.web.errors import BadRequest, Forbidden, NotFound
from nimbus.web.responses import json_response, no_content

router = APIRouter()

CRED_OWNER = "user_id:%(target.credential.user_id)s"
POLICY: dict[str, str] = {
    "identity:ec2_get_credential": f"{ADMIN} or {SYSTEM_READER} or {CRED_OWNER}",
    "identity:ec2_list_credentials": f"{ADMIN} or {SYSTEM_READER} or user_id:%(target.user_id)s",
    "identity:ec2_create_credential": f"{ADMIN} or {CRED_OWNER}",
    "identity:ec2_delete_credential": f"{ADMIN} or {CRED_OWNER}",
}


class CredentialFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    blob: StrictStr | None = None
    project_id: StrictStr | None = None
    type: StrictStr | None = None
    user_id: StrictStr | None = None


class CredentialCreateFields(CredentialFields):
    blob: StrictStr
    type: StrictStr
    user_id: StrictStr


class CredentialCreate(BaseModel):
    credential: CredentialCreateFields


class CredentialUpdate(BaseModel):
    credential: CredentialFields


def _target(cred: Credential | dict[str, Any]) -> dict[str, Any]:
    if isinstance(cred, Credential):
        cred = {"id": cred.id, "user_id": cred.user_id, "project_id": cred.project_id,
                "type": cred.type}
    return {"target": {"user_id": cred.get("user_id"), "credential": cred}}


async def _load(c: Caller, session: AsyncSession, credential_id: str, rule: str,
                owner: str | None = None) -> Credential:
    """The credential, once the caller may act on it; a missing one is 404 only to callers
    the rule would allow for its presumed owner, so that its absence does not leak."""
    try:
        cred = await logic.get(session, credential_id)
    except NotFound:
        c.enforce(rule, _target({"user_id": owner}))
        raise
    c.enforce(rule, _target(cred))
    return cred


def _in_delegated_scope(c: Caller, project_id: str | None) -> bool:
    """A token from an application credential reaches only credentials of its own project."""
    return not c.ctx.application_credential_id or project_id == c.ctx.project_id


def _check_delegated_scope(c: Caller, project_id: str | None) -> None:
    if not _in_delegated_scope(c, project_id):
        raise Forbidden("You are not authorized to perform the requested action: Credential "
                        "project does not match the project scope of the delegated token.")


async def _unrestricted_only(c: Caller, session: AsyncSession) -> None:
    """A restricted application credential may not mint more credentials (as in Keystone)."""
    app_cred_id = c.ctx.application_credential_id
    if not app_cred_id:
        return
    app_cred = await session.get(ApplicationCredential, app_cred_id)
    if app_cred is None or not app_cred.unrestricted:
        raise Forbidden("You are not authorized to perform the requested action: Using method "
                        "'application_credential' is not allowed for managing additional "
                        "credentials.")


# -- /v3/credentials ---------------------------------------------------------------------------
@router.get("/v3/credentials")
async def list_credentials(c: Caller = Depends(caller), user_id: str | None = None,
                           type: str | None = None) -> Response:
    own = user_id if user_id is not None or c.ctx.system_scope else c.ctx.user_id
    c.enforce("identity:list_credentials", {"target": {"user_id": own,
                                                       "credential": {"user_id": own}}})
    if user_id is None and not (c.ctx.is_admin or c.ctx.system_scope):
        user_id = c.ctx.user_id  # all a user may see anyway; no need to read the rest
    async with c.svc.db.session() as session:
        rows = await logic.list_credentials(session, {"user_id": user_id, "type": type})
    visible = [r for r in rows if c.allowed("identity:get_credential", _target(r))
               and _in_delegated_scope(c, r.project_id)]
    base = c.url("")
    return json_response({"credentials": [logic.render(r, base) for r in visible],
                          "links": c.collection_links()})


@router.post("/v3/credentials", status_code=201)
async def create_credential(body: CredentialCreate, c: Caller = Depends(caller)) -> Response:
    data = body.credential.model_dump(exclude_unset=True)
    c.enforce("identity:create_credential", _target(data))
    _check_delegated_scope(c, data.get("project_id"))
    async with c.svc.db.transaction() as session:
        if data["type"].lower() == logic.EC2:
            await _unrestricted_only(c, session)
        cred = await logic.create(session, c.svc, data)
        out = logic.render(cred, c.url(""))
    return json_response({"credential": out}, 201)


@router.get("/v3/credentials/{credential_id}")
async def show_credential(credential_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        cred = await _load(c, session, credential_id, "identity:get_credential")
        _check_delegated_scope(c, cred.project_id)
    return json_response({"credential": logic.render(cred, c.url(""))})


@router.patch("/v3/credentials/{credential_id}")
async def update_credential(credential_id: str, body: CredentialUpdate,
                            c: Caller = Depends(caller)) -> Response:
    data = body.credential.model_dump(exclude_unset=True)
    if not data:
        raise BadRequest("Invalid input for field 'credential': {} does not have enough "
                         "properties.")
    for field in ("blob", "type", "user_id"):
        if field in data and data[field] is None:
            raise BadRequest(f"Invalid input for field '{field}': None is not of type "
                             "'string'.")
    async with c.svc.db.transaction() as session:
        cred = await _load(c, session, credential_id, "identity:update_credential")
        _check_delegated_scope(c, cred.project_id)
        current = _target(cred)
        c.enforce("identity:update_credential",
                  _target({**current["target"]["credential"], **data}))
        await logic.update(session, c.svc, cred, data)
        out = logic.render(cred, c.url(""))
    return json_response({"credential": out})


@router.delete("/v3/credentials/{credential_id}", status_code=204)
async def delete_credential(credential_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        cred = await _load(c, session, credential_id, "identity:delete_credential")
        _check_delegated_scope(c, cred.project_id)
        await logic.delete(session, c.svc, cred)
    return no_content()


# -- OS-EC2 ------------------------------------------------------------------------------------
class Ec2Create(BaseModel):
    model_config = ConfigDict(extra="allow")
    tenant_id: StrictStr


async def _user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


@router.get("/v3/users/{user_id}/credentials/OS-EC2")
async def list_ec2(user_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:ec2_list_credentials", {"target": {"user_id": user_id}})
    async with c.svc.db.session() as session:
        await _user(session, user_id)
        rows = await logic.list_ec2(session, user_id)
    base = c.url("")
    return json_response({"credentials": [logic.render_ec2(r, base) for r in rows
                                          if _in_delegated_scope(c, r.project_id)],
                          "links": c.collection_links()})


@router.post("/v3/users/{user_id}/credentials/OS-EC2", status_code=201)
async def create_ec2(user_id: str, body: Ec2Create, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:ec2_create_credential", _target({"user_id": user_id}))
    async with c.svc.db.transaction() as session:
        await _unrestricted_only(c, session)
        await _user(session, user_id)
        await project_logic.get(session, body.tenant_id)
        _check_delegated_scope(c, body.tenant_id)
        cred = await logic.create_ec2(session, c.svc, user_id, body.tenant_id)
        out = logic.render_ec2(cred, c.url(""))
    return json_response({"credential": out}, 201)


@router.get("/v3/users/{user_id}/credentials/OS-EC2/{access}")
async def show_ec2(user_id: str, access: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        await _load(c, session, logic.hash_access_key(access), "identity:ec2_get_credential",
                    user_id)
        await _user(session, user_id)
        cred = await logic.get_ec2(session, user_id, access)
        _check_delegated_scope(c, cred.project_id)
    return json_response({"credential": logic.render_ec2(cred, c.url(""))})


@router.delete("/v3/users/{user_id}/credentials/OS-EC2/{access}", status_code=204)
async def delete_ec2(user_id: str, access: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        await _load(c, session, logic.hash_access_key(access),
                    "identity:ec2_delete_credential", user_id)
        await _user(session, user_id)
        cred = await logic.get_ec2(session, user_id, access)
        _check_delegated_scope(c, cred.project_id)
        await logic.delete(session, c.svc, cred)
    return no_content()

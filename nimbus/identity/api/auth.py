"""/v3/auth/*: issue, validate, check and revoke tokens; the caller's catalog and scopes.

Plus two routes other nimbus processes use to validate tokens locally: the public token keys
and the revocation events (Keystone's OS-REVOKE/events has the same data in its own shape).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import isotime
from nimbus.common.tokens import InvalidToken, TokenData, public_pem
from nimbus.identity import effective
from nimbus.identity import projects as project_logic
from nimbus.identity import tokens as logic
from nimbus.identity.api.common import Caller, caller, service
from nimbus.identity.users import project_ids_of
from nimbus.web.errors import BadRequest, NotFound, Unauthorized
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.post("/v3/auth/tokens", status_code=201)
async def issue_token(request: Request, nocatalog: str | None = Query(None)) -> Response:
    svc = service(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("Malformed request body: the body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
        raise BadRequest("Invalid input for field 'auth': 'auth' is a required property.")
    async with svc.db.session() as session:
        data = await logic.issue(session, svc, body["auth"])
    token = svc.keyring.sign(data)
    catalog = None if nocatalog is not None else await svc.catalog.for_scope(data.project_id)
    return json_response({"token": logic.render(data, catalog)}, 201,
                         {"X-Subject-Token": token})


def _subject(request: Request, c: Caller, rule: str) -> tuple[str, TokenData]:
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise BadRequest("Missing X-Subject-Token header.")
    try:
        data = c.svc.cloud.token_auth.validate(subject)
    except InvalidToken as exc:
        # Keystone answers 404 before any policy check: a user asking about their own
        # revoked token learns it is gone, and nothing more.
        raise NotFound(f"Could not find token: {exc}") from None
    c.enforce(rule, {"target": {"token": {"user_id": data.user_id}}})
    return subject, data


@router.get("/v3/auth/tokens")
async def validate_token(request: Request, c: Caller = Depends(caller),
                         nocatalog: str | None = Query(None),
                         allow_expired: str | None = Query(None)) -> Response:
    subject, data = _subject(request, c, "identity:validate_token")
    catalog = None if nocatalog is not None else await c.svc.catalog.for_scope(data.project_id)
    return json_response({"token": logic.render(data, catalog)}, 200,
                         {"X-Subject-Token": subject})


@router.head("/v3/auth/tokens", status_code=200)
async def check_token(request: Request, c: Caller = Depends(caller)) -> Response:
    subject, _ = _subject(request, c, "identity:check_token")
    return Response(status_code=200, headers={"X-Subject-Token": subject})


@router.delete("/v3/auth/tokens", status_code=204)
async def revoke_token(request: Request, c: Caller = Depends(caller)) -> Response:
    _, data = _subject(request, c, "identity:revoke_token")
    async with c.svc.db.transaction() as session:
        await c.svc.revoke(session, audit_id=data.audit_ids[0])
    return no_content()


@router.get("/v3/auth/catalog")
async def auth_catalog(c: Caller = Depends(caller)) -> Response:
    if not (c.ctx.project_id or c.ctx.domain_id or c.ctx.system_scope):
        raise Unauthorized("The service catalog needs a scoped token.", status=403,
                           title="Forbidden")
    catalog = await c.svc.catalog.for_scope(c.ctx.project_id)
    return json_response({"catalog": catalog, "links": c.collection_links()})


@router.get("/v3/auth/projects")
async def auth_projects(c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        projects = await user_projects(session, c.ctx)
        tags = await project_logic.tags_of(session, [p.id for p in projects])
    base = c.url("")
    return json_response({"projects": [project_logic.render(p, tags[p.id], base)
                                       for p in projects if p.enabled],
                          "links": c.collection_links()})


async def user_projects(session: Any, ctx: RequestContext) -> list[Any]:
    """Projects where the caller holds any role, directly, via groups or inherited."""
    assert ctx.user_id
    reachable = await project_ids_of(session, ctx.user_id)
    if not reachable:
        return []
    return [p for p in await project_logic.list_projects(session, {}) if p.id in reachable]


@router.get("/v3/auth/domains")
async def auth_domains(c: Caller = Depends(caller)) -> Response:
    assert c.ctx.user_id
    async with c.svc.db.session() as session:
        domains = await project_logic.list_domains(session, {"enabled": True})
        visible = [d for d in domains
                   if await effective.domain_role_ids(session, c.ctx.user_id, d.id)]
        tags = await project_logic.tags_of(session, [d.id for d in visible])
    base = c.url("")
    return json_response({"domains": [project_logic.render(d, tags[d.id], base)
                                      for d in visible],
                          "links": c.collection_links()})


@router.get("/v3/auth/system")
async def auth_system(c: Caller = Depends(caller)) -> Response:
    assert c.ctx.user_id
    async with c.svc.db.session() as session:
        roles = await effective.system_role_ids(session, c.ctx.user_id)
    system = [{"all": True}] if roles else []
    return json_response({"system": system, "links": c.collection_links()})


@router.get("/v3/OS-REVOKE/events")
async def revoke_events(c: Caller = Depends(caller)) -> Response:
    from datetime import UTC, datetime

    def iso(ts: float) -> str | None:
        return isotime(datetime.fromtimestamp(ts, UTC), micro=True)

    events = []
    for e in c.svc.cloud.revocations.events():
        item: dict[str, Any] = {"issued_before": iso(e.issued_before),
                                "revoked_at": iso(e.revoked_at)}
        for field in ("audit_id", "audit_chain_id", "user_id", "project_id", "domain_id",
                      "role_id"):
            value = getattr(e, field)
            if value is not None:
                item[field] = value
        events.append(item)
    return json_response({"events": events, "links": c.collection_links()})


@router.get("/v3/OS-NIMBUS/token-keys", include_in_schema=False)
async def token_keys(request: Request) -> Response:
    svc = service(request)
    keys = [{"id": kid, "public_key": public_pem(key)}
            for kid, key in svc.keyring.public_keys().items()]
    return json_response({"keys": keys})


@router.get("/v3/OS-NIMBUS/revocations", include_in_schema=False)
async def revocations(request: Request) -> Response:
    svc = service(request)
    return json_response({"events": [e.to_dict() for e in svc.cloud.revocations.events()]})

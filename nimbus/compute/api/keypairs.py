"""/os-keypairs: per-user keypairs; admins act for other users from 2.10 on."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.common.timeutils import aware
from nimbus.compute import keypairs as logic
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.models import KeyPair
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response

router = APIRouter()

_NAME: dict[str, Any] = {"allOf": [v.NAME, {
    "type": "string", "pattern": r"^[_\- a-zA-Z0-9]+$", "minLength": 1, "maxLength": 255}]}
_NAME_292: dict[str, Any] = {"allOf": [v.NAME, {
    "type": "string", "pattern": r"^[_\-\@\. a-zA-Z0-9]+$", "minLength": 1, "maxLength": 255}]}
CREATE: dict[str, Any] = {"type": "object", "properties": {"keypair": {
    "type": "object", "properties": {"name": _NAME, "public_key": {"type": "string"}},
    "required": ["name"], "additionalProperties": False}},
    "required": ["keypair"], "additionalProperties": False}
CREATE_22: dict[str, Any] = copy.deepcopy(CREATE)
CREATE_22["properties"]["keypair"]["properties"]["type"] = {"type": "string",
                                                            "enum": ["ssh", "x509"]}
CREATE_210: dict[str, Any] = copy.deepcopy(CREATE_22)
CREATE_210["properties"]["keypair"]["properties"]["user_id"] = {"type": "string"}
CREATE_292: dict[str, Any] = copy.deepcopy(CREATE_210)
CREATE_292["properties"]["keypair"]["properties"]["name"] = _NAME_292
CREATE_292["properties"]["keypair"]["required"] = ["name", "public_key"]
QUERY_210: dict[str, Any] = {"type": "object", "properties": {"user_id": {"type": "string"}},
             "additionalProperties": True}
QUERY_235: dict[str, Any] = {"type": "object", "properties": {"user_id": {"type": "string"},
                                              "limit": v.NON_NEGATIVE_QUERY,
                                              "marker": {"type": "string"}},
             "additionalProperties": True}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "additionalProperties": False}


def _user(c: Caller, params: dict[str, str]) -> str:
    user_id = params.get("user_id") if c.at(10) else None
    return user_id or c.ctx.user_id or ""


def _created(kp: KeyPair) -> str:
    return aware(kp.created_at).strftime("%Y-%m-%dT%H:%M:%S.%f")


def render_list_item(c: Caller, kp: KeyPair) -> dict[str, Any]:
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key,
                           "fingerprint": kp.fingerprint}
    if c.at(2):
        out["type"] = kp.type
    return {"keypair": out}


@router.get("/v2.1/os-keypairs")
async def list_keypairs(c: Caller = Depends(caller)) -> Response:
    schema = _strict(QUERY_235) if c.at(75) else QUERY_235 if c.at(35) else QUERY_210
    params = c.query(schema)
    user_id = _user(c, params)
    c.enforce("os_compute_api:os-keypairs:index", {"user_id": user_id})
    paged = c.at(35)
    limit = c.limit(params) if paged else c.svc.settings.max_limit * 100
    async with c.svc.db.session() as session:
        rows = await logic.list_for(session, user_id, limit,
                                    params.get("marker") if paged else None)
    body: dict[str, Any] = {"keypairs": [render_list_item(c, kp) for kp in rows]}
    if paged and rows and len(rows) == limit:
        body["keypairs_links"] = [c.next_link("os-keypairs", rows[-1].name)]
    return json_response(body)


@router.get("/v2.1/os-keypairs/{name}")
async def show_keypair(name: str, c: Caller = Depends(caller)) -> Response:
    params = c.query(_strict(QUERY_210) if c.at(75) else QUERY_210)
    user_id = _user(c, params)
    c.enforce("os_compute_api:os-keypairs:show", {"user_id": user_id})
    async with c.svc.db.session() as session:
        kp = await logic.get(session, user_id, name)
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key,
                           "fingerprint": kp.fingerprint, "user_id": kp.user_id,
                           "deleted": False, "created_at": _created(kp), "updated_at": None,
                           "deleted_at": None, "id": kp.id}
    if c.at(2):
        out["type"] = kp.type
    return json_response({"keypair": out})


@router.post("/v2.1/os-keypairs", openapi_extra=body_doc(CREATE_210))
async def create_keypair(c: Caller = Depends(caller)) -> Response:
    schema = CREATE_292 if c.at(92) else CREATE_210 if c.at(10) else \
        CREATE_22 if c.at(2) else CREATE
    body = (await c.body(schema))["keypair"]
    user_id = body.get("user_id") or c.ctx.user_id or ""
    c.enforce("os_compute_api:os-keypairs:create", {"user_id": user_id})
    kind = body.get("type", "ssh")
    name = body["name"]
    if not name.strip():
        raise BadRequest("Keypair data is invalid: Keypair name must be string and between "
                         "1 and 255 characters long")
    project_id = c.ctx.project_id if user_id == c.ctx.user_id else None
    async with c.svc.db.transaction() as session:
        kp, private = await logic.create(session, user_id=user_id, project_id=project_id,
                                         name=name, kind=kind,
                                         public_key=body.get("public_key"))
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key,
                           "fingerprint": kp.fingerprint, "user_id": kp.user_id}
    if private is not None:
        out["private_key"] = private
    if c.at(2):
        out["type"] = kp.type
    await c.svc.notify("keypair.create.end", {"key_name": kp.name, "user_id": kp.user_id,
                                              "fingerprint": kp.fingerprint})
    return json_response({"keypair": out}, 201 if c.at(2) else 200)


@router.delete("/v2.1/os-keypairs/{name}")
async def delete_keypair(name: str, c: Caller = Depends(caller)) -> Response:
    params = c.query(_strict(QUERY_210) if c.at(75) else QUERY_210)
    user_id = _user(c, params)
    c.enforce("os_compute_api:os-keypairs:delete", {"user_id": user_id})
    async with c.svc.db.transaction() as session:
        kp = await logic.get(session, user_id, name)
        await session.delete(kp)
    await c.svc.notify("keypair.delete.end", {"key_name": name, "user_id": user_id})
    return Response(status_code=204 if c.at(2) else 202)

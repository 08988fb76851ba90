"""A server's metadata (/metadata), tags (/tags, from 2.26) and addresses (/ips)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.compute import instances, quotas, states
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.server_actions import check_lock, check_state, target
from nimbus.compute.api.server_views import addresses
from nimbus.compute.errors import QuotaExceeded, invalid_state
from nimbus.compute.models import Instance, InstanceTag
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

META_STATES = [states.ACTIVE, states.PAUSED_VM, states.SUSPENDED_VM, states.STOPPED]
TAG_STATES = [states.ACTIVE, states.PAUSED_VM, states.SUSPENDED_VM, states.STOPPED,
              states.SHELVED, states.SHELVED_OFFLOADED, states.BUILDING, states.ERROR,
              states.RESCUED, states.RESIZED, states.SOFT_DELETED]
META_BODY = {"type": "object", "properties": {"metadata": v.METADATA},
             "required": ["metadata"], "additionalProperties": False}
ITEM_BODY = {"type": "object", "properties": {"meta": {**v.METADATA, "minProperties": 1,
                                                       "maxProperties": 1}},
             "required": ["meta"], "additionalProperties": False}
MAX_TAGS = 50


async def _editable(c: Caller, session: AsyncSession, server_id: str, rule: str,
                    method: str) -> Instance:
    inst = await instances.get(session, server_id, c.ctx)
    c.enforce(rule, target(inst))
    check_lock(c, inst)
    if inst.vm_state not in META_STATES:
        raise invalid_state("vm_state", inst.vm_state, method, server_id)
    if inst.task_state is not None:
        raise invalid_state("task_state", inst.task_state, method, server_id)
    return inst


async def _save_metadata(c: Caller, session: AsyncSession, inst: Instance,
                         meta: dict[str, str]) -> None:
    limit = (await quotas.limits(session, inst.project_id))["metadata_items"]
    if 0 <= limit < len(meta):
        raise QuotaExceeded(f"Quota exceeded for metadata_items: Requested {len(meta)}, but "
                            f"already used 0 of {limit} metadata_items")
    instances.apply(inst, {"metadata_": dict(meta)})


@router.get("/v2.1/servers/{server_id}/metadata")
async def list_metadata(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:server-metadata:index", target(inst))
    return json_response({"metadata": inst.metadata_ or {}})


@router.post("/v2.1/servers/{server_id}/metadata", openapi_extra=body_doc(META_BODY))
async def merge_metadata(server_id: str, c: Caller = Depends(caller)) -> Response:
    body = await c.body(META_BODY)
    async with c.svc.db.transaction() as session:
        inst = await _editable(c, session, server_id, "os_compute_api:server-metadata:create",
                               "update metadata")
        merged = {**(inst.metadata_ or {}), **body["metadata"]}
        await _save_metadata(c, session, inst, merged)
    return json_response({"metadata": merged})


@router.put("/v2.1/servers/{server_id}/metadata", openapi_extra=body_doc(META_BODY))
async def replace_metadata(server_id: str, c: Caller = Depends(caller)) -> Response:
    body = await c.body(META_BODY)
    async with c.svc.db.transaction() as session:
        inst = await _editable(c, session, server_id,
                               "os_compute_api:server-metadata:update_all", "update metadata")
        await _save_metadata(c, session, inst, body["metadata"])
    return json_response({"metadata": body["metadata"]})


@router.get("/v2.1/servers/{server_id}/metadata/{key}")
async def show_metadata_item(server_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:server-metadata:show", target(inst))
    meta = inst.metadata_ or {}
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: meta[key]}})


@router.put("/v2.1/servers/{server_id}/metadata/{key}", openapi_extra=body_doc(ITEM_BODY))
async def set_metadata_item(server_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    raw = await c.body()
    if isinstance(raw, dict) and isinstance(raw.get("meta"), dict) and len(raw["meta"]) > 1:
        raise BadRequest("Request body contains too many items")
    body = v.validate(ITEM_BODY, raw)
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    async with c.svc.db.transaction() as session:
        inst = await _editable(c, session, server_id, "os_compute_api:server-metadata:update",
                               "update metadata")
        await _save_metadata(c, session, inst, {**(inst.metadata_ or {}), **body["meta"]})
    return json_response({"meta": body["meta"]})


@router.delete("/v2.1/servers/{server_id}/metadata/{key}")
async def delete_metadata_item(server_id: str, key: str,
                               c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await _editable(c, session, server_id, "os_compute_api:server-metadata:delete",
                               "delete metadata")
        meta = dict(inst.metadata_ or {})
        if key not in meta:
            raise NotFound("Metadata item was not found")
        del meta[key]
        instances.apply(inst, {"metadata_": meta})
    return Response(status_code=204)


# -- tags -----------------------------------------------------------------------------------------
TAGS_BODY = {"type": "object", "properties": {"tags": {"type": "array", "items": v.TAG}},
             "required": ["tags"], "additionalProperties": False}


async def _tag_instance(c: Caller, session: AsyncSession, server_id: str, rule: str,
                        method: str, editing: bool) -> Instance:
    c.require(26)
    inst = await instances.get(session, server_id, c.ctx)
    c.enforce(rule, target(inst))
    if editing:
        check_state(inst, method, TAG_STATES, None)
        if inst.vm_state == states.BUILDING and inst.task_state is not None:
            raise invalid_state("task_state", inst.task_state, method, server_id)
    return inst


async def _tags(session: AsyncSession, uuid: str) -> list[str]:
    return list((await session.scalars(select(InstanceTag.tag).where(
        InstanceTag.instance_uuid == uuid).order_by(InstanceTag.tag))).all())


@router.get("/v2.1/servers/{server_id}/tags")
async def list_tags(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await _tag_instance(c, session, server_id,
                                   "os_compute_api:os-server-tags:index", "", False)
        return json_response({"tags": await _tags(session, inst.uuid)})


@router.put("/v2.1/servers/{server_id}/tags", openapi_extra=body_doc(TAGS_BODY))
async def replace_tags(server_id: str, c: Caller = Depends(caller)) -> Response:
    body = await c.body(TAGS_BODY)
    tags = list(dict.fromkeys(body["tags"]))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    async with c.svc.db.transaction() as session:
        inst = await _tag_instance(c, session, server_id,
                                   "os_compute_api:os-server-tags:update_all",
                                   "update tags", True)
        await session.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
        for tag in tags:
            session.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
        instances.apply(inst, {})
    return json_response({"tags": sorted(tags)})


@router.delete("/v2.1/servers/{server_id}/tags")
async def delete_all_tags(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await _tag_instance(c, session, server_id,
                                   "os_compute_api:os-server-tags:delete_all",
                                   "delete tags", True)
        await session.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
        instances.apply(inst, {})
    return Response(status_code=204)


@router.get("/v2.1/servers/{server_id}/tags/{tag}")
async def show_tag(server_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await _tag_instance(c, session, server_id, "os_compute_api:os-server-tags:show",
                                   "", False)
        if await session.get(InstanceTag, (inst.uuid, tag)) is None:
            raise NotFound(f"Tag '{tag}' could not be found for instance {server_id}.")
    return Response(status_code=204)


@router.put("/v2.1/servers/{server_id}/tags/{tag}")
async def add_tag(server_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    v.validate(v.TAG, tag)
    async with c.svc.db.transaction() as session:
        inst = await _tag_instance(c, session, server_id,
                                   "os_compute_api:os-server-tags:update", "update tag", True)
        if await session.get(InstanceTag, (inst.uuid, tag)) is not None:
            return Response(status_code=204)
        if len(await _tags(session, inst.uuid)) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        session.add(InstanceTag(instance_uuid=inst.uuid, tag=tag))
        instances.apply(inst, {})
    return Response(status_code=201, headers={
        "Location": f"{c.base}/v2.1/servers/{server_id}/tags/{tag}"})


@router.delete("/v2.1/servers/{server_id}/tags/{tag}")
async def delete_tag(server_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await _tag_instance(c, session, server_id,
                                   "os_compute_api:os-server-tags:delete", "delete tag", True)
        row = await session.get(InstanceTag, (inst.uuid, tag))
        if row is None:
            raise NotFound(f"Tag '{tag}' could not be found for instance {server_id}.")
        await session.delete(row)
        instances.apply(inst, {})
    return Response(status_code=204)


# -- addresses ------------------------------------------------------------------------------------
def _plain(inst: Instance) -> dict[str, list[dict[str, Any]]]:
    return addresses(inst, extended=False) if inst.vm_state != states.BUILDING else {}


@router.get("/v2.1/servers/{server_id}/ips")
async def list_ips(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:ips:index", target(inst))
    return json_response({"addresses": _plain(inst)})


@router.get("/v2.1/servers/{server_id}/ips/{network}")
async def show_ips(server_id: str, network: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:ips:show", target(inst))
    found = _plain(inst)
    if network not in found:
        raise NotFound("There is no such network in the instance")
    return json_response({network: found[network]})

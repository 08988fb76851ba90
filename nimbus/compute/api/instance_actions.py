"""/servers/{id}/os-instance-actions: what was done to a server, with its events."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from starlette.responses import Response

from nimbus.common.timeutils import aware, parse_isotime
from nimbus.compute import instances
from nimbus.compute.api.common import Caller, caller
from nimbus.compute.models import InstanceAction, InstanceActionEvent
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()


def stamp(value: datetime | None) -> str | None:
    return aware(value).strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def action_view(c: Caller, a: InstanceAction) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.instance_uuid,
                           "request_id": a.request_id, "user_id": a.user_id,
                           "project_id": a.project_id, "start_time": stamp(a.start_time),
                           "message": a.message}
    if c.at(58):
        out["updated_at"] = stamp(a.updated_at)
    return out


async def _instance(c: Caller, session: Any, server_id: str) -> Any:
    return await instances.get(session, server_id, c.ctx, include_deleted=c.at(21))


def _time(value: str, name: str) -> datetime:
    try:
        return parse_isotime(value)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                         f"'{value}' is not a 'date-time'") from None


@router.get("/v2.1/servers/{server_id}/os-instance-actions")
async def list_actions(server_id: str, c: Caller = Depends(caller)) -> Response:
    params = c.query()
    async with c.svc.db.session() as session:
        inst = await _instance(c, session, server_id)
        c.enforce("os_compute_api:os-instance-actions:list", {"project_id": inst.project_id})
        query = select(InstanceAction).where(InstanceAction.instance_uuid == inst.uuid)
        limit = None
        if c.at(58):
            if "changes-since" in params:
                query = query.where(InstanceAction.updated_at >= _time(
                    params["changes-since"], "changes-since"))
            if "changes-before" in params and c.at(66):
                before = _time(params["changes-before"], "changes-before")
                if "changes-since" in params and before < parse_isotime(
                        params["changes-since"]):
                    raise BadRequest("The value of changes-since must be less than or equal "
                                     "to changes-before.")
                query = query.where(InstanceAction.updated_at <= before)
            limit = c.limit(params)
            marker = params.get("marker")
            if marker:
                mark = (await session.scalars(select(InstanceAction).where(
                    InstanceAction.instance_uuid == inst.uuid,
                    InstanceAction.request_id == marker))).first()
                if mark is None:
                    raise BadRequest(f"Marker {marker} could not be found.")
                query = query.where(InstanceAction.id < mark.id)
        query = query.order_by(InstanceAction.id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = list((await session.scalars(query)).all())
    body: dict[str, Any] = {"instanceActions": [action_view(c, a) for a in rows]}
    if c.at(58) and limit is not None and rows and len(rows) == limit:
        body["links"] = [c.next_link(f"servers/{server_id}/os-instance-actions",
                                     rows[-1].request_id)]
    return json_response(body)


@router.get("/v2.1/servers/{server_id}/os-instance-actions/{request_id}")
async def show_action(server_id: str, request_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await _instance(c, session, server_id)
        target = {"project_id": inst.project_id}
        c.enforce("os_compute_api:os-instance-actions:show", target)
        action = (await session.scalars(select(InstanceAction).where(
            InstanceAction.instance_uuid == inst.uuid,
            InstanceAction.request_id == request_id).order_by(
            InstanceAction.id.desc()))).first()
        if action is None:
            raise NotFound(f"Action {request_id} not found")
        events = list((await session.scalars(select(InstanceActionEvent).where(
            InstanceActionEvent.action_id == action.id).order_by(
            InstanceActionEvent.id))).all())
    out = action_view(c, action)
    privileged = c.allowed("os_compute_api:os-instance-actions:events", target)
    if privileged or c.at(51):
        details = c.at(84) and c.allowed("os_compute_api:os-instance-actions:events:details",
                                         target)
        project = action.project_id or inst.project_id
        shown = []
        for e in events:
            item: dict[str, Any] = {"event": e.event, "start_time": stamp(e.start_time),
                                    "finish_time": stamp(e.finish_time), "result": e.result}
            if privileged:
                item["traceback"] = e.traceback
            if privileged and c.at(62):
                item["host"] = e.host or ""
            if c.at(62):
                item["hostId"] = hashlib.sha224((project + e.host).encode()).hexdigest() \
                    if e.host else ""
            if details:
                item["details"] = e.details
            shown.append(item)
        out["events"] = shown
    return json_response({"instanceAction": out})

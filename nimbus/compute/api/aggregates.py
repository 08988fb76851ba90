"""/os-aggregates: host aggregates with metadata; `availability_zone` metadata makes one a
zone. Hosts' zones follow at once (the scheduler re-reads them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import isotime, utcnow
from nimbus.compute import hosts
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.models import Aggregate, AggregateHost, AggregateMetadata, Service
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

NAME = {"type": "string", "minLength": 1, "maxLength": 255,
        "format": "name_with_leading_trailing_spaces"}
AZ = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 255,
                 "format": "az_name_with_leading_trailing_spaces"}, {"type": "null"}]}
CREATE = {"type": "object", "properties": {"aggregate": {
    "type": "object", "properties": {"name": NAME, "availability_zone": AZ},
    "required": ["name"], "additionalProperties": False}},
    "required": ["aggregate"], "additionalProperties": False}
UPDATE = {"type": "object", "properties": {"aggregate": {
    "type": "object", "properties": {"name": NAME, "availability_zone": AZ},
    "additionalProperties": False, "anyOf": [{"required": ["name"]},
                                              {"required": ["availability_zone"]}]}},
    "required": ["aggregate"], "additionalProperties": False}
HOST = {"type": "object", "properties": {"host": {
    "type": "string", "minLength": 1, "maxLength": 255}}, "required": ["host"],
    "additionalProperties": False}
METADATA = {"type": "object", "properties": {"metadata": {
    "type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {
        "type": ["string", "null"], "maxLength": 255}}, "additionalProperties": False}},
    "required": ["metadata"], "additionalProperties": False}
ACTION = {"type": "object", "properties": {"add_host": HOST, "remove_host": HOST,
                                           "set_metadata": METADATA},
          "minProperties": 1, "maxProperties": 1, "additionalProperties": False}


async def _get(session: AsyncSession, ident: str) -> Aggregate:
    if not ident.lstrip("-").isdigit():
        raise BadRequest(f"Invalid aggregate id: {ident}")
    agg = await session.get(Aggregate, int(ident))
    if agg is None:
        raise NotFound(f"Aggregate {ident} could not be found.")
    return agg


async def _details(session: AsyncSession, agg: Aggregate) -> tuple[list[str], dict[str, str]]:
    host_list = list((await session.scalars(select(AggregateHost.host).where(
        AggregateHost.aggregate_id == agg.id).order_by(AggregateHost.host))).all())
    meta = dict((await session.execute(select(AggregateMetadata.key, AggregateMetadata.value)
                                       .where(AggregateMetadata.aggregate_id == agg.id))).all())
    return host_list, {str(k): str(val) for k, val in meta.items()}


def view(c: Caller, agg: Aggregate, host_list: list[str] | None,
         meta: dict[str, str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": agg.id, "name": agg.name,
                           "availability_zone": (meta or {}).get("availability_zone"),
                           "created_at": (isotime(agg.created_at, micro=True) or "")[:-1],
                           "updated_at": (isotime(agg.updated_at, micro=True) or "")[:-1]
                           if agg.updated_at else None,
                           "deleted_at": None, "deleted": False}
    if host_list is not None:
        out["hosts"] = host_list
    if meta is not None:
        out["metadata"] = meta
    if c.at(41):
        out["uuid"] = agg.uuid
    return out


async def _full(c: Caller, session: AsyncSession, agg: Aggregate) -> dict[str, Any]:
    host_list, meta = await _details(session, agg)
    return view(c, agg, host_list, meta)


async def _check_zone(c: Caller, session: AsyncSession, zone: str | None,
                      agg: Aggregate | None) -> None:
    if zone is None:
        return
    if zone == c.svc.settings.internal_availability_zone:
        raise BadRequest("Aggregates can not be in the internal availability zone "
                         f"'{zone}'.")
    if agg is None:
        return
    host_list, _ = await _details(session, agg)
    zones = await hosts.host_zones(session, c.svc.settings.default_availability_zone,
                                   host_list)
    for host in host_list:
        others = (await session.execute(select(AggregateMetadata.value).join(
            AggregateHost, AggregateHost.aggregate_id == AggregateMetadata.aggregate_id).where(
            AggregateHost.host == host, AggregateMetadata.key == "availability_zone",
            AggregateMetadata.aggregate_id != agg.id))).scalars().all()
        if any(o != zone for o in others):
            raise Conflict(f"Cannot update aggregate {agg.id}. Reason: One or more hosts "
                           f"contain instances in this zone or are in other zones "
                           f"({zones[host]}).")


async def _set_zone(session: AsyncSession, agg: Aggregate, zone: str | None) -> None:
    row = await session.get(AggregateMetadata, (agg.id, "availability_zone"))
    if zone is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(AggregateMetadata(aggregate_id=agg.id, key="availability_zone", value=zone))
    else:
        row.value = zone


def _changed(c: Caller) -> None:
    if c.svc.scheduler is not None:
        c.svc.scheduler.hosts.invalidate()


@router.get("/v2.1/os-aggregates")
async def list_aggregates(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-aggregates:index", {})
    async with c.svc.db.session() as session:
        rows = list((await session.scalars(select(Aggregate).order_by(Aggregate.id))).all())
        items = [await _full(c, session, a) for a in rows]
    return json_response({"aggregates": items})


@router.post("/v2.1/os-aggregates", openapi_extra=body_doc(CREATE))
async def create_aggregate(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-aggregates:create", {})
    body = (await c.body(CREATE))["aggregate"]
    name = body["name"].strip()
    zone = body.get("availability_zone")
    async with c.svc.db.transaction() as session:
        await _check_zone(c, session, zone, None)
        if await session.scalar(select(func.count()).select_from(Aggregate).where(
                Aggregate.name == name)):
            raise Conflict(f"Aggregate {name} already exists.")
        agg = Aggregate(uuid=new_uuid(), name=name, created_at=utcnow())
        session.add(agg)
        await session.flush()
        await _set_zone(session, agg, zone)
        out = view(c, agg, None, {"availability_zone": zone} if zone else {})
        out.pop("metadata", None)
    _changed(c)
    return json_response({"aggregate": out})


@router.get("/v2.1/os-aggregates/{ident}")
async def show_aggregate(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-aggregates:show", {})
    async with c.svc.db.session() as session:
        agg = await _get(session, ident)
        return json_response({"aggregate": await _full(c, session, agg)})


@router.put("/v2.1/os-aggregates/{ident}", openapi_extra=body_doc(UPDATE))
async def update_aggregate(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-aggregates:update", {})
    body = (await c.body(UPDATE))["aggregate"]
    async with c.svc.db.transaction() as session:
        agg = await _get(session, ident)
        if "name" in body:
            name = body["name"].strip()
            clash = (await session.scalars(select(Aggregate).where(
                Aggregate.name == name, Aggregate.id != agg.id))).first()
            if clash is not None:
                raise Conflict(f"Aggregate {name} already exists.")
            agg.name = name
        if "availability_zone" in body:
            await _check_zone(c, session, body["availability_zone"], agg)
            await _set_zone(session, agg, body["availability_zone"])
        agg.updated_at = utcnow()
        await session.flush()
        out = await _full(c, session, agg)
    _changed(c)
    return json_response({"aggregate": out})


@router.delete("/v2.1/os-aggregates/{ident}")
async def delete_aggregate(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-aggregates:delete", {})
    async with c.svc.db.transaction() as session:
        agg = await _get(session, ident)
        host_list, _ = await _details(session, agg)
        if host_list:
            raise BadRequest(f"Invalid aggregate action delete for aggregate {agg.id}. "
                             "Reason: Host aggregate is not empty.")
        await session.execute(delete(AggregateMetadata).where(
            AggregateMetadata.aggregate_id == agg.id))
        await session.delete(agg)
    _changed(c)
    return Response(status_code=200)


@router.post("/v2.1/os-aggregates/{ident}/action", openapi_extra=body_doc(ACTION))
async def aggregate_action(ident: str, c: Caller = Depends(caller)) -> Response:
    body = await c.body(ACTION)
    name, params = next(iter(body.items()))
    rule = {"add_host": "add_host", "remove_host": "remove_host",
            "set_metadata": "set_metadata"}[name]
    c.enforce(f"os_compute_api:os-aggregates:{rule}", {})
    async with c.svc.db.transaction() as session:
        agg = await _get(session, ident)
        if name == "add_host":
            await _add_host(c, session, agg, params["host"])
        elif name == "remove_host":
            row = await session.get(AggregateHost, (agg.id, params["host"]))
            if row is None:
                if await _service(session, params["host"]) is None:
                    raise NotFound(f"Compute host {params['host']} could not be found.")
                raise NotFound(f"Aggregate {agg.id} has no host {params['host']}.")
            await session.delete(row)
        else:
            meta: dict[str, str | None] = params["metadata"]
            if "availability_zone" in meta:
                await _check_zone(c, session, meta["availability_zone"], agg)
            for key, value in meta.items():
                existing = await session.get(AggregateMetadata, (agg.id, key))
                if value is None:
                    if existing is not None:
                        await session.delete(existing)
                elif existing is None:
                    session.add(AggregateMetadata(aggregate_id=agg.id, key=key, value=value))
                else:
                    existing.value = value
        agg.updated_at = utcnow()
        await session.flush()
        out = await _full(c, session, agg)
    _changed(c)
    return json_response({"aggregate": out})


async def _service(session: AsyncSession, host: str) -> Service | None:
    return (await session.scalars(select(Service).where(
        Service.host == host, Service.binary == hosts.COMPUTE_BINARY))).first()


async def _add_host(c: Caller, session: AsyncSession, agg: Aggregate, host: str) -> None:
    if await _service(session, host) is None:
        raise NotFound(f"Compute host {host} could not be found.")
    if await session.get(AggregateHost, (agg.id, host)) is not None:
        raise Conflict(f"Aggregate {agg.id} already has host {host}.")
    _, meta = await _details(session, agg)
    zone = meta.get("availability_zone")
    if zone:
        others = (await session.execute(select(AggregateMetadata.value).join(
            AggregateHost, AggregateHost.aggregate_id == AggregateMetadata.aggregate_id).where(
            AggregateHost.host == host, AggregateMetadata.key == "availability_zone"))
                  ).scalars().all()
        if any(o != zone for o in others):
            raise Conflict(f"Cannot add host to aggregate {agg.id}. Reason: One or more hosts "
                           f"already in availability zone(s) {sorted(set(others))}.")
    session.add(AggregateHost(aggregate_id=agg.id, host=host))


@router.post("/v2.1/os-aggregates/{ident}/images")
async def cache_images(ident: str, c: Caller = Depends(caller)) -> Response:
    c.require(81)
    c.enforce("os_compute_api:os-aggregates:images", {})
    body = await c.body({"type": "object", "properties": {"cache": {
        "type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "id": v.UUID}, "required": ["id"], "additionalProperties": False}}},
        "required": ["cache"], "additionalProperties": False})
    async with c.svc.db.session() as session:
        await _get(session, ident)
    del body  # the fake driver keeps no image cache to warm
    return Response(status_code=202)

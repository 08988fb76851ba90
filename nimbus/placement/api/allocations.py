"""/allocations/{consumer_uuid}, POST /allocations and /resource_providers/{uuid}/allocations."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import allocations as logic
from nimbus.placement import providers
from nimbus.placement import schema as s
from nimbus.placement.allocations import ConsumerWrite, WriteOptions
from nimbus.placement.api.common import Caller, caller, no_content
from nimbus.placement.api.resource_providers import _body
from nimbus.web.errors import BadRequest, NotFound

router = APIRouter()


@router.get("/allocations/{consumer_uuid}")
async def show_allocations(consumer_uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("allocations:list")
    async with c.svc.db.session() as session:
        consumer, allocs = await logic.for_consumer(session, c.svc.index, consumer_uuid)
    body: dict[str, Any] = {"allocations": allocs}
    if allocs and consumer is not None and c.at_least(12):
        body["project_id"] = consumer.project_id
        body["user_id"] = consumer.user_id
        if c.at_least(28):
            body["consumer_generation"] = consumer.generation
        if c.at_least(38):
            body["consumer_type"] = consumer.consumer_type or logic.UNKNOWN_TYPE
    return c.respond(body, modified=consumer.updated_at if consumer else None)


def _consumer_write(c: Caller, consumer_uuid: str, data: dict[str, Any]) -> ConsumerWrite:
    allocs = data["allocations"]
    if isinstance(allocs, list):  # before 1.12: a list of {resource_provider, resources}
        by_rp: dict[str, dict[str, int]] = {}
        for item in allocs:
            by_rp.setdefault(item["resource_provider"]["uuid"], {}).update(item["resources"])
        allocs = by_rp
    else:
        allocs = {rp: entry["resources"] for rp, entry in allocs.items()}
    return ConsumerWrite(consumer_uuid, allocs, data.get("project_id"), data.get("user_id"),
                         data.get("consumer_generation"), data.get("consumer_type"))


def consumer_id(text: str) -> str:
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        raise BadRequest(f"Malformed consumer_uuid: {text}") from None


def _options(c: Caller) -> WriteOptions:
    return WriteOptions(check_generation=c.at_least(28), set_type=c.at_least(38))


@router.put("/allocations/{consumer_uuid}", openapi_extra=_body(s.ALLOCATION_1_38))
async def put_allocations(consumer_uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("allocations:update")
    consumer_uuid = consumer_id(consumer_uuid)
    data = await c.body(s.put_allocation_schema(c.version.minor))
    write = _consumer_write(c, consumer_uuid, data)
    index = c.svc.index

    async def work(session: Any, after: Any) -> None:
        await logic.replace(session, after, index, [write], _options(c), c.svc.writer)

    await c.svc.retrying(work, session=c.svc.writer is None)
    return no_content()


@router.post("/allocations", openapi_extra=_body(s.ALLOCATIONS_POST_1_38))
async def post_allocations(c: Caller = Depends(caller)) -> Response:
    c.require(13, status=405)
    c.enforce("allocations:manage")
    data = await c.body(s.post_allocations_schema(c.version.minor))
    writes = [_consumer_write(c, consumer_id(cu), body) for cu, body in data.items()]
    index = c.svc.index

    async def work(session: Any, after: Any) -> None:
        await logic.replace(session, after, index, writes, _options(c), c.svc.writer)

    await c.svc.retrying(work, session=c.svc.writer is None)
    return no_content()


@router.delete("/allocations/{consumer_uuid}")
async def delete_allocations(consumer_uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("allocations:delete")
    index = c.svc.index

    async def work(session: Any, after: Any) -> bool:
        return await logic.delete_consumer(session, after, index, consumer_uuid,
                                           c.svc.writer)

    if not await c.svc.retrying(work, "allocation delete", session=c.svc.writer is None):
        raise NotFound(f"No allocations for consumer '{consumer_uuid}'")
    return no_content()


@router.get("/resource_providers/{uuid}/allocations")
async def provider_allocations(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:allocations:list")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        allocs = await logic.for_provider(session, c.svc.index, rp.id)
    if not c.at_least(28):
        for entry in allocs.values():
            entry.pop("consumer_generation", None)
    return c.respond({"resource_provider_generation": rp.generation, "allocations": allocs})

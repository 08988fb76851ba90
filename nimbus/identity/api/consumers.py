"""/v3/OS-OAUTH1/consumers."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.responses import Response

from nimbus.identity import consumers as logic
from nimbus.identity.api.common import Caller, caller
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {}
BASE = "/v3/OS-OAUTH1/consumers"


class ConsumerFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    description: StrictStr | None = Field(None, max_length=255)


class ConsumerBody(BaseModel):
    consumer: ConsumerFields = Field(default_factory=ConsumerFields)


@router.get(BASE)
async def list_consumers(c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_consumers")
    async with c.svc.db.session() as session:
        rows = await logic.list_consumers(session)
    base = c.url("")
    return json_response({"consumers": [logic.render(r, base) for r in rows],
                          "links": c.collection_links()})


@router.post(BASE, status_code=201)
async def create_consumer(body: ConsumerBody, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_consumer")
    data = body.consumer.model_dump(exclude_unset=True)
    data.pop("id", None)
    data.pop("secret", None)
    async with c.svc.db.transaction() as session:
        consumer = await logic.create(session, c.svc, data)
        out = logic.render(consumer, c.url(""), with_secret=True)
    return json_response({"consumer": out}, 201)


@router.get(BASE + "/{consumer_id}")
async def show_consumer(consumer_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_consumer")
    async with c.svc.db.session() as session:
        consumer = await logic.get(session, consumer_id)
    return json_response({"consumer": logic.render(consumer, c.url(""))})


@router.patch(BASE + "/{consumer_id}")
async def update_consumer(consumer_id: str, body: ConsumerBody,
                          c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_consumer")
    data = body.consumer.model_dump(exclude_unset=True)
    if not data:
        raise BadRequest("Invalid input for field 'consumer': {} does not have enough "
                         "properties.")
    async with c.svc.db.transaction() as session:
        consumer = await logic.get(session, consumer_id)
        await logic.update(session, c.svc, consumer, data)
        out = logic.render(consumer, c.url(""))
    return json_response({"consumer": out})


@router.delete(BASE + "/{consumer_id}", status_code=204)
async def delete_consumer(consumer_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_consumer")
    async with c.svc.db.transaction() as session:
        consumer = await logic.get(session, consumer_id)
        await logic.delete(session, c.svc, consumer)
    return no_content()

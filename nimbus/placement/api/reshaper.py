"""POST /reshaper (1.30+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import schema as s
from nimbus.placement.allocations import WriteOptions
from nimbus.placement.api.allocations import _consumer_write, consumer_id
from nimbus.placement.api.common import Caller, caller, no_content
from nimbus.placement.api.resource_providers import _body
from nimbus.placement.reshaper import reshape

router = APIRouter()


@router.post("/reshaper", openapi_extra=_body(s.reshaper_schema(38)))
async def post_reshaper(c: Caller = Depends(caller)) -> Response:
    c.require(30)
    c.enforce("reshaper:reshape")
    data = await c.body(s.reshaper_schema(c.version.minor))
    writes = [_consumer_write(c, consumer_id(cu), body)
              for cu, body in data["allocations"].items()]
    opts = WriteOptions(check_generation=True, set_type=c.at_least(38))
    index = c.svc.index

    async def work(session: Any, after: Any) -> None:
        await reshape(session, after, index, data["inventories"], writes, opts,
                      c.at_least(26))

    await c.svc.retrying(work, "reshape")
    return no_content()

"""/v2/schemas/...: the published JSON schemas."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.image import schemas
from nimbus.image.api.common import Caller, caller
from nimbus.web.errors import NotFound
from nimbus.web.responses import json_response

router = APIRouter()


@router.get("/v2/schemas/{name:path}")
async def show_schema(name: str, c: Caller = Depends(caller)) -> Response:
    body = schemas.get(name.strip("/"))
    if body is None:
        raise NotFound(f"No schema named {name}.")
    return json_response(body)

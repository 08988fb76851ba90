"""GET /: the version document (no token needed), as clients discover placement."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from nimbus.placement.versions import VERSIONS
from nimbus.web.responses import json_response

router = APIRouter()


@router.get("/")
async def root(request: Request) -> Response:
    return json_response({"versions": [{
        "id": "v1.0", "max_version": str(VERSIONS.maximum),
        "min_version": str(VERSIONS.minimum), "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}]}]})

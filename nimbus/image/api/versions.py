"""Version discovery: the root answers 300 with every v2.x, as Glance does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from nimbus.web.responses import json_response

router = APIRouter()

CURRENT = 17  # v2.17: import, stores, copy-image, tasks, usage, cache (2.14), location API


def versions(request: Request) -> list[dict[str, Any]]:
    href = str(request.base_url).rstrip("/") + "/v2/"
    out = []
    for minor in range(CURRENT, -1, -1):
        out.append({"id": f"v2.{minor}",
                    "status": "CURRENT" if minor == CURRENT else "SUPPORTED",
                    "links": [{"rel": "self", "href": href}]})
    return out


@router.api_route("/", methods=["GET", "HEAD"])
async def root(request: Request) -> Response:
    return json_response({"versions": versions(request)}, 300)


@router.api_route("/versions", methods=["GET", "HEAD"])
async def list_versions(request: Request) -> Response:
    return json_response({"versions": versions(request)})


@router.api_route("/v2", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/v2/", methods=["GET", "HEAD"], include_in_schema=False)
async def v2(request: Request) -> Response:
    return json_response({"versions": versions(request)}, 300)

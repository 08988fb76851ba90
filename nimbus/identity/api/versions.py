"""Version discovery at the service root and at /v3."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from nimbus.identity.api.common import base_url
from nimbus.web.responses import json_response

router = APIRouter()

MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
UPDATED = "2024-04-01T00:00:00Z"
VERSION_ID = "v3.14"


def _v3(request: Request) -> dict[str, Any]:
    return {"id": VERSION_ID, "status": "stable", "updated": UPDATED,
            "links": [{"rel": "self", "href": base_url(request) + "/v3/"}],
            "media-types": MEDIA}


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=True)
async def root(request: Request) -> Response:
    return json_response({"versions": {"values": [_v3(request)]}}, 300)


@router.api_route("/v3", methods=["GET", "HEAD"])
@router.api_route("/v3/", methods=["GET", "HEAD"], include_in_schema=False)
async def v3(request: Request) -> Response:
    return json_response({"version": _v3(request)})

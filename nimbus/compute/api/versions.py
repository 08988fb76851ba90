"""Version discovery: GET / lists v2.0 (deprecated) and v2.1; GET /v2.1 describes v2.1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from nimbus.web.microversion import Version, VersionRange
from nimbus.web.responses import json_response

router = APIRouter()

MIN_VERSION = "2.1"
MAX_VERSION = "2.104"
VERSIONS = VersionRange("compute", Version.parse(MIN_VERSION), Version.parse(MAX_VERSION),
                        "x-openstack-nova-api-version")


def _media(version: str) -> list[dict[str, str]]:
    return [{"base": "application/json",
             "type": f"application/vnd.openstack.compute+json;version={version}"}]


def _describe(base: str) -> dict[str, dict[str, Any]]:
    return {
        "v2.0": {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
                 "updated": "2025-07-04T12:00:00Z",
                 "links": [{"rel": "self", "href": f"{base}/v2/"}]},
        "v2.1": {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION,
                 "min_version": MIN_VERSION, "updated": "2013-07-23T11:33:21Z",
                 "links": [{"rel": "self", "href": f"{base}/v2.1/"}]},
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/", include_in_schema=False)
async def root(request: Request) -> Response:
    return json_response({"versions": list(_describe(_base(request)).values())})


@router.get("/v2.1", include_in_schema=False)
@router.get("/v2.1/", include_in_schema=False)
async def v21(request: Request) -> Response:
    base = _base(request)
    version = dict(_describe(base)["v2.1"])
    version["links"] = [{"rel": "self", "href": f"{base}/v2.1/"},
                        {"rel": "describedby", "type": "text/html",
                         "href": "http://docs.openstack.org/"}]
    version["media-types"] = _media("2.1")
    return json_response({"version": version})


@router.get("/v2", include_in_schema=False)
@router.get("/v2/", include_in_schema=False)
async def v20(request: Request) -> Response:
    base = _base(request)
    version = dict(_describe(base)["v2.0"])
    version["links"] = [{"rel": "self", "href": f"{base}/v2/"},
                        {"rel": "describedby", "type": "text/html",
                         "href": "http://docs.openstack.org/"}]
    version["media-types"] = _media("2")
    return json_response({"version": version})

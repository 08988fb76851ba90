"""Microversion negotiation as clients see it: header forms, limits, errors, stamping."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nimbus.web.errors import plain_format
from nimbus.web.microversion import MicroversionMiddleware, Version, VersionRange, requested

RANGE = VersionRange("compute", Version(2, 1), Version(2, 96), "x-openstack-nova-api-version")


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(requested(request.scope)))


def client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", echo)])
    wrapped = MicroversionMiddleware(app, versions=RANGE, formatter=plain_format)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t")


@pytest.mark.parametrize("headers,expected", [
    ({}, "2.1"),
    ({"OpenStack-API-Version": "compute 2.10"}, "2.10"),
    ({"OpenStack-API-Version": "volume 3.1, compute 2.53"}, "2.53"),
    ({"OpenStack-API-Version": "compute latest"}, "2.96"),
    ({"X-OpenStack-Nova-API-Version": "2.20"}, "2.20"),
])
async def test_negotiated_version(headers: dict, expected: str) -> None:
    async with client() as c:
        resp = await c.get("/", headers=headers)
    assert resp.status_code == 200 and resp.text == expected
    assert resp.headers["OpenStack-API-Version"] == f"compute {expected}"
    assert resp.headers["Vary"] == "OpenStack-API-Version"


@pytest.mark.parametrize("value,status", [("2.97", 406), ("2.0", 406), ("3.1", 406),
                                          ("two", 400), ("2.01", 400)])
async def test_bad_versions(value: str, status: int) -> None:
    async with client() as c:
        resp = await c.get("/", headers={"OpenStack-API-Version": f"compute {value}"})
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == status


def test_versions_order_numerically() -> None:
    assert Version.parse("2.10") > Version.parse("2.9")
    assert Version(2, 1) <= Version(2, 1) < Version(2, 96)

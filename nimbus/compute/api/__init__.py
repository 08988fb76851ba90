"""Compute's HTTP API (Nova v2.1 with microversions): one router per resource family."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nimbus.compute.api.versions import VERSIONS
from nimbus.compute.errors import format_error
from nimbus.web.app import create_api
from nimbus.web.microversion import MicroversionMiddleware

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

MODULES = ("versions", "flavors", "keypairs", "limits", "quotas", "availability_zones",
           "servers", "server_actions", "instance_actions", "hypervisors", "aggregates",
           "server_groups", "server_data", "interfaces", "usage", "server_misc", "proxies",
           "proxy_networks", "os_hosts", "proxy_images")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.compute.api.{name}") for name in MODULES]


def build_app(svc: ComputeService) -> ASGIApp:
    app: FastAPI = create_api("Nimbus Compute", format_error, auth=svc.cloud.token_auth,
                              max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.router.redirect_slashes = False
    app.state.compute = svc
    for module in api_modules():
        app.include_router(module.router)
    return MicroversionMiddleware(_ComputeRequestId(app), versions=VERSIONS,
                                  formatter=format_error)


class _ComputeRequestId:
    """Nova also answers its request id as X-Compute-Request-Id (older clients read it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name == b"x-openstack-request-id":
                        headers.append((b"x-compute-request-id", value))
                        break
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_header)

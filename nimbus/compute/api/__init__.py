"""Compute's HTTP API (Nova v2.1 with microversions): one router per resource family."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp

from nimbus.compute.api.versions import VERSIONS
from nimbus.compute.errors import format_error
from nimbus.web.app import create_api
from nimbus.web.microversion import MicroversionMiddleware

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

MODULES = ("versions", "flavors", "keypairs", "limits", "quotas", "availability_zones",
           "servers", "server_actions", "instance_actions", "hypervisors", "aggregates",
           "server_groups", "server_data", "interfaces", "usage", "server_misc", "proxies")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.compute.api.{name}") for name in MODULES]


def build_app(svc: ComputeService) -> ASGIApp:
    app: FastAPI = create_api("Nimbus Compute", format_error, auth=svc.cloud.token_auth,
                              max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.router.redirect_slashes = False
    app.state.compute = svc
    for module in api_modules():
        app.include_router(module.router)
    return MicroversionMiddleware(app, versions=VERSIONS, formatter=format_error)

"""Networking v2.0: one router per resource family, mounted on one FastAPI app."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from nimbus.network.errors import conflict, format_error
from nimbus.web.app import create_api
from nimbus.web.responses import json_response

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

# Order matters where paths overlap: the generic tag routes come last.
MODULES = ("networks", "subnets", "ports", "security_groups", "routers", "floatingips", "pools",
           "agents", "address_groups", "metering", "quotas", "segments", "auto_topology",
           "meta")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.network.api.{name}") for name in MODULES]


def build_app(svc: NetworkService) -> FastAPI:
    app = create_api("Nimbus Networking", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.state.network = svc
    for module in api_modules():
        app.include_router(module.router)

    async def on_integrity(_: Request, exc: Exception) -> Response:
        # A constraint refused a write that raced another request: the caller may retry.
        return json_response(format_error(conflict(
            "The request conflicts with a concurrent change; try again.", "HTTPConflict")), 409)

    app.add_exception_handler(IntegrityError, on_integrity)
    return app

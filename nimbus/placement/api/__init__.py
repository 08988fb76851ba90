"""Placement's HTTP API: one router per resource family, on one FastAPI app, behind
microversion negotiation."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.types import ASGIApp

from nimbus.placement.errors import RequestScope, format_error
from nimbus.placement.versions import VERSIONS
from nimbus.web.app import create_api
from nimbus.web.microversion import MicroversionMiddleware

if TYPE_CHECKING:
    from fastapi import FastAPI

    from nimbus.placement.service import PlacementService

# The hot routes first: the router tries routes in this order.
MODULES = ("allocation_candidates", "allocations", "resource_providers", "inventories",
           "classes_traits", "aggregates_usages", "reshaper", "root")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.placement.api.{name}") for name in MODULES]


def build_fastapi(svc: PlacementService) -> FastAPI:
    app = create_api("Nimbus Placement", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.router.redirect_slashes = False
    app.state.placement = svc
    # Inside the context middleware, so version errors carry a request id.
    app.user_middleware.append(Middleware(MicroversionMiddleware, versions=VERSIONS,
                                          formatter=format_error))
    # The routes themselves, not the modules' routers: an included router is matched through a
    # wrapper per router and route, twice for the router that answers (a third of a claim's
    # CPU). The modules' routers have no prefix, dependencies or settings of their own.
    for module in api_modules():
        app.router.routes.extend(module.router.routes)
    return app


def build_app(svc: PlacementService) -> ASGIApp:
    return RequestScope(build_fastapi(svc))

"""Networking v2.0: one router per resource family, mounted on one FastAPI app."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI

from nimbus.network.errors import format_error
from nimbus.web.app import create_api

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

# Order matters where paths overlap: the generic tag routes come last.
MODULES = ("networks", "subnets", "ports", "security_groups", "routers", "floatingips", "pools",
           "agents", "address_groups", "metering", "quotas", "meta")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.network.api.{name}") for name in MODULES]


def build_app(svc: NetworkService) -> FastAPI:
    app = create_api("Nimbus Networking", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.state.network = svc
    for module in api_modules():
        app.include_router(module.router)
    return app

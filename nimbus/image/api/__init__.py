"""The image service's HTTP API: one router per resource family, on one FastAPI app."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI

from nimbus.image.errors import format_error
from nimbus.web.app import create_api

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

MODULES = ("versions", "images", "data", "members", "info", "schemas", "metadefs", "cache")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.image.api.{name}") for name in MODULES]


def build_app(svc: ImageService) -> FastAPI:
    app = create_api("Nimbus Image", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    # Glance answers 404 for /v2/images/ (an empty id), never a redirect.
    app.router.redirect_slashes = False
    app.state.image = svc
    for module in api_modules():
        app.include_router(module.router)
    return app

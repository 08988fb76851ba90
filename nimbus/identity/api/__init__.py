"""Identity's HTTP API: one router per resource, mounted on one FastAPI app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from nimbus.identity.errors import format_error
from nimbus.web.app import create_api

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService


def build_app(svc: IdentityService) -> FastAPI:
    from nimbus.identity.api import auth, projects, versions

    app = create_api("Nimbus Identity", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.state.identity = svc
    for module in (versions, auth, projects):
        app.include_router(module.router)
    return app

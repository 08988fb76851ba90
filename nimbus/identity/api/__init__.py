"""Identity's HTTP API: one router per resource, mounted on one FastAPI app."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fastapi import FastAPI

from nimbus.identity.errors import format_error
from nimbus.web.app import create_api

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService


# One module per resource family; each has `router` and may have `POLICY` (extra default
# rules, merged into the service's enforcer).
MODULES = ("versions", "auth", "projects", "users", "groups", "roles", "assignments", "catalog",
           "credentials", "policies", "domain_configs", "limits", "consumers",
           "application_credentials", "trusts")


def api_modules() -> list[ModuleType]:
    return [importlib.import_module(f"nimbus.identity.api.{name}") for name in MODULES]


def extra_policy() -> dict[str, str]:
    rules: dict[str, str] = {}
    for module in api_modules():
        rules.update(getattr(module, "POLICY", {}))
    return rules


def build_app(svc: IdentityService) -> FastAPI:
    app = create_api("Nimbus Identity", format_error, auth=svc.cloud.token_auth,
                     max_body_bytes=svc.cloud.settings.max_body_bytes)
    app.state.identity = svc
    for module in api_modules():
        app.include_router(module.router)
    return app

"""Helpers every identity route uses: the service object, policy, links, filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends
from starlette.requests import Request

from nimbus.common.context import RequestContext
from nimbus.web.auth import request_context
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService


def service(request: Request) -> IdentityService:
    svc: IdentityService = request.app.state.identity
    return svc


class Caller:
    """The authenticated caller plus the service: what every protected route needs."""

    def __init__(self, request: Request, ctx: RequestContext, svc: IdentityService) -> None:
        self.request = request
        self.ctx = ctx
        self.svc = svc

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        self.svc.enforce(rule, self.ctx.policy_credentials(), target or {})

    def allowed(self, rule: str, target: dict[str, Any] | None = None) -> bool:
        return self.svc.enforcer.check_rule(rule, self.ctx.policy_credentials(), target or {})

    def url(self, path: str) -> str:
        """Absolute URL of a path under this API's root (e.g. '/v3/projects/x')."""
        return base_url(self.request) + path

    def collection_links(self) -> dict[str, Any]:
        return {"self": str(self.request.url), "previous": None, "next": None}


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def caller(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    return Caller(request, ctx, service(request))


def truthy(value: str | None) -> bool | None:
    """Keystone's reading of boolean query filters: '0' and 'false' are false."""
    if value is None:
        return None
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def require_hex_or_name(value: str, field: str) -> str:
    if not value or len(value) > 255:
        raise BadRequest(f"Invalid input for field '{field}'.")
    return value

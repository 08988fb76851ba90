"""Placement errors: {"errors": [{"status", "title", "detail", "code", "request_id"}]}.

`code` (from microversion 1.23) tells apart errors that share a status, such as the 409s of a
generation conflict (placement.concurrent_update) and of inventory in use. The formatter reads
the request id and the negotiated microversion from the request being answered, which
RequestScope keeps in a context variable.
"""

from __future__ import annotations

import contextvars
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from nimbus.placement.versions import VERSIONS
from nimbus.web.errors import ApiError, BadRequest, Conflict, NotFound
from nimbus.web.microversion import Version

DEFAULT = "placement.undefined_code"
INVENTORY_INUSE = "placement.inventory.inuse"
CONCURRENT_UPDATE = "placement.concurrent_update"
DUPLICATE_NAME = "placement.duplicate_name"
PROVIDER_IN_USE = "placement.resource_provider.inuse"
PROVIDER_CANNOT_DELETE_PARENT = "placement.resource_provider.cannot_delete_parent"
RESOURCE_PROVIDER_NOT_FOUND = "placement.resource_provider.not_found"
ILLEGAL_DUPLICATE_QUERYPARAM = "placement.query.duplicate_key"
QUERYPARAM_BAD_VALUE = "placement.query.bad_value"
QUERYPARAM_MISSING_VALUE = "placement.query.missing_value"

_CODES_FROM = Version(1, 23)
_current_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "placement_scope", default=None)


class RequestScope:
    """Outermost middleware of the placement app: remembers the request for the formatter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _current_scope.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_scope.reset(token)


def format_error(err: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"status": err.status, "title": err.title, "detail": err.message}
    scope = _current_scope.get()
    version: Version | None = scope.get("nimbus.microversion") if scope else None
    if version is not None and version >= _CODES_FROM:
        body["code"] = err.extra.get("code") or DEFAULT
    ctx = scope.get("nimbus.context") if scope else None
    if ctx is not None and getattr(ctx, "request_id", None):
        body["request_id"] = ctx.request_id
    if err.status == 406 and version is None:
        body["max_version"] = str(VERSIONS.maximum)
        body["min_version"] = str(VERSIONS.minimum)
    return {"errors": [body]}


def bad_request(message: str, code: str | None = None) -> BadRequest:
    return BadRequest(message, code=code)


def conflict(message: str, code: str | None = None) -> Conflict:
    return Conflict(message, code=code)


def generation_conflict(what: str = "resource provider") -> Conflict:
    return Conflict(f"{what} generation conflict", code=CONCURRENT_UPDATE)


def provider_not_found(uuid: str) -> NotFound:
    return NotFound(f"No resource provider with uuid {uuid} found",
                    code=RESOURCE_PROVIDER_NOT_FOUND)


class ConcurrentUpdate(Exception):
    """A compare-and-swap UPDATE of a generation matched no row: retry or answer 409."""

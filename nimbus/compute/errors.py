"""Compute errors. Nova answers {"<fault name>": {"code": N, "message": "..."}}."""

from __future__ import annotations

from typing import Any

from nimbus.web.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


def format_error(err: ApiError) -> dict[str, Any]:
    return {FAULT_NAMES.get(err.status, "computeFault"): {"code": err.status,
                                                          "message": err.message}}


class QuotaExceeded(Forbidden):
    """403 with Nova's quota message."""


def server_not_found(server_id: str) -> NotFound:
    return NotFound(f"Instance {server_id} could not be found.")


def flavor_not_found(flavor_id: str) -> NotFound:
    return NotFound(f"Flavor {flavor_id} could not be found.")


def invalid_state(attr: str, state: str | None, method: str, server_id: str) -> Conflict:
    """Nova's message for an action refused in the server's current state."""
    return Conflict(f"Cannot '{method}' instance {server_id} while it is in {attr} {state}")


def locked(server_id: str) -> Conflict:
    return Conflict(f"Instance {server_id} is locked")


def unexpected(name: str) -> BadRequest:
    return BadRequest(f"Additional properties are not allowed ('{name}' was unexpected)")


class Gone(ApiError):
    status = 410

    def __init__(self, message: str = "This resource is no longer available.",
                 **kw: Any) -> None:
        super().__init__(message, title="Gone", **kw)

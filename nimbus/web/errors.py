"""API errors that carry their HTTP status; each service renders them in its own body shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nimbus.common.policy import PolicyNotAuthorized

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, *, status: int | None = None, title: str | None = None,
                 error_type: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.title = title or TITLES.get(self.status, "Error")
        # A machine-readable name some services report (Neutron's "type").
        self.error_type = error_type or type(self).__name__
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str = "The request you have made requires authentication.",
                 **kw: Any) -> None:
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class NotAcceptable(ApiError):
    status = 406


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class NotImplementedYet(ApiError):
    status = 501


ErrorFormatter = Callable[[ApiError], dict[str, Any]]


def from_policy(exc: PolicyNotAuthorized) -> Forbidden:
    return Forbidden(str(exc))


def plain_format(err: ApiError) -> dict[str, Any]:
    return {"error": {"code": err.status, "title": err.title, "message": err.message}}

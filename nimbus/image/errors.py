"""Image errors. Glance answers in webob's JSON shape: {"code", "title", "message"}."""

from __future__ import annotations

from typing import Any

from nimbus.web.errors import ApiError, Conflict, Forbidden, NotFound


def format_error(err: ApiError) -> dict[str, Any]:
    return {"code": f"{err.status} {err.title}", "title": err.title, "message": err.message}


def image_not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


def read_only(attr: str) -> Forbidden:
    return Forbidden(f"Attribute '{attr}' is read-only.")


def reserved(attr: str) -> Forbidden:
    return Forbidden(f"Attribute '{attr}' is reserved.")


def bad_transition(current: str, wanted: str) -> Conflict:
    return Conflict(f"Image status transition from {current} to {wanted} is not allowed")


class Gone(ApiError):
    status = 410
    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, title="Gone", **kw)

"""Identity errors: Keystone's body is {"error": {"code", "title", "message"}}."""

from __future__ import annotations

from typing import Any

from nimbus.web.errors import ApiError, Conflict, NotFound, plain_format


def format_error(err: ApiError) -> dict[str, Any]:
    return plain_format(err)


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"Could not find {kind}: {ident}.")


def duplicate(kind: str, field: str, value: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry found "
                    f"with {field} {value}.")

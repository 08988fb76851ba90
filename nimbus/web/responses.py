"""Fast JSON responses (orjson) used by every API."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import Response


def dumps(body: Any) -> bytes:
    """orjson, except for what it refuses (integers past 64 bits, which free-form extra
    attributes may hold): the standard library writes those."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, default=str).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)

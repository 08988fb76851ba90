"""The FastAPI application factory every service uses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from nimbus.common.policy import PolicyNotAuthorized
from nimbus.web.auth import TokenAuth
from nimbus.web.errors import TITLES, ApiError, BadRequest, ErrorFormatter, Forbidden
from nimbus.web.middleware import ContextMiddleware
from nimbus.web.responses import json_response

LOG = logging.getLogger(__name__)


def validation_message(errors: Sequence[Any]) -> str:
    """One sentence naming the first offending field, as OpenStack's validators do."""
    if not errors:
        return "The request body is invalid."
    first = errors[0]
    kind = first.get("type", "")
    if kind in ("json_invalid", "json_type"):
        return "Malformed request body: the body is not valid JSON."
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc)
    msg = first.get("msg", "is invalid")
    if kind == "missing":
        prop = loc[-1] if loc else field
        return f"Invalid input for field '{field}': '{prop}' is a required property."
    if kind == "extra_forbidden":
        return f"Invalid input for field '{field}': additional properties are not allowed."
    if not field:
        return f"Invalid request body: {msg}."
    return f"Invalid input for field '{field}': {msg}."


def create_api(title: str, formatter: ErrorFormatter, *, auth: TokenAuth | None,
               max_body_bytes: int = 1024 * 1024, openapi: bool = True) -> FastAPI:
    # FastAPI's built-in OpenTelemetry probes the tracer setup on every request; we trace with
    # request ids and bus notifications instead.
    app = FastAPI(title=title, openapi_url="/openapi.json" if openapi else None,
                  docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})

    def render(err: ApiError) -> Response:
        return json_response(formatter(err), err.status, err.headers or None)

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(BadRequest(validation_message(exc.errors())))

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = {404: "The resource could not be found.",
                   405: "The method is not allowed for the requested URL."}.get(
            status, str(exc.detail))
        return render(ApiError(message, status=status, title=TITLES.get(status)))

    async def on_policy(_: Request, exc: Exception) -> Response:
        return render(Forbidden(str(exc)))

    async def on_crash(request: Request, exc: Exception) -> Response:
        LOG.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(ApiError("An unexpected error prevented the server from fulfilling "
                               "your request.", status=500))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(PolicyNotAuthorized, on_policy)
    app.add_exception_handler(Exception, on_crash)
    app.add_middleware(ContextMiddleware, auth=auth, formatter=formatter,
                       max_body_bytes=max_body_bytes)
    return app

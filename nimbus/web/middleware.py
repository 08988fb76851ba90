"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs too much per request).

For every HTTP request: a request id (returned as x-openstack-request-id), the caller's context
from X-Auth-Token, and a limit on JSON body size.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_request_id
from nimbus.common.tokens import InvalidToken
from nimbus.web.auth import TokenAuth, context_from_token
from nimbus.web.errors import ApiError, ErrorFormatter, PayloadTooLarge

LOG = logging.getLogger(__name__)

_STREAMED_TYPES = (b"application/octet-stream",)


class ContextMiddleware:
    def __init__(self, app: ASGIApp, *, auth: TokenAuth | None, formatter: ErrorFormatter,
                 max_body_bytes: int, request_id_header: bytes = b"x-openstack-request-id") -> None:
        self.app = app
        self.auth = auth
        self.formatter = formatter
        self.max_body_bytes = max_body_bytes
        self.request_id_header = request_id_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        token = None
        content_length = 0
        content_type = b""
        global_id = None
        for name, value in scope["headers"]:
            if name == b"x-auth-token":
                token = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = 0
            elif name == b"content-type":
                content_type = value
            elif name == b"x-openstack-request-id":
                candidate = value.decode("latin-1")
                if candidate.startswith("req-") and len(candidate) == 40:
                    global_id = candidate
        ctx = RequestContext(request_id=request_id, global_request_id=global_id)
        if token and self.auth is not None:
            try:
                data = self.auth.validate(token)
                ctx = context_from_token(data, token, request_id)
                ctx.global_request_id = global_id
            except InvalidToken as exc:
                scope["nimbus.auth_error"] = str(exc)
        scope["nimbus.context"] = ctx
        header = (self.request_id_header, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        if not content_type.startswith(_STREAMED_TYPES):
            if content_length > self.max_body_bytes:
                await self._send_error(PayloadTooLarge("Request is too large."), send_with_id)
                return
            if content_length == 0 and scope["method"] in ("POST", "PUT", "PATCH"):
                # Chunked bodies carry no length: read them here, within the limit.
                buffered = await _read_limited(receive, self.max_body_bytes)
                if buffered is None:
                    await self._send_error(PayloadTooLarge("Request is too large."),
                                           send_with_id)
                    return
                receive = _replay(buffered, receive)
        await self.app(scope, receive, send_with_id)

    async def _send_error(self, err: ApiError, send: Any) -> None:
        body = orjson.dumps(self.formatter(err))
        await send({"type": "http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            return None
        chunks.append(body)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay

"""Microversion negotiation, as Nova, Placement and Cinder do it.

The client asks with ``OpenStack-API-Version: <service> X.Y`` (or a legacy header such as
``X-OpenStack-Nova-API-Version: X.Y``); no header means the minimum, ``latest`` the maximum.
A version outside the supported range is 406, a malformed one 400. Every response says which
version answered, and varies on the request header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nimbus.web.errors import ApiError, BadRequest, ErrorFormatter, NotAcceptable

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if not m:
            raise ValueError(text)
        return cls(int(m.group(1)), int(m.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class VersionRange:
    service: str  # as named in the header: "compute", "placement", "volume"
    minimum: Version
    maximum: Version
    legacy_header: str | None = None  # e.g. "x-openstack-nova-api-version"

    def negotiate(self, headers: dict[str, str]) -> Version:
        asked: str | None = None
        value = headers.get("openstack-api-version")
        if value:
            for part in value.split(","):
                bits = part.strip().split()
                if len(bits) == 2 and bits[0].lower() == self.service:
                    asked = bits[1]
        if asked is None and self.legacy_header:
            asked = headers.get(self.legacy_header)
        if asked is None:
            return self.minimum
        if asked.strip().lower() == "latest":
            return self.maximum
        try:
            version = Version.parse(asked)
        except ValueError:
            raise BadRequest(f"Invalid API version request string: {asked}.") from None
        if not self.minimum <= version <= self.maximum:
            raise NotAcceptable(f"Version {version} is not supported by the API. Minimum is "
                                f"{self.minimum} and maximum is {self.maximum}.")
        return version


def requested(scope: Scope) -> Version:
    """The negotiated version of this request (set by MicroversionMiddleware)."""
    version: Version = scope["nimbus.microversion"]
    return version


class MicroversionMiddleware:
    """Negotiates once per request, stores the result in the scope, stamps the response."""

    def __init__(self, app: ASGIApp, *, versions: VersionRange, formatter: ErrorFormatter,
                 exempt_paths: tuple[str, ...] = ("/",)) -> None:
        self.app = app
        self.versions = versions
        self.formatter = formatter
        self.exempt = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        try:
            version = self.versions.negotiate(headers)
        except ApiError as err:
            await _send_error(send, err, self.formatter)
            return
        scope["nimbus.microversion"] = version
        stamp = [(b"openstack-api-version", f"{self.versions.service} {version}".encode()),
                 (b"vary", b"OpenStack-API-Version")]
        if self.versions.legacy_header:
            stamp.append((self.versions.legacy_header.encode(), str(version).encode()))

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *stamp]
            await send(message)

        await self.app(scope, receive, stamped)


async def _send_error(send: Send, err: ApiError, formatter: ErrorFormatter) -> None:
    from nimbus.web.responses import dumps

    body = dumps(formatter(err))
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

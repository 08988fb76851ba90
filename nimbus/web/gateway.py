"""The all-in-one front door: each service's ASGI app under its path prefix on one port.

A dict lookup on the first path segment is all the routing needed. As the ASGI spec says, the
prefix is added to ``root_path`` and ``path`` stays whole; Starlette routes on the difference.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from nimbus.web.responses import json_response


class Gateway:
    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        path: str = scope["path"]
        prefix, _, rest = path[1:].partition("/")
        app = self.apps.get(prefix)
        if app is None:
            if scope["type"] == "http":
                body = {"services": sorted("/" + name for name in self.apps)}
                status = 200 if path == "/" else 404
                await json_response(body, status)(scope, receive, send)
            return
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + "/" + prefix
        if not rest and not path.endswith("/"):
            child["path"] = path + "/"
        await app(child, receive, send)


async def _lifespan_noop(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

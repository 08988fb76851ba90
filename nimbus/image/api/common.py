"""What every image route needs: the service and the authenticated caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends
from starlette.requests import Request

from nimbus.common.context import RequestContext
from nimbus.web.auth import request_context
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.image.service import ImageService


class Caller:
    def __init__(self, request: Request, ctx: RequestContext, svc: ImageService) -> None:
        self.request = request
        self.ctx = ctx
        self.svc = svc

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        self.svc.enforce(rule, self.ctx, target or {})

    def own_target(self) -> dict[str, Any]:
        """A target naming the caller's own project (list and info calls)."""
        return {"project_id": self.ctx.project_id, "owner": self.ctx.project_id,
                "visibility": None, "member_id": None}

    async def json(self) -> Any:
        body = await self.request.body()
        if not body:
            raise BadRequest("Body expected in request.")
        import orjson

        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("Malformed JSON in request body.") from None


def service(request: Request) -> ImageService:
    svc: ImageService = request.app.state.image
    return svc


async def caller(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    return Caller(request, ctx, service(request))

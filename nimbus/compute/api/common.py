"""What every compute route needs: the service, the caller, the negotiated microversion,
validated bodies and query strings, links and paging."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from fastapi import Depends
from starlette.requests import Request

from nimbus.common.context import RequestContext
from nimbus.compute.api import validation
from nimbus.web.auth import request_context
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.microversion import Version

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

Schema = dict[str, Any]


def service(request: Request) -> ComputeService:
    svc: ComputeService = request.app.state.compute
    return svc


def body_doc(schema: Schema) -> dict[str, Any]:
    """openapi_extra for a route whose JSON body follows `schema`."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema}}}}


class Caller:
    def __init__(self, request: Request, ctx: RequestContext, svc: ComputeService) -> None:
        self.request = request
        self.ctx = ctx
        self.svc = svc
        version: Version | None = request.scope.get("nimbus.microversion")
        self.version = (version.major, version.minor) if version else (2, 1)

    # -- microversions --------------------------------------------------------------------------
    def at(self, minor: int) -> bool:
        """True if the request asked for 2.<minor> or later."""
        return self.version >= (2, minor)

    def require(self, minor: int) -> None:
        """Routes that exist only from 2.<minor> on answer 404 below it."""
        if not self.at(minor):
            raise NotFound("The resource could not be found.")

    def below(self, minor: int) -> None:
        """Routes removed at 2.<minor> answer 404 from it on."""
        if self.at(minor):
            raise NotFound("The resource could not be found.")

    # -- policy ---------------------------------------------------------------------------------
    def own_target(self) -> dict[str, Any]:
        return {"project_id": self.ctx.project_id, "user_id": self.ctx.user_id}

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        self.svc.enforce(rule, self.ctx, target if target is not None else self.own_target())

    def allowed(self, rule: str, target: dict[str, Any] | None = None) -> bool:
        return self.svc.allowed(rule, self.ctx,
                                target if target is not None else self.own_target())

    # -- input ----------------------------------------------------------------------------------
    async def body(self, schema: Schema | None = None) -> Any:
        raw = await self.request.body()
        if not raw:
            raise BadRequest("The request body is empty or malformed.")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("Malformed request body") from None
        if schema is not None:
            validation.validate(schema, data)
        return data

    def query(self, schema: Schema | None = None) -> dict[str, str]:
        """The query string (last value of repeated keys), checked against `schema`."""
        params = dict(self.request.query_params)
        if schema is not None:
            validation.validate_query(schema, params)
        return params

    def query_list(self, key: str) -> list[str]:
        return self.request.query_params.getlist(key)

    # -- output ---------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        """The compute endpoint's root URL (before /v2.1)."""
        return str(self.request.base_url).rstrip("/")

    def links(self, collection: str, ident: str | int) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{self.base}/v2.1/{collection}/{ident}"},
                {"rel": "bookmark", "href": f"{self.base}/{collection}/{ident}"}]

    def next_link(self, collection: str, marker: str | int,
                  params: dict[str, str] | None = None) -> dict[str, str]:
        query = {k: v for k, v in (params if params is not None
                                   else dict(self.request.query_params)).items()
                 if k != "marker"}
        query["marker"] = str(marker)
        return {"rel": "next", "href": f"{self.base}/v2.1/{collection}?{urlencode(query)}"}

    def limit(self, params: dict[str, str]) -> int:
        """The page size asked for (at most the configured maximum)."""
        max_limit = self.svc.settings.max_limit
        raw = params.get("limit")
        if raw is None:
            return max_limit
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if value < 0:
            raise BadRequest("limit param must be positive")
        return min(value, max_limit)


async def caller(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    return Caller(request, ctx, service(request))


def page_links(c: Caller, collection: str, items: list[dict[str, Any]], limit: int,
               key: str = "id") -> list[dict[str, str]]:
    """Nova adds a "next" link when a page came back full."""
    if items and len(items) == limit:
        return [c.next_link(collection, items[-1][key])]
    return []

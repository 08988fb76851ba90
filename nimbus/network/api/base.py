"""Shapes shared by the resource routes: list and single responses, notifications."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from nimbus.network import query
from nimbus.network.api.common import Caller
from nimbus.web.responses import json_response


def listed(c: Caller, collection: str, rows: list[Any], more: bool, params: query.ListParams,
           bodies: list[dict[str, Any]]) -> Response:
    out: dict[str, Any] = {collection: [query.select_fields(b, params.fields) for b in bodies]}
    out.update(c.links(collection, rows, more, params))
    return json_response(out)


def shown(c: Caller, kind: str, body: dict[str, Any], status: int = 200) -> Response:
    fields = c.params().fields if status == 200 else []
    return json_response({kind: query.select_fields(body, fields)}, status)


def created(kind: str, plural: str, bodies: list[dict[str, Any]], bulk: bool) -> Response:
    if bulk:
        return json_response({plural: bodies}, 201)
    return json_response({kind: bodies[0]}, 201)


async def notify(c: Caller, event: str, kind: str, body: dict[str, Any]) -> None:
    await c.svc.notify(event, {kind: body}, context={"request_id": c.ctx.request_id,
                                                     "project_id": c.ctx.project_id,
                                                     "user_id": c.ctx.user_id})

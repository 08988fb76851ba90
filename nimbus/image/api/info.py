"""/v2/info: import methods, stores, quota usage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.image import quotas
from nimbus.image.api.common import Caller, caller
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response

router = APIRouter()


@router.get("/v2/info/import")
async def import_info(c: Caller = Depends(caller)) -> Response:
    return json_response({"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": list(c.svc.settings.import_methods)}})


def _stores(c: Caller) -> list[dict[str, Any]]:
    out = []
    for store in c.svc.stores.values():
        entry: dict[str, Any] = {"id": store.id, "description": store.description}
        if store.id == c.svc.settings.default_store:
            entry["default"] = "true"
        if store.read_only:
            entry["read-only"] = "true"
        if store.weight:
            entry["weight"] = store.weight
        out.append(entry)
    return out


@router.get("/v2/info/stores")
async def stores(c: Caller = Depends(caller)) -> Response:
    return json_response({"stores": _stores(c)})


@router.get("/v2/info/stores/detail")
async def stores_detail(c: Caller = Depends(caller)) -> Response:
    c.enforce("image:stores_info_detail", c.own_target())
    out = _stores(c)
    for entry in out:
        store = c.svc.stores[entry["id"]]
        entry.update(type=store.type, properties=store.properties())
    return json_response({"stores": out})


@router.get("/v2/info/usage")
async def usage(c: Caller = Depends(caller)) -> Response:
    if not c.ctx.project_id:
        raise BadRequest("Quota usage needs a project-scoped token.")
    async with c.svc.db.session() as session:
        return json_response(await quotas.usage(session, c.svc, c.ctx.project_id))

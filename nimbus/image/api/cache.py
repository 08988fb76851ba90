"""/v2/cache (v2.14): list, queue, delete and clear this node's cached images; admin only."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.image.api.common import Caller, caller
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.get("/v2/cache")
async def list_cache(c: Caller = Depends(caller)) -> Response:
    c.enforce("image:cache_list", c.own_target())
    return json_response(await c.svc.cache.listing())


@router.put("/v2/cache/{image_id}", status_code=202)
async def queue_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("image:cache_image", c.own_target())
    await c.svc.cache.queue(c.svc, c.ctx, image_id)
    return Response(status_code=202)


@router.delete("/v2/cache/{image_id}", status_code=204)
async def delete_cached(image_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("image:cache_delete", c.own_target())
    await c.svc.cache.delete(image_id)
    return no_content()


@router.delete("/v2/cache", status_code=204)
async def clear_cache(c: Caller = Depends(caller)) -> Response:
    c.enforce("image:cache_delete", c.own_target())
    target = c.request.headers.get("x-image-cache-clear-target", "").strip().lower()
    await c.svc.cache.clear(target)
    return no_content()

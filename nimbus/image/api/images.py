"""/v2/images: create, list, show, update (JSON patch), delete, (de)activate, tags."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.responses import Response

from nimbus.image import images, listing, locations, patch
from nimbus.image.api.common import Caller, caller
from nimbus.image.data import stage_path
from nimbus.image.errors import bad_transition
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()


class ImageCreate(BaseModel):
    """Base attributes; any other key is an additional property with a string value."""

    model_config = ConfigDict(extra="allow")
    id: StrictStr | None = Field(None, pattern=images.UUID_RE.pattern)
    name: StrictStr | None = Field(None, max_length=255)
    visibility: StrictStr | None = None
    protected: StrictBool | None = None
    os_hidden: StrictBool | None = None
    min_ram: StrictInt | None = Field(None, ge=0, le=images.MAX_INT)
    min_disk: StrictInt | None = Field(None, ge=0, le=images.MAX_INT)
    container_format: StrictStr | None = None
    disk_format: StrictStr | None = None
    owner: StrictStr | None = Field(None, max_length=255)
    tags: list[StrictStr] | None = None


PATCH_SCHEMA = {"type": "array", "items": {"type": "object", "properties": {
    "op": {"type": "string", "enum": ["add", "remove", "replace"]},
    "path": {"type": "string"}, "value": {}}, "required": ["op", "path"]}}
PATCH_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": PATCH_SCHEMA} for media in patch.MEDIA_TYPES}}}


def _created_headers(c: Caller, image_id: str) -> dict[str, str]:
    headers = {"Location": f"{str(c.request.base_url).rstrip('/')}/v2/images/{image_id}",
               "OpenStack-image-store-ids": ",".join(
                   s.id for s in c.svc.stores.values() if not s.read_only)}
    if c.svc.settings.import_methods:
        headers["OpenStack-image-import-methods"] = ",".join(c.svc.settings.import_methods)
    return headers


@router.post("/v2/images", status_code=201)
async def create_image(body: ImageCreate = Body(...), c: Caller = Depends(caller)) -> Response:
    data = {k: v for k, v in body.model_dump(exclude_unset=True).items()}
    data.update(body.model_extra or {})
    async with c.svc.db.transaction() as session:
        img = await images.create(session, c.svc, c.ctx, data)
        out = await images.render_one(session, img, c.svc, c.ctx)
    await c.svc.notify("image.create", out)
    return json_response(out, 201, _created_headers(c, img.id))


@router.get("/v2/images")
async def list_images(c: Caller = Depends(caller)) -> Response:
    c.enforce("image:get_images", c.own_target())
    params = c.request.query_params.multi_items()
    q = listing.parse(params)
    async with c.svc.db.session() as session:
        rows, next_marker = await listing.list_images(session, c.svc, c.ctx, q)
        rendered = await images.render_many(session, c.svc, c.ctx, rows)
    body: dict[str, Any] = {
        "images": rendered,
        "first": "/v2/images", "schema": "/v2/schemas/images"}
    others = [(k, v) for k, v in params if k != "marker"]
    if others:
        body["first"] = f"/v2/images?{urlencode(others)}"
    if next_marker is not None:
        body["next"] = f"/v2/images?{urlencode([*others, ('marker', next_marker)])}"
    return json_response(body)


@router.get("/v2/images/{image_id}")
async def show_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id)
        c.enforce("image:get_image", tgt)
        out = await images.render_one(session, img, c.svc, c.ctx)
    return json_response(out)


@router.patch("/v2/images/{image_id}", openapi_extra=PATCH_BODY)
async def update_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    version = patch.media_version(c.request.headers.get("content-type"))
    changes = patch.parse(await c.json(), version)
    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id, for_update=True)
        c.enforce("image:modify_image", tgt)
        removed = await patch.apply(session, c.svc, c.ctx, img, tgt, changes, version)
        out = await images.render_one(session, img, c.svc, c.ctx)
    for loc in removed:
        store = c.svc.stores.get(loc.store)
        if store is not None:
            await store.delete(loc.url)
    await c.svc.notify("image.update", out)
    return json_response(out)


@router.delete("/v2/images/{image_id}", status_code=204)
async def delete_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id)
        c.enforce("image:delete_image", tgt)
        locs = await images.delete_image(session, img)
    for loc in locs:
        store = c.svc.stores.get(loc.store)
        if store is not None:
            await store.delete(loc.url)
    await asyncio.to_thread(stage_path(c.svc, image_id).unlink, missing_ok=True)
    await c.svc.cache.delete(image_id)
    await c.svc.notify("image.delete", {"id": image_id})
    return no_content()


async def _activation(c: Caller, image_id: str, action: str) -> Response:
    rule, new = ("image:deactivate", "deactivated") if action == "deactivate" else (
        "image:reactivate", "active")
    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id)
        c.enforce(rule, tgt)
        if img.status not in ("active", "deactivated"):
            raise BadRequest(f"Not allowed to {action} image in status '{img.status}'")
        if img.status != new and not await images.set_status(
                session, img.id, new, expect=[img.status]):
            raise bad_transition(img.status, new)
    await c.svc.notify(f"image.{action}", {"id": image_id})
    return no_content()


@router.post("/v2/images/{image_id}/locations", status_code=202)
async def add_location(image_id: str, c: Caller = Depends(caller)) -> Response:
    """v2.17: add an http location to a queued image; its data is hashed in a task."""
    await locations.add(c.svc, c.ctx, image_id, await c.json())
    return Response(status_code=202)


@router.get("/v2/images/{image_id}/locations")
async def get_locations(image_id: str, c: Caller = Depends(caller)) -> Response:
    return json_response(await locations.fetch(c.svc, c.ctx, image_id))


@router.post("/v2/images/{image_id}/actions/deactivate", status_code=204)
async def deactivate(image_id: str, c: Caller = Depends(caller)) -> Response:
    return await _activation(c, image_id, "deactivate")


@router.post("/v2/images/{image_id}/actions/reactivate", status_code=204)
async def reactivate(image_id: str, c: Caller = Depends(caller)) -> Response:
    return await _activation(c, image_id, "reactivate")


@router.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
async def add_tag(image_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id, for_update=True)
        c.enforce("image:modify_image", tgt)
        change = patch.Change("add", ["tags", "-"], tag)
        await patch.apply(session, c.svc, c.ctx, img, tgt, [change], 10)
    return no_content()


@router.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
async def delete_tag(image_id: str, tag: str, c: Caller = Depends(caller)) -> Response:
    from sqlalchemy import delete

    from nimbus.image.models import ImageTag

    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id, for_update=True)
        c.enforce("image:modify_image", tgt)
        result = await session.execute(delete(ImageTag).where(
            ImageTag.image_id == img.id, ImageTag.value == tag))
        if not getattr(result, "rowcount", 0):
            from nimbus.web.errors import NotFound

            raise NotFound(f"Tag {tag} not found on image {image_id}.")
        await images.touch(session, img.id)
    return no_content()

"""Image data over HTTP: PUT/GET /file (streamed, GET with Range), PUT /stage, POST /import,
GET /tasks, and DELETE /v2/stores/{store}/{image}."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from nimbus.image import data, images, imports
from nimbus.image.api.common import Caller, caller
from nimbus.web.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    UnsupportedMediaType,
)
from nimbus.web.responses import json_response, no_content

router = APIRouter()

OCTET_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
IMPORT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["method"], "properties": {
        "method": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "enum": list(imports.KNOWN_METHODS)}}},
        "stores": {"type": "array", "items": {"type": "string"}},
        "all_stores": {"type": "boolean"}, "all_stores_must_succeed": {"type": "boolean"}}}}}}}
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def _chunks(c: Caller) -> AsyncIterator[bytes]:
    try:
        async for chunk in c.request.stream():
            yield chunk
    except ClientDisconnect:
        raise data.Disconnected() from None


def _octet_stream(c: Caller) -> None:
    kind = c.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/octet-stream":
        raise UnsupportedMediaType("Image data must be sent as application/octet-stream.")


def _expected_size(c: Caller) -> int | None:
    value = c.request.headers.get("x-openstack-image-size")
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise BadRequest(f"Invalid x-openstack-image-size: {value!r}") from None
    if size < 0:
        raise BadRequest(f"Invalid x-openstack-image-size: {value!r}")
    return size


@router.put("/v2/images/{image_id}/file", status_code=204, openapi_extra=OCTET_BODY)
async def upload(image_id: str, c: Caller = Depends(caller)) -> Response:
    _octet_stream(c)
    await data.upload(c.svc, c.ctx, image_id, _chunks(c), expected_size=_expected_size(c),
                      store_id=c.request.headers.get("x-image-meta-store"))
    return no_content()


@router.put("/v2/images/{image_id}/stage", status_code=204, openapi_extra=OCTET_BODY)
async def stage(image_id: str, c: Caller = Depends(caller)) -> Response:
    _octet_stream(c)
    await data.stage(c.svc, c.ctx, image_id, _chunks(c), expected_size=_expected_size(c))
    return no_content()


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single satisfiable range, None for the whole; 416 otherwise."""
    if header is None:
        return None
    m = RANGE_RE.match(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # RFC 9110: an unparsable Range is ignored
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        start = max(0, size - suffix)
        return start, size - start
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    end = min(end, size - 1)
    return start, end - start + 1


def _unsatisfiable(size: int) -> ApiError:
    return ApiError("Requested range not satisfiable", status=416,
                    headers={"Content-Range": f"bytes */{size}"})


@router.get("/v2/images/{image_id}/file")
async def download(image_id: str, c: Caller = Depends(caller)) -> Response:
    dl = await data.open_download(c.svc, c.ctx, image_id)
    if dl is None:
        return Response(status_code=204)
    if not await dl.store.exists(dl.url):
        raise ApiError("The image data cannot be read from its store.", status=503)
    if dl.image.size is None and not c.request.headers.get("range"):
        # data added by location (an http URL) before its size was known: stream it whole
        return StreamingResponse(dl.store.read(dl.url), status_code=200,
                                 headers={"Accept-Ranges": "bytes"},
                                 media_type="application/octet-stream")
    size = dl.image.size or 0
    wanted = _byte_range(c.request.headers.get("range"), size)
    headers = {"Accept-Ranges": "bytes"}
    if wanted is None:
        start, length, status = 0, size, 200
        if dl.image.checksum:
            headers["Content-MD5"] = dl.image.checksum
    else:
        (start, length), status = wanted, 206
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    headers["Content-Length"] = str(length)
    await c.svc.notify("image.send", {"image_id": image_id, "bytes_sent": length,
                                      "receiver_tenant_id": c.ctx.project_id})
    return StreamingResponse(dl.store.read(dl.url, start, length), status_code=status,
                             headers=headers, media_type="application/octet-stream")


@router.post("/v2/images/{image_id}/import", status_code=202, openapi_extra=IMPORT_BODY)
async def import_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    await imports.start(c.svc, c.ctx, image_id, await c.json(),
                        c.request.headers.get("x-image-meta-store"))
    return Response(status_code=202)


@router.get("/v2/images/{image_id}/tasks")
async def image_tasks(image_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id)
        c.enforce("image:get_image", tgt)
        tasks = await imports.tasks_of(session, img.id)
    return json_response({"tasks": [imports.render_task(t) for t in tasks]})


@router.get("/v2/tasks")
async def list_tasks(c: Caller = Depends(caller)) -> Response:
    from sqlalchemy import select

    from nimbus.image.models import ImageTask

    c.enforce("image:get_task", c.own_target())
    async with c.svc.db.session() as session:
        rows = (await session.scalars(select(ImageTask).order_by(
            ImageTask.created_at.desc()).limit(1000))).all()
    return json_response({"tasks": [imports.render_task(t) for t in rows],
                          "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})


@router.post("/v2/tasks", status_code=201)
async def create_task(c: Caller = Depends(caller)) -> Response:
    """The old tasks API only ever imported from a URL: this cloud has no web downloads."""
    c.enforce("image:get_task", c.own_target())
    body = await c.json()
    if not isinstance(body, dict) or body.get("type") != "import":
        raise BadRequest("Task type must be 'import'.")
    raise BadRequest("Importing from a URL is not enabled in this cloud: upload the data "
                     "(PUT /v2/images/{id}/file) or stage and import it (glance-direct).")


@router.get("/v2/tasks/{task_id}")
async def show_task(task_id: str, c: Caller = Depends(caller)) -> Response:
    from nimbus.image.models import ImageTask

    c.enforce("image:get_task", c.own_target())
    async with c.svc.db.session() as session:
        task = await session.get(ImageTask, task_id)
    if task is None:
        raise NotFound(f"Task with the given id {task_id} was not found")
    return json_response(imports.render_task(task))


@router.delete("/v2/stores/{store_id}/{image_id}", status_code=204)
async def delete_from_store(store_id: str, image_id: str,
                            c: Caller = Depends(caller)) -> Response:
    store = c.svc.stores.get(store_id)
    if store is None:
        raise BadRequest(f"Unknown store {store_id}.")
    if store.read_only:
        raise Forbidden(f"Store {store_id} is read-only.")
    async with c.svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, c.ctx, image_id)
        c.enforce("image:delete_image_location", tgt)
        if img.status != "active":
            raise Conflict("It's not allowed to remove image data from store if image "
                           "status is not 'active'")
        locs = await images.locations(session, img.id)
        mine = [loc for loc in locs if loc.store == store_id]
        if not mine:
            raise NotFound(f"Image {image_id} is not in store {store_id}.")
        if len(locs) == 1:
            raise Forbidden("Cannot delete the last location of an image.")
        for loc in mine:
            await session.delete(loc)
        await images.touch(session, img.id)
    for loc in mine:
        await store.delete(loc.url)
    return no_content()

"""The image proxy Nova keeps below 2.36 (404 from it on): /images and their metadata,
served from the image service with the caller's token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.clients.base import RemoteApiError
from nimbus.clients.image import ImageClient
from nimbus.compute import lifecycle
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.proxies import proxy_only, remote_error
from nimbus.compute.create import CORE_IMAGE_FIELDS
from nimbus.web.errors import BadRequest, Forbidden, NotFound
from nimbus.web.responses import json_response

router = APIRouter()


# -- images ---------------------------------------------------------------------------------------
IMAGE_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING",
                "importing": "SAVING", "uploading": "SAVING", "deleted": "DELETED",
                "pending_delete": "DELETED", "killed": "ERROR", "deactivated": "ERROR"}
PROGRESS = {"queued": 25, "saving": 50, "active": 100}


def _images(c: Caller) -> ImageClient:
    if not lifecycle.has_service(c.svc.cloud, "image"):
        raise NotFound("Image not found.")
    return c.svc.cloud.clients.get(ImageClient)


def _props(image: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in image.items() if k not in CORE_IMAGE_FIELDS}


def _image_links(c: Caller, image_id: str) -> list[dict[str, str]]:
    return [*c.links("images", image_id),
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{c.svc.cloud.endpoint_url('image')}/images/{image_id}"}]


def image_view(c: Caller, image: dict[str, Any]) -> dict[str, Any]:
    props = _props(image)
    out: dict[str, Any] = {
        "id": image["id"], "name": image.get("name"),
        "minRam": int(image.get("min_ram") or 0), "minDisk": int(image.get("min_disk") or 0),
        "metadata": props, "created": image.get("created_at"),
        "updated": image.get("updated_at"),
        "status": IMAGE_STATUS.get(image.get("status", ""), "UNKNOWN"),
        "progress": PROGRESS.get(image.get("status", ""), 0),
        "OS-EXT-IMG-SIZE:size": image.get("size"), "links": _image_links(c, image["id"])}
    server = props.get("instance_uuid")
    if server:
        out["server"] = {"id": server, "links": c.links("servers", server)}
    if "auto_disk_config" in props:
        out["OS-DCF:diskConfig"] = "AUTO" if v.truthy(props["auto_disk_config"]) else "MANUAL"
    return out


async def _list_images(c: Caller, detail: bool) -> Response:
    proxy_only(c)
    params = c.query()
    query: dict[str, str] = {}
    for key, glance_key in (("name", "name"), ("server", "instance_uuid"),
                            ("type", "image_type"), ("limit", "limit"),
                            ("marker", "marker")):
        if key in params:
            query[glance_key] = params[key].rsplit("/", 1)[-1] if key == "server" \
                else params[key]
    if "status" in params:
        query["status"] = params["status"].lower()
    for key, value in params.items():
        if key.startswith("property-"):
            query[key[len("property-"):]] = value
    try:
        found = await _images(c).list(query, ctx=c.ctx)
    except RemoteApiError as exc:
        raise BadRequest(exc.message) from None
    for key, attr in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if key in params:
            try:
                low = int(params[key])
            except ValueError:
                raise BadRequest(f"Invalid {key} filter [{params[key]}]") from None
            found = [i for i in found if int(i.get(attr) or 0) >= low]
    if "changes-since" in params:
        found = [i for i in found if (i.get("updated_at") or "") >= params["changes-since"]]
    items = [image_view(c, i) if detail else {"id": i["id"], "name": i.get("name"),
                                                "links": _image_links(c, i["id"])}
             for i in found]
    body: dict[str, Any] = {"images": items}
    if "limit" in params and items and len(items) == int(params["limit"] or 0):
        body["images_links"] = [c.next_link("images/detail" if detail else "images",
                                            items[-1]["id"])]
    return json_response(body)


@router.get("/v2.1/images")
async def list_images(c: Caller = Depends(caller)) -> Response:
    return await _list_images(c, False)


@router.get("/v2.1/images/detail")
async def list_images_detail(c: Caller = Depends(caller)) -> Response:
    return await _list_images(c, True)


async def _image(c: Caller, image_id: str) -> dict[str, Any]:
    proxy_only(c)
    try:
        image = await _images(c).get(image_id, ctx=c.ctx)
    except RemoteApiError as exc:
        raise remote_error(exc, "Image not found.") from None
    if image is None:
        raise NotFound("Image not found.")
    return image


@router.get("/v2.1/images/{image_id}")
async def show_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    return json_response({"image": image_view(c, await _image(c, image_id))})


@router.delete("/v2.1/images/{image_id}")
async def delete_image(image_id: str, c: Caller = Depends(caller)) -> Response:
    await _image(c, image_id)
    try:
        await _images(c).delete(image_id, ctx=c.ctx)
    except RemoteApiError as exc:
        if exc.status == 403:
            raise Forbidden("You are not allowed to delete the image.") from None
        raise remote_error(exc, "Image not found.") from None
    return Response(status_code=204)


async def _set_props(c: Caller, image: dict[str, Any], wanted: dict[str, Any],
                     replace: bool) -> dict[str, Any]:
    current = _props(image)
    limit = None
    async with c.svc.db.session() as session:
        from nimbus.compute import quotas

        limit = (await quotas.limits(session, c.ctx.project_id or ""))["metadata_items"]
    merged = dict(wanted) if replace else {**current, **wanted}
    if limit is not None and 0 <= limit < len(merged):
        raise Forbidden(f"Maximum number of metadata items exceeds {limit}")
    ops: list[dict[str, Any]] = []
    for key, value in merged.items():
        if current.get(key) != value:
            ops.append({"op": "replace" if key in current else "add", "path": f"/{key}",
                        "value": str(value)})
    if replace:
        ops += [{"op": "remove", "path": f"/{key}"} for key in current if key not in merged]
    if not ops:
        return current
    try:
        updated = await _images(c).update(image["id"], ops, ctx=c.ctx)
    except RemoteApiError as exc:
        raise remote_error(exc, "Image not found.") from None
    return _props(updated)


META = {"type": "object", "properties": {"metadata": v.METADATA}, "required": ["metadata"],
        "additionalProperties": False}
META_ITEM = {"type": "object", "properties": {"meta": {**v.METADATA, "minProperties": 1,
                                                       "maxProperties": 1}},
             "required": ["meta"], "additionalProperties": False}


@router.get("/v2.1/images/{image_id}/metadata")
async def image_metadata(image_id: str, c: Caller = Depends(caller)) -> Response:
    return json_response({"metadata": _props(await _image(c, image_id))})


@router.post("/v2.1/images/{image_id}/metadata", openapi_extra=body_doc(META))
async def merge_image_metadata(image_id: str, c: Caller = Depends(caller)) -> Response:
    image = await _image(c, image_id)
    body = await c.body(META)
    return json_response({"metadata": await _set_props(c, image, body["metadata"], False)})


@router.put("/v2.1/images/{image_id}/metadata", openapi_extra=body_doc(META))
async def replace_image_metadata(image_id: str, c: Caller = Depends(caller)) -> Response:
    image = await _image(c, image_id)
    body = await c.body(META)
    return json_response({"metadata": await _set_props(c, image, body["metadata"], True)})


@router.get("/v2.1/images/{image_id}/metadata/{key}")
async def image_metadata_item(image_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    props = _props(await _image(c, image_id))
    if key not in props:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: props[key]}})


@router.put("/v2.1/images/{image_id}/metadata/{key}", openapi_extra=body_doc(META_ITEM))
async def set_image_metadata_item(image_id: str, key: str,
                                  c: Caller = Depends(caller)) -> Response:
    image = await _image(c, image_id)
    raw = await c.body()
    if isinstance(raw, dict) and isinstance(raw.get("meta"), dict) and len(raw["meta"]) > 1:
        raise BadRequest("Request body contains too many items")
    body = v.validate(META_ITEM, raw)
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    await _set_props(c, image, body["meta"], False)
    return json_response({"meta": body["meta"]})


@router.delete("/v2.1/images/{image_id}/metadata/{key}")
async def delete_image_metadata_item(image_id: str, key: str,
                                     c: Caller = Depends(caller)) -> Response:
    image = await _image(c, image_id)
    if key not in _props(image):
        raise NotFound("Metadata item was not found")
    try:
        await _images(c).update(image_id, [{"op": "remove", "path": f"/{key}"}], ctx=c.ctx)
    except RemoteApiError as exc:
        raise remote_error(exc, "Image not found.") from None
    return Response(status_code=204)

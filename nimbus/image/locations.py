"""Image locations: shown when image.show_multiple_locations is on (Glance's option of that
name), changed with PATCH /locations (add, replace with the same URLs, remove), and since v2.17
added with POST /v2/images/{id}/locations, which hashes the data in a background task.

Only http(s) URLs on hosts an http store allows can be added: the service reads from them."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import utcnow
from nimbus.image import images
from nimbus.image.models import Image, ImageLocation, ImageTask
from nimbus.image.stores import StoreError
from nimbus.image.stores.http import HttpStore
from nimbus.web.errors import BadRequest, Conflict, Forbidden

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)
HEX = re.compile(r"^[0-9a-fA-F]*$")
VALIDATION_KEYS = ("checksum", "os_hash_algo", "os_hash_value")


# -- checks ------------------------------------------------------------------------------------
def http_store(svc: ImageService, url: Any) -> HttpStore:
    """The http store that accepts `url`, or 400 (Glance's wording for filtered URLs)."""
    if not isinstance(url, str) or not url:
        raise BadRequest("Location 'url' must be a non-empty string.")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        raise BadRequest(f"Invalid location: unknown scheme {scheme!r} in {url}")
    for store in svc.stores.values():
        if isinstance(store, HttpStore) and store.accepts(url):
            return store
    raise BadRequest(f"Invalid location: URL {url} does not pass filtering (no http store "
                     "of this cloud allows its host).")


def check_validation_data(data: Any) -> dict[str, str]:
    """checksum (md5), os_hash_algo and os_hash_value, each checked for form."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest("validation_data must be an object.")
    unknown = [k for k in data if k not in VALIDATION_KEYS]
    if unknown:
        raise BadRequest(f"Unknown validation_data keys: {', '.join(map(str, unknown))}.")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not value:
            raise BadRequest(f"validation_data {key} must be a non-empty string.")
        out[key] = value
    if "checksum" in out and (len(out["checksum"]) != 32 or not HEX.match(out["checksum"])):
        raise BadRequest("validation_data checksum must be 32 hexadecimal digits (md5).")
    if ("os_hash_value" in out) != ("os_hash_algo" in out):
        raise BadRequest("validation_data needs os_hash_algo and os_hash_value together.")
    if "os_hash_algo" in out:
        algo = out["os_hash_algo"]
        if algo not in hashlib.algorithms_guaranteed or algo.startswith("shake"):
            raise BadRequest(f"Unsupported os_hash_algo {algo!r}.")
        want = hashlib.new(algo).digest_size * 2
        value = out["os_hash_value"]
        if len(value) != want or not HEX.match(value):
            raise BadRequest(f"os_hash_value of {algo} must be {want} hexadecimal digits.")
    return out


def _check_against(img: Image, vd: dict[str, str]) -> None:
    for key, value in vd.items():
        if key not in VALIDATION_KEYS:
            raise BadRequest(f"Unknown validation_data key {key!r}.")
        current = getattr(img, key)
        if current is not None and current != value:
            raise Conflict(f"Image {key} {current!r} does not match the location's "
                           f"validation_data {value!r}.")


def _location_value(value: Any) -> tuple[str, dict[str, Any], dict[str, str]]:
    if not isinstance(value, dict) or "url" not in value:
        raise BadRequest("A location is an object with 'url' and 'metadata'.")
    extra = set(value) - {"url", "metadata", "validation_data"}
    if extra:
        raise BadRequest(f"Unknown location keys: {', '.join(sorted(extra))}.")
    meta = value.get("metadata", {})
    if not isinstance(meta, dict):
        raise BadRequest("Location 'metadata' must be an object.")
    vd = value.get("validation_data") or {}
    if not isinstance(vd, dict) or not all(isinstance(v, str) for v in vd.values()):
        raise BadRequest("validation_data must be an object of strings.")
    return value["url"], dict(meta), vd


def render(loc: ImageLocation) -> dict[str, Any]:
    return {"url": loc.url, "metadata": dict(loc.meta or {})}


# -- PATCH /locations ----------------------------------------------------------------------------
async def patch(session: AsyncSession, svc: ImageService, ctx: RequestContext, img: Image,
                tgt: dict[str, Any], op: str, path: list[str],
                value: Any) -> list[ImageLocation]:
    """One JSON-patch operation on /locations; returns locations whose data to delete."""
    if not svc.settings.show_multiple_locations:
        raise Forbidden("Image locations are managed by the image service in this cloud.")
    locs = await images.locations(session, img.id)
    if op == "remove":
        svc.enforce("image:delete_image_location", ctx, tgt)
        if len(path) != 2:
            raise BadRequest("Remove a location by its index: /locations/<n>.")
        index = _index(path[1], len(locs))
        if len(locs) == 1:
            raise Forbidden("Cannot remove last location in the image.")
        gone = locs[index]
        await session.delete(gone)
        return [gone]
    svc.enforce("image:set_image_location", ctx, tgt)
    if img.status not in ("queued", "active"):
        raise Conflict(f"Locations can be changed only on queued or active images (image "
                       f"{img.id} is {img.status}).")
    if op == "add":
        if len(path) != 2:
            raise BadRequest("Add a location at /locations/- or /locations/<n>.")
        _index(path[1], len(locs), allow_end=True)
        url, meta, vd = _location_value(value)
        await _add(session, svc, img, locs, url, meta, vd)
        return []
    # replace: the same URLs in the same order (metadata may change), or set on a queued image
    if len(path) != 1 or not isinstance(value, list):
        raise BadRequest("Replace /locations with a list of locations.")
    wanted = [_location_value(v) for v in value]
    if not locs:
        for url, meta, vd in wanted:
            await _add(session, svc, img, await images.locations(session, img.id), url, meta,
                       vd)
        return []
    if [u for u, _, _ in wanted] != [loc.url for loc in locs]:
        raise BadRequest("Locations can only be replaced with the same URLs; add or remove "
                         "them one at a time.")
    for loc, (_, meta, _) in zip(locs, wanted, strict=True):
        loc.meta = {**meta, "store": loc.store}
    return []


def _index(token: str, count: int, *, allow_end: bool = False) -> int:
    if token == "-" and allow_end:
        return count
    if not token.isdigit():
        raise BadRequest(f"Invalid location index {token!r}.")
    index = int(token)
    if index > count or (index == count and not allow_end):
        raise BadRequest(f"Location index {index} is out of range.")
    return index


async def _add(session: AsyncSession, svc: ImageService, img: Image, locs: list[ImageLocation],
               url: str, meta: dict[str, Any], vd: dict[str, str]) -> None:
    store = http_store(svc, url)
    if any(loc.url == url for loc in locs):
        raise BadRequest(f"Location {url} is already on image {img.id}.")
    _check_against(img, vd)  # a conflict with the image's hashes first (409), then the form
    vd = check_validation_data(vd)
    session.add(ImageLocation(image_id=img.id, store=store.id, url=url,
                              meta={**meta, "store": store.id}))
    for key, value in vd.items():
        setattr(img, key, value)
    if img.status == "queued":
        img.status = "active"


# -- v2.17: POST /v2/images/{id}/locations ------------------------------------------------
async def add(svc: ImageService, ctx: RequestContext, image_id: str, body: Any) -> str:
    """Record the location and start hashing its data; returns the task id."""
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request.")
    extra = set(body) - {"url", "validation_data"}
    if extra:
        raise BadRequest(f"Unknown keys: {', '.join(sorted(extra))}.")
    store = http_store(svc, body.get("url"))
    url: str = body["url"]
    vd = check_validation_data(body.get("validation_data"))
    async with svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, ctx, image_id, for_update=True)
        svc.enforce("image:add_image_location", ctx, tgt)
        if img.status != "queued":
            raise Conflict(f"Locations can be added only to queued images (image {img.id} is "
                           f"{img.status}).")
        if any(loc.url == url for loc in await images.locations(session, img.id)):
            raise BadRequest(f"Location {url} is already on image {img.id}.")
        session.add(ImageLocation(image_id=img.id, store=store.id, url=url,
                                  meta={"store": store.id}))
        await images.set_status(session, img.id, "importing", expect=["queued"])
        now = utcnow()
        task = ImageTask(id=new_uuid(), image_id=img.id, type="location_import",
                         status="processing", owner=ctx.project_id, user_id=ctx.user_id,
                         request_id=ctx.request_id, created_at=now, updated_at=now,
                         expires_at=now + timedelta(hours=48),
                         input={"image_id": img.id, "loc_url": url, "validation_data": vd})
        session.add(task)
    svc.spawn(_hash(svc, task.id, img.id, store, url, vd), name=f"image-location-{img.id}")
    return task.id


async def _hash(svc: ImageService, task_id: str, image_id: str, store: HttpStore, url: str,
                vd: dict[str, str]) -> None:
    algo = vd.get("os_hash_algo", "sha512")
    md5, digest, size = hashlib.md5(usedforsecurity=False), hashlib.new(algo), 0
    try:
        async for chunk in store.read(url):
            md5.update(chunk)
            digest.update(chunk)
            size += len(chunk)
    except StoreError as exc:
        await _finish(svc, task_id, image_id, None, f"Could not read {url}: {exc}")
        return
    got = {"checksum": md5.hexdigest(), "os_hash_algo": algo, "os_hash_value": digest.hexdigest()}
    bad = [k for k, v in vd.items() if got[k] != v.lower()]
    if bad:
        await _finish(svc, task_id, image_id, None,
                      f"The data at {url} does not match validation_data ({', '.join(bad)}).")
        return
    await _finish(svc, task_id, image_id, {**got, "size": size}, "")


async def _finish(svc: ImageService, task_id: str, image_id: str,
                  values: dict[str, Any] | None, message: str) -> None:
    async with svc.db.transaction() as session:
        if values is not None:
            ok = await images.set_status(session, image_id, "active", expect=["importing"],
                                         **values)
        else:
            ok = False
            await images.set_status(session, image_id, "queued", expect=["importing"])
        task = await session.get(ImageTask, task_id)
        if task is not None:
            task.status = "success" if ok else "failure"
            task.message = message or ("" if ok else "The image changed while it was hashed.")
            task.result = {"image_id": image_id} if ok else None
            task.updated_at = utcnow()
    if values is not None:
        await svc.notify("image.activate", {"id": image_id})


async def fetch(svc: ImageService, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
    async with svc.db.session() as session:
        img, tgt = await images.get_visible(session, ctx, image_id)
        svc.enforce("image:fetch_image_location", ctx, tgt)
        return [render(loc) for loc in await images.locations(session, img.id)]


async def shown(session: AsyncSession, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for loc in (await session.scalars(select(ImageLocation).where(
                ImageLocation.image_id.in_(ids)).order_by(ImageLocation.id))).all():
            out[loc.image_id].append(render(loc))
    return out

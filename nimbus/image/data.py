"""Image data: upload (PUT file), staging (PUT stage) and download (GET file).

An upload moves the image queued -> saving -> active. The bytes stream to a staging file
(constant memory, hashed on the way, cut off at the quota), are inspected there, and only then
handed to the store and recorded. Whatever goes wrong leaves no partial file: a client that
goes away or a quota overrun puts the image back to queued; data that fails inspection kills
it. A process that dies mid-upload leaves the image in saving; the cleanup puts it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_id
from nimbus.image import images, inspector, quotas
from nimbus.image.errors import Gone, bad_transition
from nimbus.image.models import Image, ImageLocation
from nimbus.image.staging import Staged, TooLarge, receive
from nimbus.image.stores import Store, StoreError
from nimbus.web.errors import ApiError, BadRequest, Forbidden

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)


class Disconnected(Exception):
    """The client went away before sending all the data."""


@dataclass
class Upload:
    image_id: str
    owner: str | None
    disk_format: str | None
    container_format: str | None
    limit: int
    room: int | None


def stage_path(svc: ImageService, image_id: str) -> Path:
    return svc.staging / f"{image_id}.staged"


def temp_path(svc: ImageService, image_id: str) -> Path:
    return svc.staging / f"{image_id}.{new_id()[:8]}.part"


def pick_store(svc: ImageService, store_id: str | None) -> Store:
    if store_id is None:
        return svc.default_store
    store = svc.stores.get(store_id)
    if store is None:
        raise BadRequest(f"Store for identifier {store_id} not found")
    if store.read_only:
        raise BadRequest(f"Store {store_id} is read-only")
    return store


async def _begin(svc: ImageService, ctx: RequestContext, image_id: str, *,
                 new_status: str, staging: bool) -> Upload:
    async with svc.db.transaction() as session:
        img, tgt = await images.get_visible(session, ctx, image_id)
        svc.enforce("image:upload_image", ctx, tgt)
        if img.status != "queued":
            if img.status == "deactivated":
                raise Forbidden("Not allowed to upload image data for a deactivated image.")
            raise bad_transition(img.status, new_status)
        if not staging and (not img.disk_format or not img.container_format):
            raise BadRequest("Properties disk_format, container_format must be set prior to "
                             "saving data.")
        await quotas.check_uploading(session, svc, img.owner)
        room = await quotas.room(session, svc, img.owner, staging=staging)
        limit = svc.settings.image_size_cap if room is None else min(
            room, svc.settings.image_size_cap)
        if not await images.set_status(session, img.id, new_status, expect=["queued"]):
            raise bad_transition(img.status, new_status)
        return Upload(img.id, img.owner, img.disk_format, img.container_format, limit, room)


async def revert(svc: ImageService, image_id: str, from_status: str, to: str = "queued",
                  **values: object) -> None:
    try:
        async with svc.db.transaction() as session:
            await images.set_status(session, image_id, to, expect=[from_status], **values)
    except Exception:  # the cleanup will get it later
        LOG.exception("could not put image %s back to %s", image_id, to)


async def _receive(svc: ImageService, up: Upload, chunks: AsyncIterator[bytes],
                   expected_size: int | None, status: str, *, staging: bool) -> Staged:
    if expected_size is not None and expected_size > up.limit:
        await revert(svc, up.image_id, status)
        raise quotas.too_large(svc, up.owner, expected_size, staging=staging)

    async def heartbeat() -> None:
        async with svc.db.transaction() as session:
            await images.touch(session, up.image_id)

    path = temp_path(svc, up.image_id)
    try:
        staged = await receive(chunks, path, limit=up.limit, fsync=svc.settings.fsync,
                               heartbeat=heartbeat,
                               heartbeat_every=svc.settings.stale_upload_seconds / 4)
    except TooLarge as exc:
        await revert(svc, up.image_id, status)
        if up.room is not None and exc.received > up.room:
            raise quotas.too_large(svc, up.owner, exc.received, staging=staging) from None
        raise quotas.too_large(svc, None, exc.received) from None
    except Disconnected:
        await revert(svc, up.image_id, status)
        raise BadRequest("The client disconnected before sending all the image data.") from None
    except BaseException:
        await revert(svc, up.image_id, status)
        raise
    if expected_size is not None and staged.size != expected_size:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await revert(svc, up.image_id, status)
        raise BadRequest(f"The uploaded data is {staged.size} bytes but "
                         f"x-openstack-image-size said {expected_size}.")
    return staged


async def check_format(svc: ImageService, path: Path, disk_format: str | None,
                       container_format: str | None) -> int | None:
    """The virtual size, or InspectionFailed."""
    insp = await asyncio.to_thread(inspector.inspect_file, path)
    return inspector.verdict(insp, disk_format, container_format,
                             require_match=svc.settings.require_format_match)


async def upload(svc: ImageService, ctx: RequestContext, image_id: str,
                 chunks: AsyncIterator[bytes], *, expected_size: int | None = None,
                 store_id: str | None = None) -> None:
    store = pick_store(svc, store_id)
    up = await _begin(svc, ctx, image_id, new_status="saving", staging=False)
    svc.busy.add(image_id)
    try:
        staged = await _receive(svc, up, chunks, expected_size, "saving", staging=False)
        try:
            virtual_size = await check_format(svc, staged.path, up.disk_format,
                                              up.container_format)
        except inspector.InspectionFailed as exc:
            await asyncio.to_thread(staged.path.unlink, missing_ok=True)
            await revert(svc, image_id, "saving", "killed")
            await svc.notify("image.upload", {"id": image_id, "status": "killed",
                                              "reason": str(exc)})
            raise BadRequest(str(exc)) from None
        except BaseException:
            await asyncio.to_thread(staged.path.unlink, missing_ok=True)
            await revert(svc, image_id, "saving")
            raise
        await store_and_activate(svc, up.image_id, up.owner, staged, virtual_size, [store],
                                 from_status="saving")
    finally:
        svc.busy.discard(image_id)
    await svc.notify("image.upload", {"id": image_id, "size": staged.size,
                                      "checksum": staged.checksum})
    await svc.notify("image.activate", {"id": image_id})


async def store_and_activate(svc: ImageService, image_id: str, owner: str | None,
                             staged: Staged, virtual_size: int | None, targets: list[Store], *,
                             from_status: str,
                             on_activate: Callable[[AsyncSession], Awaitable[None]] | None = None,
                             ) -> None:
    """Hand the staged file to the stores, then record it; undo the stores on any failure.

    on_activate runs in the activating transaction, so what it writes appears together with
    the active status (nobody sees an active image still marked as importing)."""
    added: list[tuple[Store, str]] = []
    try:
        for i, store in enumerate(targets):
            url = await store.add(image_id, staged.path, move=i == len(targets) - 1)
            added.append((store, url))
    except (StoreError, OSError) as exc:
        await discard(added)
        await asyncio.to_thread(staged.path.unlink, missing_ok=True)
        await revert(svc, image_id, from_status)
        raise ApiError(f"The store could not keep the image data: {exc}", status=503) from exc
    finally:
        # a store that moved the file took it; one that copied it leaves it for us to remove
        await asyncio.to_thread(staged.path.unlink, missing_ok=True)
    try:
        async with svc.db.transaction() as session:
            img = await session.get(Image, image_id)
            if img is None:
                raise Gone(f"Image {image_id} was deleted while its data was being saved.")
            if img.status != from_status:
                raise bad_transition(img.status, "active")
            room = await quotas.room(session, svc, owner, staging=False)
            if room is not None and staged.size > room + (img.size or 0):
                raise quotas.too_large(svc, owner, staged.size)
            await images.set_status(session, image_id, "active", expect=[from_status],
                                    size=staged.size, virtual_size=virtual_size,
                                    checksum=staged.checksum, os_hash_algo=staged.os_hash_algo,
                                    os_hash_value=staged.os_hash_value)
            session.add_all([ImageLocation(image_id=image_id, store=store.id, url=url,
                                           meta={"store": store.id}) for store, url in added])
            if on_activate is not None:
                await on_activate(session)
    except BaseException as exc:
        await discard(added)
        if not isinstance(exc, Gone):
            await revert(svc, image_id, from_status)
        raise


async def discard(added: list[tuple[Store, str]]) -> None:
    for store, url in added:
        try:
            await store.delete(url)
        except Exception:
            LOG.exception("could not delete %s from store %s", url, store.id)


async def stage(svc: ImageService, ctx: RequestContext, image_id: str,
                chunks: AsyncIterator[bytes], *, expected_size: int | None = None) -> None:
    if "glance-direct" not in svc.settings.import_methods:
        from nimbus.web.errors import NotFound

        raise NotFound("Image import is not enabled in this cloud.")
    up = await _begin(svc, ctx, image_id, new_status="uploading", staging=True)
    svc.busy.add(image_id)
    try:
        staged = await _receive(svc, up, chunks, expected_size, "uploading", staging=True)
        final = stage_path(svc, image_id)
        await asyncio.to_thread(staged.path.replace, final)
        async with svc.db.transaction() as session:
            img = await session.get(Image, image_id)
            if img is None or img.status != "uploading":
                await asyncio.to_thread(final.unlink, missing_ok=True)
                raise Gone(f"Image {image_id} was deleted while its data was being staged.")
            img.size = staged.size
            await images.touch(session, image_id)
    finally:
        svc.busy.discard(image_id)
    await svc.notify("image.prepare", {"id": image_id, "size": staged.size})


# -- download ----------------------------------------------------------------------------------
@dataclass
class Download:
    image: Image
    store: Store
    url: str


async def open_download(svc: ImageService, ctx: RequestContext,
                        image_id: str) -> Download | None:
    """Where to read the data from, or None when the image has none (204)."""
    async with svc.db.session() as session:
        img, tgt = await images.get_visible(session, ctx, image_id)
        svc.enforce("image:download_image", ctx, tgt)
        if img.status == "deactivated" and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download "
                            "is forbidden.")
        if img.status not in ("active", "deactivated"):
            return None
        locs = await images.locations(session, img.id)
    for loc in locs:
        store = svc.stores.get(loc.store)
        if store is not None:
            return Download(img, store, loc.url)
    if locs:
        raise ApiError("The image data is in a store this cloud no longer has.", status=503)
    return None

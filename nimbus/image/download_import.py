"""glance-download: fill a queued image with the data and some properties of an image of a
Glance region. This cloud has one region, so the source is an image of this very service, read
with the importing user's rights; another region or an unknown interface fails the task."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.image import data, images, imports
from nimbus.image.models import Image, ImageProperty
from nimbus.image.staging import copy_stream, hash_file
from nimbus.image.stores import Store

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)
# What Glance copies by default (glance_download_properties).
COPIED = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
INTERFACES = ("public", "internal", "admin")


class Failed(Exception):
    pass


async def run(svc: ImageService, ctx: RequestContext, task_id: str, image_id: str,
              method: dict[str, Any], targets: list[Store]) -> None:
    svc.busy.add(image_id)
    try:
        await imports.task_state(svc, task_id, "processing")
        await _download(svc, ctx, image_id, method, targets)
    except asyncio.CancelledError:
        await _fail(svc, task_id, image_id, targets, "The import was interrupted.")
        raise
    except Exception as exc:
        if not isinstance(exc, Failed):
            LOG.exception("glance-download of image %s failed", image_id)
        await _fail(svc, task_id, image_id, targets, str(exc))
    else:
        await imports.task_state(svc, task_id, "success", result={"image_id": image_id})
        await svc.notify("image.import", {"id": image_id, "stores": [s.id for s in targets]})
        await svc.notify("image.activate", {"id": image_id})
    finally:
        svc.busy.discard(image_id)


async def _download(svc: ImageService, ctx: RequestContext, image_id: str,
                    method: dict[str, Any], targets: list[Store]) -> None:
    region = method.get("glance_region") or svc.cloud.settings.region
    interface = method.get("glance_service_interface") or "public"
    if region != svc.cloud.settings.region or interface not in INTERFACES:
        raise Failed(f"No image service in region {region!r} at interface {interface!r}.")
    source_id = method["glance_image_id"]
    async with svc.db.session() as session:
        dst = await session.get(Image, image_id)
        if dst is None:
            raise Failed(f"Image {image_id} was deleted.")
        owner = dst.owner
        try:
            src, tgt = await images.get_visible(session, ctx, source_id)
            svc.enforce("image:download_image", ctx, tgt)
        except Exception as exc:
            raise Failed(f"Image {source_id} is not available in region {region}.") from exc
        if src.status != "active":
            raise Failed(f"Image {source_id} is {src.status}, not active.")
        props = {n: v for n, v in await session.execute(
            select(ImageProperty.name, ImageProperty.value).where(
                ImageProperty.image_id == src.id))}
        locs = await images.locations(session, src.id)
        formats = {"disk_format": src.disk_format, "container_format": src.container_format}
        virtual_size = src.virtual_size
    source = next(((svc.stores[loc.store], loc.url) for loc in locs
                   if loc.store in svc.stores), None)
    if source is None:
        raise Failed(f"Image {source_id} has no readable data.")
    tmp = data.temp_path(svc, image_id)
    try:
        await copy_stream(source[0].read(source[1]), tmp)
        staged = await hash_file(tmp)
    except BaseException:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        raise
    copied = {k: v for k, v in props.items() if k.startswith(COPIED)}

    async def activate(session: AsyncSession) -> None:
        await imports.set_props(session, image_id, {**copied, imports.IMPORTING: "",
                                                    imports.FAILED: ""})
        await session.execute(update(Image).where(Image.id == image_id).values(**formats)
                              .execution_options(synchronize_session=False))

    await data.store_and_activate(svc, image_id, owner, staged, virtual_size, targets,
                                  from_status="importing", on_activate=activate)


async def _fail(svc: ImageService, task_id: str, image_id: str, targets: list[Store],
                message: str) -> None:
    await data.revert(svc, image_id, "importing")
    try:
        async with svc.db.transaction() as session:
            if await session.get(Image, image_id) is not None:
                await imports.set_props(session, image_id, {
                    imports.IMPORTING: "", imports.FAILED: ",".join(s.id for s in targets)})
    except Exception:
        LOG.exception("could not record the failed import of image %s", image_id)
    await imports.task_state(svc, task_id, "failure", message)

"""Registering the cloud's own guest images at start: `nimbus up` (and so `make up`) makes any
disk image found at image.bootstrap_image or in <state_dir>/guest-images/ a public image,
named after the file, unless an active public image of that name is already there. In the
background, so the start stays quick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from nimbus.common.context import RequestContext
from nimbus.image import data, images, inspector
from nimbus.image.models import Image, ImageProperty
from nimbus.image.staging import receive

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)
SUFFIXES = (".qcow2", ".raw", ".img", ".iso", ".vmdk", ".vhd", ".vhdx", ".vdi")
MARK = "nimbus_bootstrap"


def candidates(svc: ImageService) -> list[Path]:
    found = []
    if svc.settings.bootstrap_image is not None:
        found.append(svc.settings.bootstrap_image)
    folder = svc.cloud.settings.state_dir / "guest-images"
    if folder.is_dir():
        found += sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return found


async def register_all(svc: ImageService) -> list[str]:
    """The ids of the images registered now."""
    paths = await asyncio.to_thread(candidates, svc)
    made = []
    for path in paths:
        try:
            image_id = await register(svc, path)
        except Exception:
            LOG.exception("could not register the guest image %s", path)
            continue
        if image_id:
            made.append(image_id)
    return made


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, 4 << 20):
            yield chunk
    finally:
        fh.close()


async def register(svc: ImageService, path: Path) -> str | None:
    if not await asyncio.to_thread(path.is_file):
        return None
    name = path.stem
    async with svc.db.session() as session:
        # whoever registered it (an earlier start, or `nimbus image build-test`), once is enough
        if await session.scalar(select(Image.id).where(Image.name == name,
                                                       Image.visibility == "public",
                                                       Image.status == "active")):
            return None
    insp = await asyncio.to_thread(inspector.inspect_file, path)
    disk_format = insp.format if insp.format in images.DISK_FORMATS else "raw"
    ctx = RequestContext.admin()
    async with svc.db.transaction() as session:
        img = await images.create(session, svc, ctx, {
            "name": name, "disk_format": disk_format, "container_format": "bare",
            "visibility": "public"})
        session.add(ImageProperty(image_id=img.id, name=MARK, value="true"))
        await images.set_status(session, img.id, "saving", expect=["queued"])
    staged = await receive(_file_chunks(path), data.temp_path(svc, img.id),
                           limit=svc.settings.image_size_cap)
    try:
        virtual_size = await data.check_format(svc, staged.path, disk_format, "bare")
    except inspector.InspectionFailed:
        await asyncio.to_thread(staged.path.unlink, missing_ok=True)
        await data.revert(svc, img.id, "saving", "killed")
        raise
    await data.store_and_activate(svc, img.id, None, staged, virtual_size, [svc.default_store],
                                  from_status="saving")
    LOG.warning("registered guest image %s (%s) from %s", name, img.id, path)
    return img.id

"""Registering the cloud's own guest images at start: `nimbus up` (and so `make up`) makes any
disk image found at image.bootstrap_image or in <state_dir>/guest-images/ a public image,
named after the file, unless an active public image of that name is already there. In the
background, so the start stays quick.

When the image's build manifest (<file>.json, from `nimbus image build-test`) names a kernel
and a ramdisk beside it, those become the public aki and ari images `<name>-kernel` and
`<name>-ramdisk`, and the disk image gets kernel_id, ramdisk_id and os_command_line: compute
boots it directly from them, as upstream does with such images."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def direct_boot(path: Path) -> dict[str, Any] | None:
    """The manifest's direct_boot part when its kernel and ramdisk files are there."""
    try:
        manifest = json.loads(path.with_name(path.name + ".json").read_text())
    except (OSError, ValueError):
        return None
    direct = manifest.get("direct_boot") if isinstance(manifest, dict) else None
    if not isinstance(direct, dict):
        return None
    for key in ("kernel", "ramdisk"):
        part = direct.get(key)
        if not isinstance(part, dict) or not (path.parent / str(part.get("file"))).is_file():
            return None
    return direct


async def _registered(svc: ImageService, name: str) -> str | None:
    async with svc.db.session() as session:
        found: str | None = await session.scalar(select(Image.id).where(
            Image.name == name, Image.visibility == "public", Image.status == "active"))
        return found


async def register(svc: ImageService, path: Path) -> str | None:
    if not await asyncio.to_thread(path.is_file):
        return None
    name = path.stem
    # whoever registered it (an earlier start, or `nimbus image build-test`), once is enough
    if await _registered(svc, name):
        return None
    props: dict[str, str] = {}
    direct = await asyncio.to_thread(direct_boot, path)
    if direct is not None:
        kernel = await _registered(svc, f"{name}-kernel") or await _upload(
            svc, path.parent / direct["kernel"]["file"], f"{name}-kernel", "aki", {})
        ramdisk = await _registered(svc, f"{name}-ramdisk") or await _upload(
            svc, path.parent / direct["ramdisk"]["file"], f"{name}-ramdisk", "ari", {})
        props = {"kernel_id": kernel, "ramdisk_id": ramdisk,
                 "os_command_line": str(direct.get("cmdline") or "")}
    insp = await asyncio.to_thread(inspector.inspect_file, path)
    disk_format = insp.format if insp.format in images.DISK_FORMATS else "raw"
    return await _upload(svc, path, name, disk_format, props)


async def _upload(svc: ImageService, path: Path, name: str, disk_format: str,
                  props: dict[str, str]) -> str:
    container_format = disk_format if disk_format in ("aki", "ari") else "bare"
    ctx = RequestContext.admin()
    async with svc.db.transaction() as session:
        img = await images.create(session, svc, ctx, {
            "name": name, "disk_format": disk_format, "container_format": container_format,
            "visibility": "public"})
        for key, value in {MARK: "true", **props}.items():
            session.add(ImageProperty(image_id=img.id, name=key, value=value))
        await images.set_status(session, img.id, "saving", expect=["queued"])
    staged = await receive(_file_chunks(path), data.temp_path(svc, img.id),
                           limit=svc.settings.image_size_cap)
    try:
        virtual_size = await data.check_format(svc, staged.path, disk_format,
                                               container_format)
    except inspector.InspectionFailed:
        await asyncio.to_thread(staged.path.unlink, missing_ok=True)
        await data.revert(svc, img.id, "saving", "killed")
        raise
    await data.store_and_activate(svc, img.id, None, staged, virtual_size, [svc.default_store],
                                  from_status="saving")
    LOG.warning("registered guest image %s (%s) from %s", name, img.id, path)
    img_id: str = img.id
    return img_id

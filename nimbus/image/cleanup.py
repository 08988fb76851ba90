"""The janitor: no image stays in saving or importing after its uploader is gone, and no
partial file stays in the staging area.

Live uploads and imports refresh their image's updated_at every stale_upload_seconds / 4, so an
image in flight that has not been touched for stale_upload_seconds has lost its process: it
goes back to queued (or to uploading, when its staged data is still there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from nimbus.common.timeutils import utcnow
from nimbus.image import images
from nimbus.image.models import Image, ImageProperty, ImageTask

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)


async def periodic(svc: ImageService) -> None:
    while True:
        await asyncio.sleep(svc.settings.cleanup_interval)
        try:
            await run_once(svc)
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.exception("image cleanup failed")


async def run_once(svc: ImageService, *, startup: bool = False) -> list[str]:
    """Returns the ids of the images it put back."""
    cutoff = utcnow() - timedelta(seconds=svc.settings.stale_upload_seconds)
    reverted: list[str] = []
    async with svc.db.transaction() as session:
        stale = (await session.scalars(select(Image).where(
            Image.status.in_(("saving", "importing", "uploading")),
            Image.updated_at < cutoff))).all()
        for img in stale:
            if img.id in svc.busy:
                continue
            staged = await asyncio.to_thread(_stage_file(svc, img.id).exists)
            if img.status == "uploading" and staged:
                continue  # staged and waiting for its import call: nothing is lost
            new = "uploading" if img.status == "importing" and staged else "queued"
            await images.set_status(session, img.id, new, expect=[img.status],
                                    **({"size": None} if new == "queued" else {}))
            for prop in await session.scalars(select(ImageProperty).where(
                    ImageProperty.image_id == img.id,
                    ImageProperty.name == "os_glance_importing_to_stores")):
                prop.value = ""
            reverted.append(img.id)
        tasks = (await session.scalars(select(ImageTask).where(
            ImageTask.status.in_(("pending", "processing")), ImageTask.updated_at < cutoff))).all()
        for task in tasks:
            if task.image_id not in svc.busy:
                task.status, task.message = "failure", "The import was interrupted."
                task.updated_at = utcnow()
    if reverted:
        LOG.warning("put %d stale images back: %s", len(reverted), ", ".join(reverted))
    await _sweep_staging(svc, min(60, svc.settings.stale_upload_seconds) if startup
                         else svc.settings.stale_upload_seconds)
    return reverted


def _stage_file(svc: ImageService, image_id: str) -> Path:
    return svc.staging / f"{image_id}.staged"


async def _sweep_staging(svc: ImageService, min_age: float) -> None:
    """Partial files nobody writes any more, and staged data of images that are gone."""
    now = time.time()
    entries = await asyncio.to_thread(lambda: list(os.scandir(svc.staging)))
    staged_ids = [e.name[:-len(".staged")] for e in entries if e.name.endswith(".staged")]
    wanted: set[str] = set()
    if staged_ids:
        async with svc.db.session() as session:
            wanted = set((await session.scalars(select(Image.id).where(
                Image.id.in_(staged_ids), Image.status.in_(("uploading", "importing"))))).all())
    for entry in entries:
        image_id = entry.name.split(".", 1)[0]
        if image_id in svc.busy:
            continue
        with contextlib.suppress(OSError):
            age = now - entry.stat().st_mtime
            if entry.name.endswith(".part") and age >= min_age:
                await asyncio.to_thread(os.unlink, entry.path)
            elif entry.name.endswith(".staged") and image_id not in wanted \
                    and age >= svc.settings.cleanup_interval:
                await asyncio.to_thread(os.unlink, entry.path)

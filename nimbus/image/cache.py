"""This node's image cache (Glance's image cache, v2.14 /v2/cache): whole images copied from
their store to local disk, queued by an admin and filled in the background. The cache is per
process and per node, as Glance's is per API node; downloads do not read from it yet."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import utcnow
from nimbus.image import images
from nimbus.image.staging import copy_stream
from nimbus.image.stores import StoreError
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

LOG = logging.getLogger(__name__)
TARGETS = ("", "cache", "queue")


class ImageCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.queued: dict[str, None] = {}  # insertion-ordered set
        self.filling: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def _path(self, image_id: str) -> Path:
        return self.root / image_id

    async def listing(self) -> dict[str, Any]:
        def _scan() -> list[dict[str, Any]]:
            out = []
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                if not entry.is_file() or entry.name.startswith("."):
                    continue
                st = entry.stat()
                out.append({"image_id": entry.name, "hits": 0, "size": st.st_size,
                            "last_accessed": st.st_atime, "last_modified": st.st_mtime})
            return out

        cached = await asyncio.to_thread(_scan)
        return {"cached_images": cached, "queued_images": list(self.queued)}

    async def queue(self, svc: ImageService, ctx: RequestContext, image_id: str) -> None:
        async with svc.db.session() as session:
            img, _ = await images.get_visible(session, ctx, image_id)
            if img.status != "active":
                raise BadRequest(f"Only images with status active can be targeted for "
                                 f"queueing (image {image_id} is {img.status}).")
            locs = await images.locations(session, img.id)
        source = next(((svc.stores[loc.store], loc.url) for loc in locs
                       if loc.store in svc.stores), None)
        if source is None:
            raise BadRequest(f"Image {image_id} has no data this node can read.")
        if image_id in self.queued or image_id in self.filling:
            return
        if await asyncio.to_thread(self._path(image_id).is_file):
            return
        self.queued[image_id] = None
        self.filling[image_id] = svc.spawn(self._fill(image_id, *source),
                                           name=f"image-cache-{image_id}")

    async def _fill(self, image_id: str, store: Any, url: str) -> None:
        tmp = self.root / f".{image_id}.{utcnow().timestamp():.0f}.part"
        try:
            await copy_stream(store.read(url), tmp)
            if image_id in self.queued:  # not cleared meanwhile
                await asyncio.to_thread(tmp.replace, self._path(image_id))
        except (StoreError, OSError):
            LOG.warning("could not cache image %s", image_id, exc_info=True)
        finally:
            self.queued.pop(image_id, None)
            self.filling.pop(image_id, None)
            await asyncio.to_thread(tmp.unlink, missing_ok=True)

    async def delete(self, image_id: str) -> None:
        self.queued.pop(image_id, None)
        task = self.filling.pop(image_id, None)
        if task is not None:
            task.cancel()
        await asyncio.to_thread(self._path(image_id).unlink, missing_ok=True)

    async def clear(self, target: str) -> None:
        if target not in TARGETS:
            raise BadRequest(f"Invalid x-image-cache-clear-target {target!r}: use 'cache', "
                             "'queue' or nothing for both.")
        if target in ("", "queue"):
            for image_id in list(self.queued):
                self.queued.pop(image_id, None)
                task = self.filling.pop(image_id, None)
                if task is not None:
                    task.cancel()
        if target in ("", "cache"):
            def _wipe() -> None:
                for entry in os.scandir(self.root):
                    if entry.is_file() and not entry.name.startswith("."):
                        os.unlink(entry.path)

            await asyncio.to_thread(_wipe)

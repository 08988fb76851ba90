"""Images on the compute host for drivers that boot from local files (qemu): each image is
downloaded once per host from the image service into the driver's cache folder
(`<instances_path>/_base/<image id>`), into a temporary file renamed into place when its
checksum matched, one download per image at a time."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.clients.image import ImageClient
from nimbus.compute import lifecycle

if TYPE_CHECKING:
    from nimbus.cloud import Cloud
    from nimbus.compute.agent.host import HostAgent

LOG = logging.getLogger(__name__)


BOOT_IMAGES = ("kernel_id", "ramdisk_id")


class ImageCacheError(Exception):
    pass


class ImageCache:
    def __init__(self, cloud: Cloud, path: Path) -> None:
        self.cloud = cloud
        self.path = path
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, image_id: str) -> Path:
        """The image's file, downloaded first unless it is already here."""
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise ImageCacheError(f"invalid image id {image_id!r}")
        target = self.path / image_id
        lock = self._locks.setdefault(image_id, asyncio.Lock())
        async with lock:
            if await asyncio.to_thread(target.exists):
                return target
            await self._download(image_id, target)
            return target

    async def _download(self, image_id: str, target: Path) -> None:
        if not lifecycle.has_service(self.cloud, "image"):
            raise ImageCacheError("the image service is not available")
        client = self.cloud.clients.get(ImageClient)
        image = await client.get(image_id)
        if image is None:
            raise ImageCacheError(f"Image {image_id} could not be found.")
        if image.get("status") != "active":
            raise ImageCacheError(f"Image {image_id} is not active ({image.get('status')})")
        algo = image.get("os_hash_algo") or "sha512"
        expected = image.get("os_hash_value")
        try:
            hasher = hashlib.new(algo) if expected else None
        except ValueError:
            hasher = None
        md5 = hashlib.md5(usedforsecurity=False) if image.get("checksum") else None
        await asyncio.to_thread(self.path.mkdir, parents=True, exist_ok=True)
        part = self.path / f".{image_id}.{uuidlib.uuid4().hex[:8]}.part"
        size = 0
        try:
            with part.open("wb") as f:
                async for chunk in client.download(image_id):
                    size += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    if md5 is not None:
                        md5.update(chunk)
                    await asyncio.to_thread(f.write, chunk)
                await asyncio.to_thread(os.fsync, f.fileno())
            if image.get("size") is not None and size != int(image["size"]):
                raise ImageCacheError(f"Image {image_id}: got {size} bytes, expected "
                                      f"{image['size']}")
            if hasher is not None and hasher.hexdigest() != expected:
                raise ImageCacheError(f"Image {image_id}: {algo} checksum mismatch")
            if md5 is not None and md5.hexdigest() != image["checksum"]:
                raise ImageCacheError(f"Image {image_id}: checksum mismatch")
            os.replace(part, target)
        except ImageCacheError:
            raise
        except Exception as exc:
            raise ImageCacheError(f"Image {image_id} could not be downloaded: {exc}") from exc
        finally:
            part.unlink(missing_ok=True)
        LOG.info("image %s cached in %s (%d bytes)", image_id, target, size)


def cache_for(agent: HostAgent) -> ImageCache | None:
    """The cache of the agent's driver's folder (shared by the hosts of this process that
    use the same folder), or None when the driver needs no image data."""
    driver = agent.driver
    if not driver.needs_image_data or driver.image_cache_path is None:
        return None
    caches: dict[Path, ImageCache] = agent.manager.image_caches
    cache = caches.get(driver.image_cache_path)
    if cache is None:
        cache = caches[driver.image_cache_path] = ImageCache(agent.cloud,
                                                             driver.image_cache_path)
    return cache


async def image_path(agent: HostAgent, instance: dict[str, Any],
                     image_meta: dict[str, Any] | None = None) -> str | None:
    """The local file of the image to boot `instance` from (`image_meta`, else the
    instance's own image), when the driver wants one; None otherwise."""
    cache = cache_for(agent)
    if cache is None:
        return None
    meta = image_meta if image_meta and image_meta.get("id") else \
        instance.get("image_meta") or {}
    image_id = meta.get("id") or instance.get("image_ref")
    if not image_id:
        return None
    # An image booted straight from a kernel and ramdisk (kernel_id, ramdisk_id): the driver
    # finds those beside it in the cache.
    props = meta.get("properties") or {}
    for key in BOOT_IMAGES:
        if props.get(key):
            await cache.fetch(str(props[key]))
    return str(await cache.fetch(str(image_id)))

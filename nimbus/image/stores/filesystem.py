"""The filesystem store: one file per image under the store's folder."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from nimbus.common.settings import ImageStoreSettings
from nimbus.image.stores import StoreError

# Just under 1 MiB: nimbus pins glibc's mmap threshold at 1 MiB, and a chunk served from mmap
# would cost 256 page faults (and zeroing) every time.
READ_CHUNK = (1 << 20) - (64 << 10)


class FilesystemStore:
    type = "file"

    def __init__(self, store_id: str, conf: ImageStoreSettings, root: Path) -> None:
        self.id = store_id
        self.description = conf.description
        self.read_only = conf.read_only
        self.weight = conf.weight
        self.root = root.resolve()

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def _path(self, url: str) -> Path:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise StoreError(f"store {self.id}: not a file location: {url}")
        path = Path(unquote(parsed.path)).resolve()
        if path.parent != self.root:
            raise StoreError(f"store {self.id}: location outside the store: {url}")
        return path

    async def add(self, image_id: str, source: Path, *, move: bool) -> str:
        if self.read_only:
            raise StoreError(f"store {self.id} is read-only")
        dest = self.root / image_id

        def _add() -> None:
            if move:
                try:
                    os.replace(source, dest)
                    return
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
            tmp = dest.with_name(f".{image_id}.part")
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
            if move:
                source.unlink(missing_ok=True)

        await asyncio.to_thread(_add)
        return dest.as_uri()

    async def read(self, url: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
        path = self._path(url)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise StoreError(f"store {self.id}: no data at {url}") from exc
        try:
            end = None if length is None else offset + length
            pos = offset
            while end is None or pos < end:
                want = chunk_size if end is None else min(chunk_size, end - pos)
                chunk = await asyncio.to_thread(os.pread, fd, want, pos)
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, url: str) -> None:
        path = self._path(url)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def exists(self, url: str) -> bool:
        return await asyncio.to_thread(self._path(url).is_file)

    def properties(self) -> dict[str, object]:
        return {"data_dir": str(self.root), "chunk_size": 1 << 20, "thin_provisioning": False}

"""Where image data lives. A store takes a finished local file (uploads and imports are staged
on local disk first: hashed, size-checked and inspected there), gives it back in ranges, and
forgets it. The filesystem store is the default; object storage and RBD plug in here later."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from nimbus.common.settings import ImageSettings, ImageStoreSettings


class StoreError(Exception):
    pass


class Store(Protocol):
    id: str
    description: str
    read_only: bool
    weight: int
    type: str

    async def start(self) -> None: ...

    async def add(self, image_id: str, source: Path, *, move: bool) -> str:
        """Keep the data of `source` for an image; returns the location URL. With `move`, the
        store may take the file itself (a rename on the same filesystem)."""

    def read(self, url: str, offset: int = 0, length: int | None = None,
             chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length) of the data at `url`."""

    async def delete(self, url: str) -> None:
        """Forget the data; missing data is not an error."""

    async def exists(self, url: str) -> bool: ...

    def properties(self) -> dict[str, object]:
        """What /v2/info/stores/detail shows about this store."""


def build_stores(settings: ImageSettings, state_dir: Path) -> dict[str, Store]:
    stores: dict[str, Store] = {}
    for store_id, conf in settings.stores.items():
        stores[store_id] = _build(store_id, conf, state_dir)
    if settings.default_store not in stores:
        raise ValueError(f"image.default_store {settings.default_store!r} is not one of the "
                         f"configured stores ({', '.join(stores)})")
    return stores


def _build(store_id: str, conf: ImageStoreSettings, state_dir: Path) -> Store:
    if conf.type == "file":
        from nimbus.image.stores.filesystem import FilesystemStore

        return FilesystemStore(store_id, conf, conf.path or state_dir / "images" / store_id)
    if conf.type == "http":
        from nimbus.image.stores.http import HttpStore

        return HttpStore(store_id, conf)
    raise ValueError(f"image store {store_id!r}: unknown type {conf.type!r} "
                     "(known: file, http)")

"""The http store: read-only image data that lives at http(s) URLs (Glance's http store). Users
add such URLs as locations; only hosts the operator lists in allowed_hosts pass the filter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlparse

import httpx

from nimbus.common.settings import ImageStoreSettings
from nimbus.image.stores import StoreError

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class HttpStore:
    type = "http"

    def __init__(self, store_id: str, conf: ImageStoreSettings) -> None:
        self.id = store_id
        self.description = conf.description
        self.read_only = True
        self.weight = conf.weight
        self.allowed_hosts = {h.lower() for h in conf.allowed_hosts}

    async def start(self) -> None:
        return None

    def accepts(self, url: str) -> bool:
        """Whether `url` is an http(s) URL on one of the allowed hosts."""
        try:
            parsed = urlparse(url)
            port = parsed.port
        except ValueError:
            return False
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return False
        host = parsed.hostname.lower()
        port = port or (443 if parsed.scheme == "https" else 80)
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts

    async def add(self, image_id: str, source: object, *, move: bool) -> str:
        raise StoreError(f"store {self.id} is read-only")

    async def read(self, url: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        if not self.accepts(url):
            raise StoreError(f"store {self.id}: {url} does not pass filtering")
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            try:
                async with client.stream("GET", url.split("#", 1)[0],
                                         headers=headers) as resp:
                    if resp.status_code not in (200, 206):
                        raise StoreError(f"store {self.id}: {url} answered "
                                         f"{resp.status_code}")
                    skip = offset if (offset and resp.status_code == 200) else 0
                    left = length
                    async for chunk in resp.aiter_bytes(chunk_size):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                        if left is not None:
                            chunk = chunk[:left]
                            left -= len(chunk)
                        if chunk:
                            yield chunk
                        if left == 0:
                            break
            except httpx.HTTPError as exc:
                raise StoreError(f"store {self.id}: cannot read {url}: {exc}") from exc

    async def delete(self, url: str) -> None:
        return None  # the data is not ours to delete

    async def exists(self, url: str) -> bool:
        return self.accepts(url)

    def properties(self) -> dict[str, object]:
        return {"allowed_hosts": sorted(self.allowed_hosts)}

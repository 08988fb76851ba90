"""Streaming image data to a local staging file in constant memory.

The request body arrives in small chunks; they gather (without copying) into blocks of a few
MiB, and each block is hashed (md5 on one thread, sha512 on another: hashlib releases the GIL)
and written with writev while the next block is being received. At most two blocks are in
memory, whatever the image size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 4 << 20


@dataclass
class Staged:
    path: Path
    size: int
    checksum: str
    os_hash_value: str
    os_hash_algo: str = "sha512"


class TooLarge(Exception):
    """More data than the quota or the size cap allows."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def writev_all(fd: int, chunks: list[bytes]) -> None:
    """Write the chunks in order without joining them (at most IOV_MAX at a time)."""
    for start in range(0, len(chunks), 512):
        group = chunks[start:start + 512]
        written = os.writev(fd, group)
        if written < sum(len(c) for c in group):  # a short write: finish the slow way
            rest = b"".join(group)[written:]
            write_all(fd, rest)


async def receive(chunks: AsyncIterator[bytes], path: Path, *, limit: int,
                  fsync: bool = False, heartbeat: Callable[[], Awaitable[None]] | None = None,
                  heartbeat_every: float = 60.0) -> Staged:
    """Write `chunks` to `path` (which must not exist), hashing as it goes; TooLarge as soon
    as more than `limit` bytes arrive. On any failure the file is gone."""
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha512()

    def _md5(block: list[bytes]) -> None:
        for piece in block:
            md5.update(piece)

    def _sha_and_write(block: list[bytes]) -> None:
        for piece in block:
            sha.update(piece)
        writev_all(fd, block)

    def _dispatch(block: list[bytes]) -> asyncio.Future[Any]:
        return asyncio.gather(asyncio.to_thread(_md5, block),
                              asyncio.to_thread(_sha_and_write, block))

    pending: asyncio.Future[Any] | None = None
    block: list[bytes] = []
    block_size = 0
    size = 0
    next_beat = time.monotonic() + heartbeat_every
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise TooLarge(size)
            block.append(chunk)
            block_size += len(chunk)
            if block_size >= BLOCK:
                if pending is not None:
                    await pending
                pending = _dispatch(block)
                block, block_size = [], 0
                if heartbeat is not None and time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + heartbeat_every
                    await heartbeat()
        if pending is not None:
            await pending
            pending = None
        if block:
            await _dispatch(block)
        if fsync:
            await asyncio.to_thread(os.fsync, fd)
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        os.close(fd)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    os.close(fd)
    return Staged(path, size, md5.hexdigest(), sha.hexdigest())


async def hash_file(path: Path) -> Staged:
    """Hashes of a file already on disk (a staged import), read in blocks."""

    def _hash() -> Staged:
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha512()
        size = 0
        with open(path, "rb", buffering=0) as fh:
            while True:
                block = fh.read(BLOCK)
                if not block:
                    break
                size += len(block)
                md5.update(block)
                sha.update(block)
        return Staged(path, size, md5.hexdigest(), sha.hexdigest())

    return await asyncio.to_thread(_hash)


async def copy_stream(chunks: AsyncIterator[bytes], path: Path) -> int:
    """Write chunks from a store to a local file (copy-image)."""
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            await asyncio.to_thread(write_all, fd, chunk)
    except BaseException:
        os.close(fd)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    os.close(fd)
    return size

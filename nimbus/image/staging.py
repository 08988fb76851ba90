"""Streaming image data to a local staging file in constant memory.

The request body arrives in chunks of up to 256 KiB; they gather (without copying) into blocks of
a few MiB, and each block goes to three threads of the upload's own: md5, sha512 (hashlib
releases the GIL) and the writev to the file, each taking the blocks in order while the next
ones are being received. At most DEPTH + 1 blocks are in memory, whatever the image size.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 4 << 20
# Blocks handed to the lanes and not done yet, besides the one being received: enough for
# each lane to keep working while another waits for a core (the machine is shared), at
# most (DEPTH + 1) * BLOCK of image data in memory.
DEPTH = 3


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


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
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


class _Lanes:
    """md5, sha512 and the write of the blocks, each on a thread of its own taking the blocks
    in order, so that none waits for the others (the slowest, sha512, sets the pace)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha = hashlib.sha512()
        self._threads: list[ThreadPoolExecutor] = []
        self._inflight: deque[asyncio.Future[Any]] = deque()

    def _md5(self, block: list[bytes]) -> None:
        for piece in block:
            self.md5.update(piece)

    def _sha(self, block: list[bytes]) -> None:
        for piece in block:
            self.sha.update(piece)

    def _write(self, block: list[bytes]) -> None:
        writev_all(self.fd, block)

    def _all(self, block: list[bytes]) -> None:
        self._md5(block)
        self._sha(block)
        self._write(block)

    async def add(self, block: list[bytes]) -> None:
        """Hand a block over; waits while DEPTH blocks are still being worked on."""
        if not self._threads:
            self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"image-{name}")
                             for name in ("md5", "sha512", "write")]
        while len(self._inflight) >= DEPTH:
            await self._inflight[0]
            self._inflight.popleft()
        jobs = (self._md5, self._sha, self._write)
        self._inflight.append(asyncio.gather(*(
            asyncio.wrap_future(thread.submit(job, block))
            for thread, job in zip(self._threads, jobs, strict=True))))

    async def finish(self, last: list[bytes]) -> None:
        """The last block (maybe short or empty); returns when everything is written."""
        if not self._threads:  # a small image: no threads of its own
            await asyncio.to_thread(self._all, last)
            return
        if last:
            await self.add(last)
        while self._inflight:
            await self._inflight[0]
            self._inflight.popleft()

    async def stop(self) -> None:
        """Drop what is queued and wait for what is running (nothing touches fd after)."""
        threads, self._threads = self._threads, []
        if threads:
            await asyncio.to_thread(_shutdown, threads)
        if self._inflight:  # all settled by now: collect their errors (nobody else will)
            await asyncio.gather(*self._inflight, return_exceptions=True)
            self._inflight.clear()


def _shutdown(threads: list[ThreadPoolExecutor]) -> None:
    for thread in threads:
        thread.shutdown(wait=True, cancel_futures=True)


async def receive(chunks: AsyncIterator[bytes], path: Path, *, limit: int,
                  fsync: bool = False, heartbeat: Callable[[], Awaitable[None]] | None = None,
                  heartbeat_every: float = 60.0) -> Staged:
    """Write `chunks` to `path` (which must not exist), hashing as it goes; TooLarge as soon
    as more than `limit` bytes arrive. On any failure the file is gone."""
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    lanes = _Lanes(fd)
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
                await lanes.add(block)
                block, block_size = [], 0
                if heartbeat is not None and time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + heartbeat_every
                    await heartbeat()
        await lanes.finish(block)
        if fsync:
            await asyncio.to_thread(os.fsync, fd)
    except BaseException:
        await lanes.stop()
        os.close(fd)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    await lanes.stop()
    os.close(fd)
    return Staged(path, size, lanes.md5.hexdigest(), lanes.sha.hexdigest())


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

"""Password and secret hashing: argon2id at or above OWASP's minimum, run off the event loop.

argon2-cffi releases the GIL while hashing, so a small thread pool uses both cores.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nimbus.common.settings import IdentitySettings


class Hasher:
    def __init__(self, settings: IdentitySettings, workers: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")

    async def hash(self, secret: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._hasher.hash, secret)

    async def verify(self, hashed: str | None, secret: str) -> bool:
        if not hashed:
            return False
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._verify, hashed, secret)

    def _verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

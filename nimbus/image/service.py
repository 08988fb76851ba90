"""The image service: Glance v2 behind nimbus' platform."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from nimbus.common.context import RequestContext
from nimbus.common.policy import Enforcer
from nimbus.db.engine import Database
from nimbus.db.migrate import upgrade
from nimbus.image.cache import ImageCache
from nimbus.image.models import Base
from nimbus.image.policy import RULES
from nimbus.image.stores import Store, build_stores

if TYPE_CHECKING:
    from nimbus.cloud import Cloud
    from nimbus.common.settings import ImageSettings

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class ImageService:
    name = "image"

    cloud: Cloud
    db: Database
    settings: ImageSettings
    enforcer: Enforcer
    stores: dict[str, Store]
    staging: Path
    cache: ImageCache

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanup: asyncio.Task[None] | None = None
        # Images whose data this process is receiving or importing right now.
        self.busy: set[str] = set()

    async def start(self, cloud: Cloud) -> None:
        from nimbus.image.cleanup import periodic, run_once

        self.cloud = cloud
        self.settings = cloud.settings.image
        self.db = cloud.database("image")
        await upgrade(self.db, "image", MIGRATIONS, Base.metadata)
        self.stores = build_stores(self.settings, cloud.settings.state_dir)
        for store in self.stores.values():
            await store.start()
        self.staging = (self.settings.staging_dir
                        or cloud.settings.state_dir / "images" / "staging").resolve()
        await asyncio.to_thread(self.staging.mkdir, parents=True, exist_ok=True)
        self.cache = ImageCache((self.settings.cache_dir
                                 or cloud.settings.state_dir / "images" / "cache").resolve())
        await self.cache.start()
        self.enforcer = Enforcer(RULES, self.settings.policy_file)
        await run_once(self, startup=True)
        self._cleanup = asyncio.create_task(periodic(self), name="image-cleanup")
        from nimbus.image.bootstrap import candidates, register_all

        if await asyncio.to_thread(candidates, self):
            self.spawn(register_all(self), name="image-bootstrap")

    def app(self) -> ASGIApp:
        from nimbus.image.api import build_app

        return build_app(self)

    async def stop(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._cleanup
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- shared by the resource modules --------------------------------------------------------
    @property
    def default_store(self) -> Store:
        return self.stores[self.settings.default_store]

    def enforce(self, rule: str, ctx: RequestContext, target: dict[str, Any]) -> None:
        self.enforcer.enforce(rule, ctx.policy_credentials(), {"target": target})

    def allowed(self, rule: str, ctx: RequestContext, target: dict[str, Any]) -> bool:
        return self.enforcer.check_rule(rule, ctx.policy_credentials(), {"target": target})

    async def notify(self, event_type: str, payload: dict[str, Any]) -> None:
        try:
            await self.cloud.bus.notify(event_type, payload, publisher_id="image")
        except Exception:  # notifications must never fail the request that made them
            LOG.warning("could not send %s", event_type, exc_info=True)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Background work (imports) that stop() cancels."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

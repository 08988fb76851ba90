"""The identity service: Keystone v3 behind nimbus' platform."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp

from nimbus.common.policy import Enforcer
from nimbus.common.revocation import RevocationEvent
from nimbus.common.tokens import KeyRing
from nimbus.db.cache import ReadCache
from nimbus.db.engine import Database
from nimbus.db.migrate import upgrade
from nimbus.identity.catalog import CatalogCache
from nimbus.identity.models import Base, RevocationEventRow
from nimbus.identity.passwords import Hasher
from nimbus.identity.policy import RULES

if TYPE_CHECKING:
    from nimbus.cloud import Cloud
    from nimbus.common.settings import IdentitySettings

MIGRATIONS = Path(__file__).parent / "migrations"


class IdentityService:
    name = "identity"

    cloud: Cloud
    db: Database
    settings: IdentitySettings
    keyring: KeyRing
    hasher: Hasher
    enforcer: Enforcer
    catalog: CatalogCache
    read_cache: ReadCache

    async def start(self, cloud: Cloud) -> None:
        from nimbus.identity.bootstrap import bootstrap

        self.cloud = cloud
        self.settings = cloud.settings.identity
        self.db = cloud.database("identity")
        await upgrade(self.db, "identity", MIGRATIONS, Base.metadata)
        self.keyring = KeyRing(cloud.settings.state_dir / "token-keys",
                               self.settings.max_active_keys)
        cloud.verifier.set_keys(self.keyring.public_keys())
        self.hasher = Hasher(self.settings)
        from nimbus.identity.api import extra_policy

        self.enforcer = Enforcer({**RULES, **extra_policy()}, self.settings.policy_file)
        self.catalog = CatalogCache(self.db)
        self.read_cache = ReadCache(self.db)
        # Writes by other identity processes (distributed wiring) invalidate our cache too.
        self._subscription = await cloud.bus.subscribe("identity.*", self._on_change)
        await bootstrap(self)
        await self._load_revocations()

    def app(self) -> ASGIApp:
        from nimbus.identity.api import build_app

        return build_app(self)

    async def stop(self) -> None:
        await self._subscription.stop()
        self.hasher.close()

    async def _on_change(self, message: dict[str, Any]) -> None:
        self.read_cache.invalidate()

    # -- shared by the resource modules --------------------------------------------------------
    def enforce(self, rule: str, creds: dict[str, Any], target: dict[str, Any]) -> None:
        self.enforcer.enforce(rule, creds, target)

    async def notify(self, event_type: str, resource_id: str, **extra: Any) -> None:
        payload = {"resource_info": resource_id, **extra}
        await self.cloud.bus.notify(event_type, payload, publisher_id="identity")

    async def revoke(self, session: AsyncSession, **match: Any) -> None:
        """Record a revocation event in the caller's transaction and apply it everywhere.

        It is applied before the commit: if the transaction then fails, some tokens were
        revoked needlessly, which is safe; the other order could let a revoked token through.
        """
        now = time.time()
        event = RevocationEvent(issued_before=now, revoked_at=now, **match)
        session.add(RevocationEventRow(**event.to_dict()))
        await self.cloud.announce_revocation(event)

    def rotate_keys(self) -> str:
        kid = self.keyring.rotate()
        self.cloud.verifier.set_keys(self.keyring.public_keys())
        return kid

    async def _load_revocations(self) -> None:
        oldest = time.time() - self.settings.token_expiration - 60
        async with self.db.session() as session:
            rows = (await session.scalars(
                select(RevocationEventRow).where(RevocationEventRow.revoked_at >= oldest))).all()
        for row in rows:
            self.cloud.revocations.add(RevocationEvent(
                **{k: getattr(row, k) for k in RevocationEvent.__dataclass_fields__}))

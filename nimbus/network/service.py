"""The network service: Neutron's Networking v2.0 API behind nimbus' platform."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from starlette.types import ASGIApp

from nimbus.common.policy import Enforcer
from nimbus.db.engine import Database
from nimbus.db.migrate import upgrade
from nimbus.network.models import Base
from nimbus.network.plancache import PlanCache
from nimbus.network.policy import RULES

if TYPE_CHECKING:
    from nimbus.bus import Server
    from nimbus.cloud import Cloud
    from nimbus.common.settings import NetworkSettings

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def _read_committed(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.close()


class NetworkService:
    name = "network"

    cloud: Cloud
    db: Database
    settings: NetworkSettings
    enforcer: Enforcer

    def __init__(self) -> None:
        self._servers: list[Server] = []
        self._background: set[asyncio.Future[None]] = set()
        # Projects whose default security group is known to exist (saves a query per port).
        self.default_groups: dict[str, str] = {}
        self.bootstrapped_projects: set[str] = set()
        # network id -> (valid until, DHCP agent hosts); see rpc.send_dhcp_update.
        self.dhcp_hosts: dict[str, tuple[float, list[str]]] = {}
        self.hidden_cache: dict[tuple[Any, ...], set[str]] = {}
        self.plans = PlanCache()
        self._bootstrap_task: asyncio.Task[None] | None = None
        self.bootstrap_lock = asyncio.Lock()

    async def start(self, cloud: Cloud) -> None:
        from nimbus.network import bootstrap
        from nimbus.network.rpc import serve

        self.cloud = cloud
        self.settings = cloud.settings.network
        self.db = cloud.database("network")
        if self.db.dialect == "mysql":
            # InnoDB's default REPEATABLE READ would let a transaction keep reading a snapshot
            # taken before the row lock it waited for; IPAM needs to see what it waited for.
            await self.db.dispose()
            event.listen(self.db.engine.sync_engine, "connect", _read_committed)
        await upgrade(self.db, "network", MIGRATIONS, Base.metadata)
        self.enforcer = Enforcer(RULES, self.settings.policy_file)
        if self.settings.bootstrap:
            await bootstrap.public_network(self)
        self._servers = await serve(self)
        if self.settings.bootstrap:
            self._bootstrap_task = asyncio.create_task(bootstrap.admin_project_at_start(self))

    def app(self) -> ASGIApp:
        from nimbus.network.api import build_app

        return build_app(self)

    async def stop(self) -> None:
        if self._bootstrap_task is not None:
            self._bootstrap_task.cancel()
            self._bootstrap_task = None
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        for server in self._servers:
            await server.stop()
        self._servers = []

    # -- shared by the resource modules --------------------------------------------------------
    def after(self, work: Coroutine[Any, Any, None]) -> None:
        """Run agent updates after the response: the client need not wait for them."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def ports_changed(self, ports: list[dict[str, Any]], old_host: str | None = None,
                            old_migrating_to: str | None = None) -> None:
        """After a commit: tell the agents of the hosts involved what to wire."""
        from nimbus.network import rpc

        ids = [p["id"] for p in ports if p.get("binding:host_id") or old_host]
        if ids:
            await rpc.send_port_updates(self, ids, old_host, old_migrating_to)
        await rpc.send_dhcp_update(self, [p["network_id"] for p in ports])

    async def port_deleted(self, port_id: str, network_id: str, host: str) -> None:
        from nimbus.network import rpc

        await rpc.send_port_delete(self, port_id, network_id, host)
        await rpc.send_dhcp_update(self, [network_id])

    async def routers_changed(self, router_ids: list[str | None]) -> None:
        from nimbus.network import rpc

        await rpc.send_router_update(self, [r for r in router_ids if r])

    async def subnets_changed(self, network_id: str) -> None:
        from nimbus.network import rpc

        await rpc.schedule_and_send_dhcp(self, network_id)

    async def security_groups_changed(self, sg_ids: list[str]) -> None:
        from nimbus.network import rpc

        await rpc.send_security_groups_updated(self, sg_ids)

    async def notify(self, event_type: str, payload: dict[str, Any],
                     context: dict[str, Any] | None = None) -> None:
        try:
            await self.cloud.bus.notify(event_type, payload, publisher_id="network",
                                        context=context)
        except Exception:  # a notification never fails the request that caused it
            LOG.exception("could not send %s", event_type)

"""The compute service: Nova's API, conductor and scheduler, and compute agents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from nimbus.common.context import RequestContext
from nimbus.common.policy import Enforcer
from nimbus.compute.models import Base
from nimbus.compute.policy import RULES
from nimbus.db.engine import Database
from nimbus.db.migrate import upgrade

if TYPE_CHECKING:
    from nimbus.bus import Server
    from nimbus.cloud import Cloud
    from nimbus.common.settings import ComputeSettings
    from nimbus.compute.agent.manager import AgentManager
    from nimbus.compute.conductor import Conductor
    from nimbus.compute.scheduler import Scheduler

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class ComputeService:
    name = "compute"

    cloud: Cloud
    db: Database
    settings: ComputeSettings
    enforcer: Enforcer

    def __init__(self) -> None:
        self._servers: list[Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.conductor: Conductor | None = None
        self.scheduler: Scheduler | None = None
        self.agents: AgentManager | None = None
        self.console_tokens: dict[str, dict[str, Any]] = {}
        from nimbus.compute.flavors import Cache

        self.flavor_cache = Cache()
        self._services: dict[str, Any] = {}
        self._services_until = 0.0

    async def start(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.settings = cloud.settings.compute
        self.enforcer = Enforcer(RULES, self.settings.policy_file)
        if self.settings.api:
            from nimbus.compute import bootstrap
            from nimbus.compute.conductor import Conductor
            from nimbus.compute.scheduler import Scheduler

            self.db = cloud.database("compute")
            await upgrade(self.db, "compute", MIGRATIONS, Base.metadata)
            if self.settings.bootstrap:
                await bootstrap.run(self)
            self.scheduler = Scheduler(self)
            self.conductor = Conductor(self, self.scheduler)
            self._servers += await self.scheduler.serve()
            self._servers += await self.conductor.serve()
            from nimbus.compute.metadata import endpoint as metadata

            self._servers.append(await metadata.serve(self))
        hosts = self.local_hosts()
        if hosts:
            from nimbus.compute.agent.manager import AgentManager

            self.agents = AgentManager(cloud, self.settings, hosts)
            await self.agents.start()

    def local_hosts(self) -> list[str]:
        import socket

        hosts = list(self.settings.hosts) if self.settings.hosts is not None \
            else [socket.gethostname()]
        hosts += [f"fake-{i}" for i in range(1, self.settings.fake_hosts + 1)]
        return hosts

    def app(self) -> ASGIApp:
        if not self.settings.api:
            return self._agent_only_app
        from nimbus.compute.api import build_app

        return build_app(self)

    async def _agent_only_app(self, scope: Any, receive: Any, send: Any) -> None:
        """A compute node serves no API: it says which hosts it runs."""
        from nimbus.web.responses import json_response

        if scope["type"] != "http":
            return
        hosts = list(self.agents.hosts) if self.agents is not None else []
        await json_response({"compute_agents": hosts}, 200)(scope, receive, send)

    async def stop(self) -> None:
        if self.agents is not None:
            await self.agents.stop()
        for server in self._servers:
            await server.stop()
        self._servers = []
        if self.conductor is not None:
            await self.conductor.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- shared by the resource modules --------------------------------------------------------
    async def compute_services(self) -> dict[str, Any]:
        """host -> its nova-compute service row, read at most once a second."""
        import time

        from sqlalchemy import select

        from nimbus.compute.hosts import COMPUTE_BINARY
        from nimbus.compute.models import Service

        if time.monotonic() < self._services_until:
            return self._services
        async with self.db.session() as session:
            rows = (await session.scalars(select(Service).where(
                Service.binary == COMPUTE_BINARY))).all()
        self._services = {r.host: r for r in rows}
        self._services_until = time.monotonic() + 1.0
        return self._services

    def services_changed(self) -> None:
        self._services_until = 0.0
        if self.scheduler is not None:
            self.scheduler.hosts.invalidate()

    def enforce(self, rule: str, ctx: RequestContext, target: dict[str, Any]) -> None:
        self.enforcer.enforce(rule, ctx.policy_credentials(), target)

    def allowed(self, rule: str, ctx: RequestContext, target: dict[str, Any]) -> bool:
        return self.enforcer.check_rule(rule, ctx.policy_credentials(), target)

    async def notify(self, event_type: str, payload: dict[str, Any],
                     priority: str = "INFO") -> None:
        try:
            await self.cloud.bus.notify(event_type, payload, publisher_id="compute",
                                        priority=priority)
        except Exception:  # a notification never fails the request that caused it
            LOG.warning("could not send %s", event_type, exc_info=True)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

"""The one application object per process: settings, bus, databases, token checks, services.

The all-in-one runs every service in one Cloud behind the gateway; the distributed wiring runs
one service per Cloud. Nothing here is module-level, so tests can build many clouds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from starlette.types import ASGIApp

from nimbus.bus import Bus, create_bus
from nimbus.clients.base import Clients
from nimbus.common.revocation import RevocationEvent, RevocationList
from nimbus.common.settings import Settings
from nimbus.common.tokens import TokenVerifier, load_public_pem
from nimbus.db.engine import Database
from nimbus.service import CATALOG, HostAgents, Service, load_dataplane_agents, load_service
from nimbus.web.auth import TokenAuth
from nimbus.web.gateway import Gateway

LOG = logging.getLogger(__name__)

REVOCATION_EVENT = "identity.revocation.created"


class Cloud:
    def __init__(self, settings: Settings, services: list[str] | None = None) -> None:
        self.settings = settings
        self.service_names = list(services if services is not None else settings.services)
        self.bus: Bus = create_bus(settings.bus_url)
        self.revocations = RevocationList()
        self.verifier = TokenVerifier({})
        self.token_auth = TokenAuth(self.verifier, self.revocations)
        self.databases: dict[str, Database] = {}
        self.services: dict[str, Service] = {}
        self._subscriptions: list[Any] = []
        self.started = False
        self.clients = Clients(self)
        self.dataplane: HostAgents | None = None
        self._app: ASGIApp | None = None

    # -- wiring -------------------------------------------------------------------------------
    def database(self, service: str) -> Database:
        db = self.databases.get(service)
        if db is None:
            db = self.databases[service] = Database(self.settings.database_url_for(service))
        return db

    def endpoint_url(self, service: str) -> str:
        """The base URL of a service as the catalog lists it (without version suffix)."""
        _, path, _ = CATALOG[service]
        base = self.settings.service_urls.get(service, self.settings.endpoint).rstrip("/")
        return f"{base}/{path}"

    def catalog_url(self, service: str) -> str:
        _, _, suffix = CATALOG[service]
        return self.endpoint_url(service) + suffix

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        await self.bus.start()
        sub = await self.bus.subscribe(REVOCATION_EVENT, self._on_revocation)
        self._subscriptions.append(sub)
        for name in self.service_names:
            self.services[name] = load_service(name)
        for service in self.services.values():
            await service.start(self)
        if "identity" not in self.services:
            await self._load_token_state_from_identity()
        if self.settings.dataplane.enabled:
            self.dataplane = load_dataplane_agents(self)
            await self.dataplane.start()
        self.started = True

    async def stop(self) -> None:
        if self.dataplane is not None:
            await self.dataplane.stop()
            self.dataplane = None
        for service in reversed(list(self.services.values())):
            await service.stop()
        for sub in self._subscriptions:
            await sub.stop()
        await self.bus.stop()
        for db in self.databases.values():
            await db.dispose()
        await self.clients.close()
        self.started = False

    def asgi_app(self) -> ASGIApp:
        """The gateway in front of this process's services (built once: the web server and
        the in-process calls of nimbus/clients share it)."""
        if self._app is None:
            # Both wirings keep the path prefix, so a service's URLs look the same in either.
            self._app = Gateway({CATALOG[name][1]: svc.app()
                                 for name, svc in self.services.items()})
        return self._app

    def hosts_locally(self, service: str) -> bool:
        """Whether this process answers `service`'s API at its catalog endpoint."""
        return self.started and service in self.services and \
            service not in self.settings.service_urls

    # -- tokens -------------------------------------------------------------------------------
    async def announce_revocation(self, event: RevocationEvent) -> None:
        """Apply here at once, then tell every other process."""
        self.revocations.add(event)
        await self.bus.notify(REVOCATION_EVENT, event.to_dict(), publisher_id="identity")

    async def _on_revocation(self, message: dict[str, Any]) -> None:
        self.revocations.add(RevocationEvent.from_dict(message["payload"]))

    async def _load_token_state_from_identity(self) -> None:
        """Distributed wiring: fetch the public keys and revocation events from identity."""
        url = self.endpoint_url("identity")
        async with httpx.AsyncClient(timeout=10) as client:
            keys = (await client.get(f"{url}/v3/OS-NIMBUS/token-keys")).json()["keys"]
            self.verifier.set_keys({k["id"]: load_public_pem(k["public_key"]) for k in keys})
            events = (await client.get(f"{url}/v3/OS-NIMBUS/revocations")).json()["events"]
        for e in events:
            self.revocations.add(RevocationEvent.from_dict(e))
        self.revocations.prune(time.time() - 86400 * 2)

"""What every service package provides to the process that hosts it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from starlette.types import ASGIApp

if TYPE_CHECKING:
    from nimbus.cloud import Cloud

# name -> "module:factory"; imported only when the service is enabled.
REGISTRY = {
    "identity": "nimbus.identity.service:IdentityService",
    "image": "nimbus.image.service:ImageService",
    "network": "nimbus.network.service:NetworkService",
    "compute": "nimbus.compute.service:ComputeService",
    "placement": "nimbus.placement.service:PlacementService",
}

# Host-side agents of the real data plane (settings.dataplane.enabled), started after the
# services of the process and stopped before them.
DATAPLANE_AGENTS = "nimbus.network.agents.node:NodeAgents"

# How each service appears in the catalog: (type, path on its endpoint, URL suffix).
CATALOG = {
    "identity": ("identity", "identity", ""),
    "compute": ("compute", "compute", "/v2.1"),
    "placement": ("placement", "placement", ""),
    "image": ("image", "image", ""),
    "network": ("network", "network", ""),
    "volume": ("block-storage", "volume", "/v3/$(project_id)s"),
    "object": ("object-store", "object", "/v1/AUTH_$(project_id)s"),
}


class Service(Protocol):
    name: str

    async def start(self, cloud: Cloud) -> None:
        """Migrate, bootstrap and start background work."""

    def app(self) -> ASGIApp:
        """The service's public API."""

    async def stop(self) -> None: ...


class HostAgents(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def purge(self) -> None: ...


def load_dataplane_agents(cloud: Cloud) -> HostAgents:
    module_name, _, factory = DATAPLANE_AGENTS.partition(":")
    agents: HostAgents = getattr(importlib.import_module(module_name), factory)(cloud)
    return agents


def load_service(name: str) -> Service:
    if name not in REGISTRY:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(sorted(REGISTRY))}")
    module_name, _, factory = REGISTRY[name].partition(":")
    module = importlib.import_module(module_name)
    service: Service = getattr(module, factory)()
    return service

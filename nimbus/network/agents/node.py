"""The network agents of the data-plane nodes one process runs: for each node, the agents its
settings list (l2, dhcp, l3, metadata), started after the services of the process.

Which nodes: `dataplane.nodes` when set (tests run two nodes in one process this way), else one
node named after this machine with `dataplane.default_node`, the same name the compute agent
of the all-in-one uses, so ports bound to that compute host are wired here."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nimbus.cloud import Cloud
    from nimbus.common.settings import NodeSettings

LOG = logging.getLogger(__name__)


class NodeAgent(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...

    async def purge(self) -> None: ...


def local_nodes(cloud: Cloud) -> dict[str, NodeSettings]:
    dataplane = cloud.settings.dataplane
    if dataplane.nodes:
        return dict(dataplane.nodes)
    hosts = cloud.settings.compute.hosts
    name = hosts[0] if hosts else socket.gethostname()
    return {name: dataplane.default_node}


class NodeAgents:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.agents: dict[tuple[str, str], NodeAgent] = {}
        self.metadata: dict[str, Any] = {}

    def _make(self, kind: str, host: str, node: NodeSettings) -> NodeAgent:
        bus, dataplane = self.cloud.bus, self.cloud.settings.dataplane
        if kind == "l2":
            from nimbus.network.agents.l2 import LinuxBridgeAgent

            return LinuxBridgeAgent(bus, host, node, dataplane)
        if kind == "dhcp":
            from nimbus.network.agents.dhcp import DhcpAgent

            return DhcpAgent(bus, host, node, dataplane, metadata=self.metadata.get(host),
                             state_dir=self.cloud.settings.state_dir)
        if kind == "l3":
            from nimbus.network.agents.l3 import L3Agent

            return L3Agent(bus, host, node, dataplane, state_dir=self.cloud.settings.state_dir)
        raise ValueError(f"unknown network agent {kind!r} (known: l2, dhcp, l3, metadata)")

    async def start(self) -> None:
        for host, node in local_nodes(self.cloud).items():
            if "metadata" in node.agents and "dhcp" in node.agents:
                from nimbus.network.agents.metadata import MetadataProxy

                self.metadata[host] = MetadataProxy(self.cloud, host)
            # L2 first: the DHCP and L3 agents' devices need it to go ACTIVE.
            for kind in ("l2", "dhcp", "l3"):
                if kind in node.agents:
                    agent = self._make(kind, host, node)
                    await agent.start()
                    self.agents[(host, kind)] = agent
        LOG.info("network agents running: %s",
                 ", ".join(f"{kind}@{host}" for host, kind in self.agents))

    async def stop(self) -> None:
        """Stop serving; guests, bridges, dnsmasq and routers stay (a restart re-adopts)."""
        for agent in reversed(list(self.agents.values())):
            try:
                await agent.stop()
            except Exception:
                LOG.exception("stopping a network agent failed")
        for proxy in self.metadata.values():
            await proxy.stop()
        self.agents.clear()
        self.metadata.clear()

    async def purge(self) -> None:
        """Remove everything the agents made on their nodes."""
        await asyncio.gather(*(a.purge() for a in self.agents.values()),
                             return_exceptions=True)

"""A fake L2 agent for tests: serves its host's agent topic, records what the server sends,
and reports each wired port ACTIVE (DOWN when administratively down), as a real agent would
once the tap is on its bridge."""

from __future__ import annotations

import asyncio
from typing import Any

from nimbus.bus import Bus, Server, Target

SERVER_TOPIC = "network-server"
AGENT_TOPIC = "network-agent"


class FakeL2Agent:
    version = "1.0"

    def __init__(self, bus: Bus, host: str, *, agent_type: str = "Linux bridge agent",
                 report_active: bool = True) -> None:
        self.bus = bus
        self.host = host
        self.agent_type = agent_type
        self.report_active = report_active
        self.ports: dict[str, dict[str, Any]] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.security_group_updates: list[list[str]] = []
        self._server: Server | None = None
        self.changed = asyncio.Event()

    async def start(self) -> FakeL2Agent:
        self._server = await self.bus.serve(Target(AGENT_TOPIC, server=self.host), self)
        await self.report_state(start=True)
        for port in await self.bus.call(Target(SERVER_TOPIC), "get_host_wiring",
                                        host=self.host):
            await self.port_update({}, port=port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def report_state(self, start: bool = False) -> str:
        agent_id: str = await self.bus.call(Target(SERVER_TOPIC), "report_state", agent={
            "agent_type": self.agent_type, "binary": "nimbus-fake-l2-agent",
            "host": self.host, "topic": AGENT_TOPIC, "start_flag": start,
            "availability_zone": "nova",
            "configurations": {"bridge_mappings": {}, "devices": len(self.ports)}})
        return agent_id

    # -- what the server casts ------------------------------------------------------------------
    async def port_update(self, context: dict[str, Any], port: dict[str, Any]) -> None:
        self.received.append(("port_update", port))
        self.ports[port["port_id"]] = port
        status = "ACTIVE" if port["admin_state_up"] else "DOWN"
        if self.report_active:
            await self.bus.call(Target(SERVER_TOPIC), "update_port_status",
                                port_id=port["port_id"], status=status, host=self.host)
        self.changed.set()

    async def port_delete(self, context: dict[str, Any], port_id: str, network_id: str) -> None:
        self.received.append(("port_delete", {"port_id": port_id, "network_id": network_id}))
        self.ports.pop(port_id, None)
        self.changed.set()

    async def security_groups_updated(self, context: dict[str, Any],
                                      security_groups: list[str]) -> None:
        self.security_group_updates.append(security_groups)
        if any(sg in p["security_groups"] for p in self.ports.values()
               for sg in security_groups):
            for port in await self.bus.call(Target(SERVER_TOPIC), "get_host_wiring",
                                            host=self.host):
                self.ports[port["port_id"]] = port
        self.changed.set()

"""What compute asks the network service (Neutron v2.0 API): networks a project may use,
ports for servers (created, bound to a host, released), security groups."""

from __future__ import annotations

from typing import Any

from nimbus.clients.base import RemoteApiError, ServiceClient, json_of
from nimbus.common.context import RequestContext


class NetworkClient(ServiceClient):
    service = "network"

    async def networks(self, params: dict[str, Any], *,
                       ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2.0/networks", ctx=ctx, params=params)
        nets: list[dict[str, Any]] = body["networks"]
        return nets

    async def network(self, network_id: str, *,
                      ctx: RequestContext | None = None) -> dict[str, Any] | None:
        try:
            body = await self.get_json(f"/v2.0/networks/{network_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status == 404:
                return None
            raise
        net: dict[str, Any] = body["network"]
        return net

    async def port(self, port_id: str, *,
                   ctx: RequestContext | None = None) -> dict[str, Any] | None:
        try:
            body = await self.get_json(f"/v2.0/ports/{port_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status == 404:
                return None
            raise
        port: dict[str, Any] = body["port"]
        return port

    async def ports(self, params: dict[str, Any], *,
                    ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2.0/ports", ctx=ctx, params=params)
        ports: list[dict[str, Any]] = body["ports"]
        return ports

    async def create_port(self, attrs: dict[str, Any], *,
                          ctx: RequestContext | None = None) -> dict[str, Any]:
        resp = await self.request("POST", "/v2.0/ports", ctx=ctx, json={"port": attrs})
        port: dict[str, Any] = json_of(resp)["port"]
        return port

    async def update_port(self, port_id: str, attrs: dict[str, Any], *,
                          ctx: RequestContext | None = None) -> dict[str, Any]:
        resp = await self.request("PUT", f"/v2.0/ports/{port_id}", ctx=ctx,
                                  json={"port": attrs})
        port: dict[str, Any] = json_of(resp)["port"]
        return port

    async def delete_port(self, port_id: str, *, ctx: RequestContext | None = None) -> None:
        try:
            await self.request("DELETE", f"/v2.0/ports/{port_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status != 404:
                raise

    async def security_groups(self, params: dict[str, Any], *,
                              ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2.0/security-groups", ctx=ctx, params=params)
        groups: list[dict[str, Any]] = body["security_groups"]
        return groups

    async def floating_ips(self, params: dict[str, Any], *,
                           ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2.0/floatingips", ctx=ctx, params=params)
        fips: list[dict[str, Any]] = body["floatingips"]
        return fips

    async def subnets(self, params: dict[str, Any], *,
                      ctx: RequestContext | None = None) -> list[dict[str, Any]]:
        body = await self.get_json("/v2.0/subnets", ctx=ctx, params=params)
        subnets: list[dict[str, Any]] = body["subnets"]
        return subnets

    async def subnet(self, subnet_id: str, *,
                     ctx: RequestContext | None = None) -> dict[str, Any] | None:
        try:
            body = await self.get_json(f"/v2.0/subnets/{subnet_id}", ctx=ctx)
        except RemoteApiError as exc:
            if exc.status == 404:
                return None
            raise
        subnet: dict[str, Any] = body["subnet"]
        return subnet

    async def auto_allocated_topology(self, project_id: str, *, dry_run: bool = False,
                                      ctx: RequestContext | None = None) -> dict[str, Any]:
        """The project's auto-allocated topology ({"id": network id, "project_id"}), made on
        the first call; dry_run only checks that one could be made (409 when not)."""
        params = {"fields": "dry-run"} if dry_run else None
        body = await self.get_json(f"/v2.0/auto-allocated-topology/{project_id}", ctx=ctx,
                                   params=params)
        topology: dict[str, Any] = body["auto_allocated_topology"]
        return topology

"""Ports for an instance: created on the networks it asked for (or the user's ports taken
over), bound to this host, described as network info for the driver and the API."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nimbus.clients.network import NetworkClient
from nimbus.compute import lifecycle

if TYPE_CHECKING:
    from nimbus.compute.agent.host import HostAgent

LOG = logging.getLogger(__name__)


class NetworkError(Exception):
    pass


def vif(port: dict[str, Any], network_name: str, *, tag: str | None,
        preexisting: bool) -> dict[str, Any]:
    return {
        "port_id": port["id"], "network_id": port["network_id"], "network_name": network_name,
        "mac_address": port.get("mac_address"),
        "fixed_ips": [{"ip_address": ip["ip_address"], "subnet_id": ip.get("subnet_id"),
                       "version": 6 if ":" in ip["ip_address"] else 4}
                      for ip in port.get("fixed_ips", [])],
        "tag": tag, "preexisting": preexisting,
        "vif_type": port.get("binding:vif_type") or "bridge",
        "devname": "tap" + port["id"][:11], "active": port.get("status") == "ACTIVE",
    }


async def network_name(agent: HostAgent, client: NetworkClient, network_id: str) -> str:
    cache: dict[str, str] = agent.manager.network_names
    name = cache.get(network_id)
    if name is None:
        net = await client.network(network_id)
        name = cache[network_id] = (net or {}).get("name") or network_id
    return name


async def allocate(agent: HostAgent, instance: dict[str, Any]) -> list[dict[str, Any]]:
    requested = instance.get("requested_networks")
    if not requested or requested in ("none", "auto") or \
            not lifecycle.has_service(agent.cloud, "network"):
        return []
    client = agent.cloud.clients.get(NetworkClient)
    zone = instance.get("availability_zone") or agent.settings.default_availability_zone
    binding = {"device_id": instance["uuid"], "device_owner": f"compute:{zone}",
               "binding:host_id": agent.host}
    groups = (instance.get("system_metadata") or {}).get("security_group_ids")
    vifs: list[dict[str, Any]] = []
    try:
        for req in requested:
            if req.get("port"):
                port = await client.update_port(req["port"], binding)
                preexisting = True
            else:
                attrs: dict[str, Any] = {"network_id": req["uuid"],
                                         "project_id": instance["project_id"], **binding}
                if req.get("fixed_ip"):
                    attrs["fixed_ips"] = [{"ip_address": req["fixed_ip"]}]
                if groups is not None:
                    attrs["security_groups"] = groups
                port = await client.create_port(attrs)
                preexisting = False
            name = await network_name(agent, client, port["network_id"])
            vifs.append(vif(port, name, tag=req.get("tag"), preexisting=preexisting))
    except Exception as exc:
        await lifecycle.release_ports(agent.cloud, instance["uuid"], vifs)
        raise NetworkError(f"Failed to allocate the network(s), not rescheduling: {exc}") \
            from exc
    return vifs

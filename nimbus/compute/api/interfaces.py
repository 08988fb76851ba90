"""/servers/{id}/os-interface: the server's ports; attach (a new port on a network, or the
user's port) and detach, through the network API and the host's agent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.bus import BusTimeout, RemoteError
from nimbus.clients.base import RemoteApiError
from nimbus.clients.network import NetworkClient
from nimbus.compute import instances, lifecycle, rpc, states
from nimbus.compute.agent.network import vif as make_vif
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.server_actions import check_lock, check_state, target
from nimbus.compute.models import Instance
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

ATTACH = {"type": "object", "properties": {"interfaceAttachment": {
    "type": "object", "properties": {
        "net_id": v.UUID, "port_id": v.UUID,
        "fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "properties": {"ip_address": {"type": "string",
                                                            "format": "ip"}},
            "required": ["ip_address"], "additionalProperties": False}},
        "tag": v.TAG}, "additionalProperties": False}},
    "additionalProperties": False}
ATTACH_STATES = [states.ACTIVE, states.PAUSED_VM, states.STOPPED]


def view(c: Caller, port: dict[str, Any], tag: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "port_state": port.get("status"), "port_id": port["id"], "net_id": port["network_id"],
        "mac_addr": port.get("mac_address"),
        "fixed_ips": [{"subnet_id": ip.get("subnet_id"), "ip_address": ip["ip_address"]}
                      for ip in port.get("fixed_ips", [])]}
    if c.at(70):
        out["tag"] = tag
    return out


def _client(c: Caller) -> NetworkClient:
    if not lifecycle.has_service(c.svc.cloud, "network"):
        raise NotFound("Networking is not available in this cloud.")
    return c.svc.cloud.clients.get(NetworkClient)


@router.get("/v2.1/servers/{server_id}/os-interface")
async def list_interfaces(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-attach-interfaces:list", target(inst))
    tags = {vif["port_id"]: vif.get("tag") for vif in inst.network_info or []}
    ports = await _client(c).ports({"device_id": inst.uuid}) \
        if lifecycle.has_service(c.svc.cloud, "network") else []
    return json_response({"interfaceAttachments": [view(c, p, tags.get(p["id"]))
                                                   for p in ports]})


@router.get("/v2.1/servers/{server_id}/os-interface/{port_id}")
async def show_interface(server_id: str, port_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-attach-interfaces:show", target(inst))
    port = await _client(c).port(port_id)
    if port is None or port.get("device_id") != inst.uuid:
        raise NotFound(f"Port {port_id} is not attached")
    tags = {vif["port_id"]: vif.get("tag") for vif in inst.network_info or []}
    return json_response({"interfaceAttachment": view(c, port, tags.get(port_id))})


async def _ready(c: Caller, server_id: str, rule: str, method: str) -> Instance:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce(rule, target(inst))
        check_lock(c, inst)
        check_state(inst, method, ATTACH_STATES)
        if not inst.host:
            raise Conflict(f"Instance {server_id} is not ready")
    return inst


async def _store(c: Caller, uuid: str, network_info: list[dict[str, Any]]) -> None:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, uuid, c.ctx)
        instances.apply(inst, {"network_info": network_info})


@router.post("/v2.1/servers/{server_id}/os-interface", openapi_extra=body_doc(ATTACH))
async def attach_interface(server_id: str, c: Caller = Depends(caller)) -> Response:
    body = (await c.body(ATTACH)).get("interfaceAttachment") or {}
    inst = await _ready(c, server_id, "os_compute_api:os-attach-interfaces:create",
                        "attach_interface")
    client = _client(c)
    if body.get("port_id") and (body.get("net_id") or body.get("fixed_ips")):
        raise BadRequest("Specify either port_id or net_id (with fixed_ips), not both")
    binding = {"device_id": inst.uuid,
               "device_owner": f"compute:{inst.availability_zone or 'nova'}",
               "binding:host_id": inst.host}
    preexisting = bool(body.get("port_id"))
    try:
        if preexisting:
            port = await client.port(body["port_id"])
            if port is None or (not c.ctx.is_admin and port.get("project_id")
                                != inst.project_id):
                raise NotFound(f"Port {body['port_id']} could not be found.")
            if port.get("device_id"):
                raise Conflict(f"Port {body['port_id']} is still in use.")
            port = await client.update_port(port["id"], binding)
        else:
            net_id = body.get("net_id")
            if not net_id:
                nets = await client.networks({"project_id": inst.project_id})
                if len(nets) != 1:
                    raise Conflict("Multiple possible networks found, use a Network ID to be "
                                   "more specific." if nets else
                                   "No network is available to attach an interface to.")
                net_id = nets[0]["id"]
            elif await client.network(net_id) is None:
                raise NotFound(f"Network {net_id} could not be found.")
            attrs: dict[str, Any] = {"network_id": net_id, "project_id": inst.project_id,
                                     **binding}
            if body.get("fixed_ips"):
                attrs["fixed_ips"] = [{"ip_address": body["fixed_ips"][0]["ip_address"]}]
            port = await client.create_port(attrs)
    except RemoteApiError as exc:
        raise BadRequest(exc.message) from None
    net = await client.network(port["network_id"])
    vif = make_vif(port, (net or {}).get("name") or port["network_id"], tag=body.get("tag"),
                   preexisting=preexisting)
    try:
        await c.svc.cloud.bus.call(rpc.agent(inst.host or ""), "attach_interface",
                                   instance=instances.to_agent(inst), vif=vif, timeout=60)
    except (BusTimeout, RemoteError) as exc:
        if preexisting:
            await client.update_port(port["id"], {"device_id": "", "device_owner": "",
                                                  "binding:host_id": None})
        else:
            await client.delete_port(port["id"])
        raise Conflict(f"Failed to attach network adapter device to {server_id}: "
                       f"{exc}") from None
    await _store(c, inst.uuid, [*(inst.network_info or []), vif])
    async with c.svc.db.transaction() as session:
        row = await instances.get(session, inst.uuid, c.ctx)
        instances.start_action(session, row, "attach_interface", c.ctx)
    return json_response({"interfaceAttachment": view(c, port, vif["tag"])})


@router.delete("/v2.1/servers/{server_id}/os-interface/{port_id}")
async def detach_interface(server_id: str, port_id: str,
                           c: Caller = Depends(caller)) -> Response:
    inst = await _ready(c, server_id, "os_compute_api:os-attach-interfaces:delete",
                        "detach_interface")
    vifs = list(inst.network_info or [])
    match = [vif for vif in vifs if vif["port_id"] == port_id]
    client = _client(c)
    if not match:
        port = await client.port(port_id)
        if port is None or port.get("device_id") != inst.uuid:
            raise NotFound(f"Port {port_id} is not attached")
        match = [make_vif(port, port["network_id"], tag=None, preexisting=True)]
    vif = match[0]
    try:
        await c.svc.cloud.bus.call(rpc.agent(inst.host or ""), "detach_interface",
                                   instance=instances.to_agent(inst), vif=vif, timeout=60)
    except (BusTimeout, RemoteError) as exc:
        raise Conflict(f"Failed to detach network adapter device from {server_id}: "
                       f"{exc}") from None
    if vif.get("preexisting"):
        await client.update_port(port_id, {"device_id": "", "device_owner": "",
                                           "binding:host_id": None})
    else:
        await client.delete_port(port_id)
    await _store(c, inst.uuid, [x for x in vifs if x["port_id"] != port_id])
    async with c.svc.db.transaction() as session:
        row = await instances.get(session, inst.uuid, c.ctx)
        instances.start_action(session, row, "detach_interface", c.ctx)
    return Response(status_code=202)

"""Nova's floating-IP and network proxies (below 2.36), served from the network service with
the caller's token; addFloatingIp/removeFloatingIp server actions."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.clients.base import RemoteApiError
from nimbus.compute import instances
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.proxies import _net, proxy_only, remote_error
from nimbus.compute.api.server_actions import ACTIONS, target
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()


# -- floating IPs ---------------------------------------------------------------------------------
async def _fip_view(c: Caller, fip: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    instance_id = None
    if fip.get("port_id"):
        port = await _net(c).port(fip["port_id"])
        instance_id = (port or {}).get("device_id") or None
    return {"id": fip["id"], "ip": fip["floating_ip_address"],
            "fixed_ip": fip.get("fixed_ip_address"), "instance_id": instance_id,
            "pool": names.get(fip["floating_network_id"], fip["floating_network_id"])}


async def _pools(c: Caller) -> dict[str, str]:
    nets = await _net(c).networks({"router:external": "true"}, ctx=c.ctx)
    return {n["id"]: n["name"] for n in nets}


@router.get("/v2.1/os-floating-ip-pools")
async def list_pools(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    pools = await _pools(c)
    return json_response({"floating_ip_pools": [{"name": n} for n in pools.values()]})


@router.get("/v2.1/os-floating-ips")
async def list_floating_ips(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    names = await _pools(c)
    fips = await _net(c).floating_ips({"project_id": c.ctx.project_id}, ctx=c.ctx)
    return json_response({"floating_ips": [await _fip_view(c, f, names) for f in fips]})


async def _fip(c: Caller, fip_id: str) -> dict[str, Any]:
    proxy_only(c)
    try:
        resp = await _net(c).request("GET", f"/v2.0/floatingips/{fip_id}", ctx=c.ctx)
    except RemoteApiError as exc:
        raise remote_error(exc, f"Floating IP not found for ID {fip_id}") from None
    found: dict[str, Any] = resp.json()["floatingip"]
    return found


@router.get("/v2.1/os-floating-ips/{fip_id}")
async def show_floating_ip(fip_id: str, c: Caller = Depends(caller)) -> Response:
    fip = await _fip(c, fip_id)
    return json_response({"floating_ip": await _fip_view(c, fip, await _pools(c))})


FIP_BODY = {"type": ["object", "null"], "properties": {"pool": {"type": ["string", "null"]}},
            "additionalProperties": True}


@router.post("/v2.1/os-floating-ips", openapi_extra=body_doc(FIP_BODY))
async def create_floating_ip(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    raw = await c.request.body()
    body = v.validate(FIP_BODY, orjson.loads(raw) if raw else None) or {}
    pools = await _pools(c)
    pool = body.get("pool")
    net_id = next((i for i, n in pools.items() if n == pool or i == pool), None) if pool \
        else next(iter(pools), None)
    if net_id is None:
        raise NotFound("Floating IP pool not found." if pool else
                       "No more floating IPs available.")
    try:
        resp = await _net(c).request("POST", "/v2.0/floatingips", ctx=c.ctx, json={
            "floatingip": {"floating_network_id": net_id}})
    except RemoteApiError as exc:
        raise remote_error(exc, "Floating IP pool not found.") from None
    return json_response({"floating_ip": await _fip_view(c, resp.json()["floatingip"], pools)})


@router.delete("/v2.1/os-floating-ips/{fip_id}")
async def delete_floating_ip(fip_id: str, c: Caller = Depends(caller)) -> Response:
    await _fip(c, fip_id)
    await _net(c).request("DELETE", f"/v2.0/floatingips/{fip_id}", ctx=c.ctx)
    return Response(status_code=202)


async def _floating_action(c: Caller, server_id: str, params: Any, adding: bool) -> Response:
    if c.at(44):
        raise NotFound("The resource could not be found.")
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-attach-interfaces:create" if adding
                  else "os_compute_api:os-attach-interfaces:delete", target(inst))
    address = params.get("address")
    fips = await _net(c).floating_ips({"floating_ip_address": address}, ctx=c.ctx)
    if not fips:
        raise NotFound(f"floating IP not found for address {address}" if adding else
                       f"Floating IP not found for address {address}")
    fip = fips[0]
    if adding:
        ports = await _net(c).ports({"device_id": inst.uuid})
        fixed = params.get("fixed_address")
        port = next((p for p in ports if not fixed or any(
            ip["ip_address"] == fixed for ip in p.get("fixed_ips", []))), None)
        if port is None:
            raise BadRequest("No nw_info cache associated with instance" if not ports else
                             "Specified fixed address not assigned to instance")
        attrs: dict[str, Any] = {"port_id": port["id"]}
        if fixed:
            attrs["fixed_ip_address"] = fixed
    else:
        if not fip.get("port_id"):
            raise BadRequest(f"Floating IP {address} is not associated")
        port = await _net(c).port(fip["port_id"])
        if (port or {}).get("device_id") != inst.uuid:
            from nimbus.web.errors import Conflict

            raise Conflict(f"Floating IP {address} is associated with instance "
                           f"{(port or {}).get('device_id')}, not with {inst.uuid}")
        attrs = {"port_id": None}
    try:
        await _net(c).request("PUT", f"/v2.0/floatingips/{fip['id']}", ctx=c.ctx,
                              json={"floatingip": attrs})
    except RemoteApiError as exc:
        raise remote_error(exc, "Floating IP not found.") from None
    return Response(status_code=202)


ADDR = {"type": "object", "properties": {"address": {"type": "string"},
                                         "fixed_address": {"type": "string"}},
        "required": ["address"], "additionalProperties": False}


async def _add_fip(c: Caller, server_id: str, params: Any) -> Response:
    return await _floating_action(c, server_id, params, True)


async def _remove_fip(c: Caller, server_id: str, params: Any) -> Response:
    return await _floating_action(c, server_id, params, False)


ACTIONS["addFloatingIp"] = (_add_fip, ADDR, 1)
ACTIONS["removeFloatingIp"] = (_remove_fip, ADDR, 1)


# -- networks -------------------------------------------------------------------------------------
NOVA_NETWORK_KEYS = ("bridge", "bridge_interface", "broadcast", "cidr_v6", "created_at",
                     "deleted", "deleted_at", "dhcp_server", "dhcp_start", "dns1", "dns2",
                     "enable_dhcp", "gateway", "gateway_v6", "host", "injected", "mtu",
                     "multi_host", "netmask", "netmask_v6", "priority", "project_id",
                     "rxtx_base", "share_address", "updated_at", "vlan", "vpn_private_address",
                     "vpn_public_address", "vpn_public_port")


@router.get("/v2.1/os-networks")
async def list_nova_networks(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    nets = await _net(c).networks({}, ctx=c.ctx)
    out = []
    for n in nets:
        item: dict[str, Any] = {k: None for k in NOVA_NETWORK_KEYS}
        item.update(id=n["id"], label=n["name"], cidr=None)
        out.append(item)
    return json_response({"networks": out})


@router.get("/v2.1/os-networks/{network_id}")
async def show_nova_network(network_id: str, c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    net = await _net(c).network(network_id, ctx=c.ctx)
    if net is None:
        raise NotFound(f"Network {network_id} could not be found.")
    item: dict[str, Any] = {k: None for k in NOVA_NETWORK_KEYS}
    item.update(id=net["id"], label=net["name"], cidr=None)
    return json_response({"network": item})


@router.get("/v2.1/os-tenant-networks")
async def list_tenant_networks(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    nets = await _net(c).networks({}, ctx=c.ctx)
    return json_response({"networks": [{"id": n["id"], "label": n["name"], "cidr": None}
                                       for n in nets]})


@router.get("/v2.1/os-tenant-networks/{network_id}")
async def show_tenant_network(network_id: str, c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    net = await _net(c).network(network_id, ctx=c.ctx)
    if net is None:
        raise NotFound("Network not found")
    return json_response({"network": {"id": net["id"], "label": net["name"], "cidr": None}})

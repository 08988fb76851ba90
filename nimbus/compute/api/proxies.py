"""The proxy APIs Nova keeps below 2.36 (404 from it on), served from the network service
with the caller's token: security groups here; floating IPs and networks in proxy_networks,
images in proxy_images."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.clients.base import RemoteApiError
from nimbus.clients.network import NetworkClient
from nimbus.compute import instances, lifecycle
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.server_actions import target
from nimbus.web.errors import ApiError, BadRequest, Forbidden, NotFound
from nimbus.web.responses import json_response

router = APIRouter()
PROXY_MAX = 35


def proxy_only(c: Caller) -> None:
    c.below(PROXY_MAX + 1)


def remote_error(exc: RemoteApiError, not_found: str) -> ApiError:
    if exc.status == 404:
        return NotFound(not_found)
    if exc.status == 403:
        return Forbidden(exc.message)
    if exc.status == 409:
        return BadRequest(exc.message)
    return BadRequest(exc.message) if exc.status < 500 else ApiError(exc.message)


# -- security groups ------------------------------------------------------------------------------
def _net(c: Caller) -> NetworkClient:
    if not lifecycle.has_service(c.svc.cloud, "network"):
        raise NotFound("Networking is not available in this cloud.")
    return c.svc.cloud.clients.get(NetworkClient)


def rule_view(rule: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    out: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"],
                           "ip_protocol": protocol, "from_port": low, "to_port": high,
                           "group": {}, "ip_range": {}}
    remote = rule.get("remote_group_id")
    if remote:
        g = groups.get(remote, {})
        out["group"] = {"name": g.get("name"), "tenant_id": g.get("project_id")}
    else:
        out["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or "0.0.0.0/0"}
    return out


def group_view(group: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"id": group["id"], "name": group["name"],
            "description": group.get("description") or "",
            "tenant_id": group.get("project_id") or group.get("tenant_id") or "",
            "rules": [rule_view(r, groups) for r in group.get("security_group_rules", [])
                      if r.get("direction") == "ingress"]}


async def _groups(c: Caller, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    try:
        return await _net(c).security_groups(params or {}, ctx=c.ctx)
    except RemoteApiError as exc:
        raise remote_error(exc, "Security group not found.") from None


async def _remote_groups(c: Caller, groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Groups by id, with the groups their rules point at (for names and projects)."""
    by_id = {g["id"]: g for g in groups}
    wanted = {r["remote_group_id"] for g in groups for r in g.get("security_group_rules", [])
              if r.get("remote_group_id") and r["remote_group_id"] not in by_id}
    for gid in wanted:
        found = await _groups(c, {"id": gid})
        if found:
            by_id[gid] = found[0]
    return by_id


@router.get("/v2.1/os-security-groups")
async def list_security_groups(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    everyone = c.ctx.is_admin and v.truthy(c.query().get("all_tenants", "0"))
    groups = await _groups(c, {} if everyone else {"project_id": c.ctx.project_id})
    by_id = await _remote_groups(c, groups)
    return json_response({"security_groups": [group_view(g, by_id) for g in groups]})


def _uuid_or_400(value: str, what: str = "Security group") -> None:
    try:
        v.check(v.UUID, value)
    except v.Invalid:
        raise BadRequest(f"{what} id should be uuid") from None


async def _group(c: Caller, group_id: str) -> dict[str, Any]:
    proxy_only(c)
    _uuid_or_400(group_id)
    found = await _groups(c, {"id": group_id})
    if not found:
        raise NotFound(f"Security group {group_id} not found.")
    return found[0]


@router.get("/v2.1/os-security-groups/{group_id}")
async def show_security_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    group = await _group(c, group_id)
    return json_response({"security_group": group_view(group, await _remote_groups(c, [group]))})


SG_BODY = {"type": "object", "properties": {"security_group": {
    "type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": {"type": "string", "maxLength": 255}},
    "required": ["name", "description"], "additionalProperties": True}},
    "required": ["security_group"], "additionalProperties": False}


async def _sg_call(c: Caller, method: str, path: str, body: Any = None) -> Any:
    try:
        resp = await _net(c).request(method, path, ctx=c.ctx,
                                     **({"json": body} if body is not None else {}))
    except RemoteApiError as exc:
        raise remote_error(exc, "Security group not found.") from None
    return resp.json() if resp.content else None


@router.post("/v2.1/os-security-groups", openapi_extra=body_doc(SG_BODY))
async def create_security_group(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    body = (await c.body(SG_BODY))["security_group"]
    made = await _sg_call(c, "POST", "/v2.0/security-groups", {"security_group": {
        "name": body["name"], "description": body["description"]}})
    group = made["security_group"]
    return json_response({"security_group": group_view(group, {group["id"]: group})})


@router.put("/v2.1/os-security-groups/{group_id}", openapi_extra=body_doc(SG_BODY))
async def update_security_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    await _group(c, group_id)
    body = (await c.body(SG_BODY))["security_group"]
    made = await _sg_call(c, "PUT", f"/v2.0/security-groups/{group_id}", {"security_group": {
        "name": body["name"], "description": body["description"]}})
    group = made["security_group"]
    return json_response({"security_group": group_view(group, {group["id"]: group})})


@router.delete("/v2.1/os-security-groups/{group_id}")
async def delete_security_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    await _group(c, group_id)
    await _sg_call(c, "DELETE", f"/v2.0/security-groups/{group_id}")
    return Response(status_code=202)


RULE_BODY = {"type": "object", "properties": {"security_group_rule": {
    "type": "object", "properties": {
        "group_id": {"type": ["string", "null"]}, "parent_group_id": {"type": "string"},
        "to_port": {"type": ["integer", "string", "null"]},
        "from_port": {"type": ["integer", "string", "null"]},
        "ip_protocol": {"type": ["string", "null"]}, "cidr": {"type": ["string", "null"]}},
    "required": ["parent_group_id"], "additionalProperties": False}},
    "required": ["security_group_rule"], "additionalProperties": False}


@router.post("/v2.1/os-security-group-rules", openapi_extra=body_doc(RULE_BODY))
async def create_security_group_rule(c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    rule = (await c.body(RULE_BODY))["security_group_rule"]
    _uuid_or_400(rule["parent_group_id"])
    if rule.get("group_id"):
        _uuid_or_400(rule["group_id"])
    parent = await _group(c, rule["parent_group_id"])
    protocol = rule.get("ip_protocol")
    attrs: dict[str, Any] = {"security_group_id": parent["id"], "direction": "ingress",
                             "ethertype": "IPv4"}
    try:
        low = int(rule["from_port"]) if rule.get("from_port") not in (None, "") else None
        high = int(rule["to_port"]) if rule.get("to_port") not in (None, "") else None
    except ValueError:
        raise BadRequest("Invalid input received: Port value must be an integer.") from None
    if protocol:
        if protocol.lower() not in ("tcp", "udp", "icmp"):
            raise BadRequest(f"Invalid IP protocol {protocol}.")
        attrs["protocol"] = protocol.lower()
        if protocol.lower() == "icmp":
            if low not in (None, -1):
                attrs["port_range_min"] = low
            if high not in (None, -1):
                attrs["port_range_max"] = high
        else:
            if low is None or high is None:
                if not rule.get("group_id"):
                    raise BadRequest("Invalid input received: Port range must be given.")
            elif not (1 <= low <= high <= 65535):
                raise BadRequest(f"Invalid port range {low}:{high}. Valid TCP ports should be "
                                 "between 1-65535")
            else:
                attrs["port_range_min"], attrs["port_range_max"] = low, high
    elif low is not None or high is not None:
        raise BadRequest("Invalid input received: ip_protocol is needed with ports.")
    if rule.get("group_id"):
        await _group(c, rule["group_id"])
        attrs["remote_group_id"] = rule["group_id"]
    else:
        cidr = rule.get("cidr") or "0.0.0.0/0"
        try:
            v.check({"type": "string", "format": "cidr"}, cidr)
        except v.Invalid:
            raise BadRequest(f"Invalid cidr {cidr}.") from None
        attrs["remote_ip_prefix"] = cidr
        if ":" in cidr:
            attrs["ethertype"] = "IPv6"
    made = await _sg_call(c, "POST", "/v2.0/security-group-rules",
                          {"security_group_rule": attrs})
    groups = {parent["id"]: parent}
    if rule.get("group_id"):
        groups[rule["group_id"]] = await _group(c, rule["group_id"])
    out = rule_view(made["security_group_rule"], groups)
    if out["ip_range"] and rule.get("cidr"):
        out["ip_range"] = {"cidr": rule["cidr"]}
    return json_response({"security_group_rule": out})


@router.delete("/v2.1/os-security-group-rules/{rule_id}")
async def delete_security_group_rule(rule_id: str, c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    _uuid_or_400(rule_id, "Security group rule")
    await _sg_call(c, "DELETE", f"/v2.0/security-group-rules/{rule_id}")
    return Response(status_code=202)


@router.get("/v2.1/servers/{server_id}/os-security-groups")
async def server_security_groups(server_id: str, c: Caller = Depends(caller)) -> Response:
    proxy_only(c)
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-security-groups:list", target(inst))
    if not inst.network_info:
        return json_response({"security_groups": []})
    ports = await _net(c).ports({"device_id": inst.uuid})
    ids = sorted({g for p in ports for g in p.get("security_groups", [])})
    groups = [g for g in await _net(c).security_groups({}) if g["id"] in ids]
    by_id = await _remote_groups(c, groups)
    return json_response({"security_groups": [group_view(g, by_id) for g in groups]})

"""/os-hosts (below 2.43): hosts with their services, resources used per project, enable
and disable, and power actions the fake hypervisors accept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import func, select
from starlette.responses import Response

from nimbus.compute import hosts as host_logic
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.models import ComputeNode, Instance, Service
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()
POLICY = "os_compute_api:os-hypervisors:list"
SERVICE_NAMES = {"nova-compute": "compute", "nova-conductor": "conductor",
                 "nova-scheduler": "scheduler"}


@router.get("/v2.1/os-hosts")
async def list_hosts(c: Caller = Depends(caller)) -> Response:
    c.below(43)
    c.enforce(POLICY, {})
    zone = c.query().get("zone")
    async with c.svc.db.session() as session:
        services = list((await session.scalars(select(Service).order_by(Service.id))).all())
        zones = await host_logic.host_zones(session, c.svc.settings.default_availability_zone,
                                            sorted({s.host for s in services}))
    out = []
    for s in services:
        z = zones[s.host] if s.binary == host_logic.COMPUTE_BINARY \
            else c.svc.settings.internal_availability_zone
        if zone and zone != z:
            continue
        out.append({"host_name": s.host, "service": SERVICE_NAMES.get(s.binary, s.binary),
                    "zone": z})
    return json_response({"hosts": out})


async def _compute_service(c: Caller, host: str) -> Service:
    async with c.svc.db.session() as session:
        service = (await session.scalars(select(Service).where(
            Service.host == host, Service.binary == host_logic.COMPUTE_BINARY))).first()
    if service is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return service


@router.get("/v2.1/os-hosts/{host}")
async def show_host(host: str, c: Caller = Depends(caller)) -> Response:
    c.below(43)
    c.enforce(POLICY, {})
    await _compute_service(c, host)
    async with c.svc.db.session() as session:
        node = (await session.scalars(select(ComputeNode).where(
            ComputeNode.host == host))).first()
        rows = (await session.execute(select(
            Instance.project_id, func.coalesce(func.sum(Instance.vcpus), 0),
            func.coalesce(func.sum(Instance.memory_mb), 0),
            func.coalesce(func.sum(Instance.root_gb + Instance.ephemeral_gb), 0)).where(
            Instance.host == host, Instance.deleted.is_(False)).group_by(
            Instance.project_id))).all()
    def resource(project: str, cpu: int, ram: int, disk: int) -> dict[str, Any]:
        return {"resource": {"host": host, "project": project, "cpu": int(cpu),
                             "memory_mb": int(ram), "disk_gb": int(disk)}}
    used = [sum(int(r[i]) for r in rows) for i in (1, 2, 3)]
    out = [resource("(total)", node.vcpus if node else 0, node.memory_mb if node else 0,
                    node.local_gb if node else 0),
           resource("(used_now)", *used), resource("(used_max)", *used)]
    out += [resource(p, cpu, ram, disk) for p, cpu, ram, disk in rows]
    return json_response({"host": out})


UPDATE = {"type": "object", "properties": {
    "status": {"type": "string", "enum": ["enable", "disable", "Enable", "Disable",
                                          "ENABLE", "DISABLE"]},
    "maintenance_mode": {"type": "string", "enum": ["enable", "disable", "Enable",
                                                    "Disable", "ENABLE", "DISABLE"]}},
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
    "additionalProperties": False}


@router.put("/v2.1/os-hosts/{host}", openapi_extra=body_doc(UPDATE))
async def update_host(host: str, c: Caller = Depends(caller)) -> Response:
    c.below(43)
    c.enforce(POLICY, {})
    body = await c.body(UPDATE)
    await _compute_service(c, host)
    out: dict[str, Any] = {"host": host}
    async with c.svc.db.transaction() as session:
        service = (await session.scalars(select(Service).where(
            Service.host == host, Service.binary == host_logic.COMPUTE_BINARY))).first()
        if service is None:
            raise NotFound(f"Compute host {host} could not be found.")
        if "status" in body:
            service.disabled = body["status"].lower() == "disable"
            out["status"] = "disabled" if service.disabled else "enabled"
        if "maintenance_mode" in body:
            out["maintenance_mode"] = "on_maintenance" if \
                body["maintenance_mode"].lower() == "enable" else "off_maintenance"
    c.svc.services_changed()
    return json_response(out)


async def _power(c: Caller, host: str, action: str) -> Response:
    c.below(43)
    c.enforce(POLICY, {})
    await _compute_service(c, host)
    if action not in ("startup", "shutdown", "reboot"):
        raise BadRequest(f"Invalid action {action}")
    return json_response({"host": host, "power_action": action})


@router.get("/v2.1/os-hosts/{host}/startup")
async def startup(host: str, c: Caller = Depends(caller)) -> Response:
    return await _power(c, host, "startup")


@router.get("/v2.1/os-hosts/{host}/shutdown")
async def shutdown(host: str, c: Caller = Depends(caller)) -> Response:
    return await _power(c, host, "shutdown")


@router.get("/v2.1/os-hosts/{host}/reboot")
async def reboot(host: str, c: Caller = Depends(caller)) -> Response:
    return await _power(c, host, "reboot")

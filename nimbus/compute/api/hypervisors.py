"""/os-hypervisors (list, detail, show, statistics, uptime, search, servers) and
/os-services (list, enable/disable, force down, delete)."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.clients.placement import PlacementClient
from nimbus.common.timeutils import aware, utcnow
from nimbus.compute import hosts, lifecycle
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.models import ComputeNode, Instance, Service
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()


async def _usage(session: AsyncSession, host_names: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not host_names:
        return out
    for host, count, vcpus, ram, disk, busy in (await session.execute(select(
            Instance.host, func.count(), func.coalesce(func.sum(Instance.vcpus), 0),
            func.coalesce(func.sum(Instance.memory_mb), 0),
            func.coalesce(func.sum(Instance.root_gb + Instance.ephemeral_gb), 0),
            func.sum(case((Instance.task_state.is_not(None), 1), else_=0))).where(
            Instance.deleted.is_(False), Instance.host.in_(host_names)).group_by(
            Instance.host))).all():
        out[host] = {"running_vms": int(count), "vcpus_used": int(vcpus),
                     "memory_mb_used": int(ram), "local_gb_used": int(disk),
                     "current_workload": int(busy or 0)}
    return out


def _uptime(node: ComputeNode) -> str:
    started = aware(node.started_at or node.created_at)
    seconds = int((utcnow() - started).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return (f" {utcnow().strftime('%H:%M:%S')} up {days} days, {hours:2d}:{rest // 60:02d}, "
            "1 user,  load average: 0.00, 0.00, 0.00")


def _view(c: Caller, node: ComputeNode, service: Service, detail: bool,
          used: dict[str, int] | None, servers: list[Instance] | None,
          with_servers: bool) -> dict[str, Any]:
    uuid_ids = c.at(53)
    out: dict[str, Any] = {
        "id": node.uuid if uuid_ids else node.id,
        "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if hosts.is_up(service, c.svc.settings) else "down",
        "status": "disabled" if service.disabled else "enabled",
    }
    if detail:
        out.update(hypervisor_type=node.hypervisor_type,
                   hypervisor_version=node.hypervisor_version, host_ip=node.host_ip,
                   service={"id": service.uuid if uuid_ids else service.id, "host": node.host,
                            "disabled_reason": service.disabled_reason})
        if not c.at(88):
            u = used or {}
            ram_used = u.get("memory_mb_used", 0)
            disk_used = u.get("local_gb_used", 0)
            out.update(vcpus=node.vcpus, memory_mb=node.memory_mb, local_gb=node.local_gb,
                       vcpus_used=u.get("vcpus_used", 0), memory_mb_used=ram_used,
                       local_gb_used=disk_used, free_ram_mb=node.memory_mb - ram_used,
                       free_disk_gb=node.local_gb - disk_used,
                       current_workload=u.get("current_workload", 0),
                       running_vms=u.get("running_vms", 0),
                       disk_available_least=node.local_gb - disk_used)
            import json

            out["cpu_info"] = (node.cpu_info or {}) if c.at(28) else json.dumps(
                node.cpu_info or {})
        else:
            out["uptime"] = _uptime(node)
    if servers:
        out["servers"] = [{"name": f"instance-{i.id:08x}", "uuid": i.uuid} for i in servers]
    elif with_servers and c.at(75):
        out["servers"] = []
    return out


async def _nodes(session: AsyncSession, pattern: str | None = None) -> list[
        tuple[ComputeNode, Service]]:
    query = select(ComputeNode, Service).join(Service, Service.id == ComputeNode.service_id)
    if pattern is not None:
        query = query.where(ComputeNode.hypervisor_hostname.like(f"%{pattern}%"))
    return [(n, s) for n, s in (await session.execute(query.order_by(ComputeNode.id))).all()]


async def _servers_of(session: AsyncSession, host_names: list[str]) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    for inst in (await session.scalars(select(Instance).where(
            Instance.deleted.is_(False), Instance.host.in_(host_names)).order_by(
            Instance.id))).all():
        out.setdefault(inst.host or "", []).append(inst)
    return out


async def _list(c: Caller, detail: bool) -> Response:
    c.enforce("os_compute_api:os-hypervisors:list-detail" if detail
              else "os_compute_api:os-hypervisors:list", {})
    params = c.query()
    pattern = params.get("hypervisor_hostname_pattern") if c.at(53) else None
    with_servers = c.at(53) and _bool(params.get("with_servers", "false"))
    paged = c.at(33)
    if pattern is not None and paged and ("limit" in params or "marker" in params):
        raise BadRequest("Paging over hypervisors with the hypervisor_hostname_pattern query "
                         "parameter is not supported.")
    async with c.svc.db.session() as session:
        rows = await _nodes(session, pattern)
        if pattern is not None and not rows:
            raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
        if paged and pattern is None:
            marker = params.get("marker")
            if marker is not None:
                ids = [str(n.uuid if c.at(53) else n.id) for n, _ in rows]
                if marker not in ids:
                    raise BadRequest(f"marker [{marker}] not found")
                rows = rows[ids.index(marker) + 1:]
            limit = c.limit(params)
            rows = rows[:limit]
        names = [n.host for n, _ in rows]
        used = await _usage(session, names) if detail else {}
        servers = await _servers_of(session, names) if with_servers else {}
    items = [_view(c, n, s, detail, used.get(n.host), servers.get(n.host), with_servers)
             for n, s in rows]
    body: dict[str, Any] = {"hypervisors": items}
    if paged and pattern is None and items and len(items) == c.limit(params):
        body["hypervisors_links"] = [c.next_link(
            "os-hypervisors/detail" if detail else "os-hypervisors", items[-1]["id"])]
    return json_response(body)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on", "t", "y"):
        return True
    if low in ("0", "false", "no", "off", "f", "n"):
        return False
    raise BadRequest(f"Unrecognized value '{text}', acceptable values are: '0', '1', 'f', "
                     "'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


@router.get("/v2.1/os-hypervisors")
async def list_hypervisors(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=False)


@router.get("/v2.1/os-hypervisors/detail")
async def list_hypervisors_detail(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=True)


@router.get("/v2.1/os-hypervisors/statistics")
async def statistics(c: Caller = Depends(caller)) -> Response:
    c.below(88)
    c.enforce("os_compute_api:os-hypervisors:statistics", {})
    async with c.svc.db.session() as session:
        rows = await _nodes(session)
        used = await _usage(session, [n.host for n, _ in rows])
    keys = ("vcpus_used", "memory_mb_used", "local_gb_used", "current_workload",
            "running_vms")
    stats = {"count": len(rows), "vcpus": sum(n.vcpus for n, _ in rows),
             "memory_mb": sum(n.memory_mb for n, _ in rows),
             "local_gb": sum(n.local_gb for n, _ in rows)}
    for key in keys:
        stats[key] = sum(used.get(n.host, {}).get(key, 0) for n, _ in rows)
    stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
    stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
    stats["disk_available_least"] = stats["free_disk_gb"]
    return json_response({"hypervisor_statistics": stats})


async def _one(c: Caller, session: AsyncSession, ident: str) -> tuple[ComputeNode, Service]:
    if c.at(53):
        try:
            uuidlib.UUID(ident)
        except ValueError:
            raise BadRequest(f"Invalid uuid {ident}") from None
        cond = ComputeNode.uuid == ident
    else:
        if not ident.isdigit():
            raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")
        cond = ComputeNode.id == int(ident)
    row = (await session.execute(select(ComputeNode, Service).join(
        Service, Service.id == ComputeNode.service_id).where(cond))).first()
    if row is None:
        raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")
    return row[0], row[1]


@router.get("/v2.1/os-hypervisors/{ident}")
async def show_hypervisor(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-hypervisors:show", {})
    params = c.query()
    with_servers = c.at(53) and _bool(params.get("with_servers", "false"))
    async with c.svc.db.session() as session:
        node, service = await _one(c, session, ident)
        used = await _usage(session, [node.host])
        servers = await _servers_of(session, [node.host]) if with_servers else {}
    return json_response({"hypervisor": _view(c, node, service, True, used.get(node.host),
                                              servers.get(node.host), with_servers)})


@router.get("/v2.1/os-hypervisors/{ident}/uptime")
async def uptime(ident: str, c: Caller = Depends(caller)) -> Response:
    c.below(88)
    c.enforce("os_compute_api:os-hypervisors:uptime", {})
    async with c.svc.db.session() as session:
        node, service = await _one(c, session, ident)
    body = _view(c, node, service, False, None, None, False)
    body["uptime"] = _uptime(node)
    return json_response({"hypervisor": body})


@router.get("/v2.1/os-hypervisors/{pattern}/search")
async def search(pattern: str, c: Caller = Depends(caller)) -> Response:
    c.below(53)
    c.enforce("os_compute_api:os-hypervisors:search", {})
    async with c.svc.db.session() as session:
        rows = await _nodes(session, pattern)
    if not rows:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return json_response({"hypervisors": [_view(c, n, s, False, None, None, False)
                                          for n, s in rows]})


@router.get("/v2.1/os-hypervisors/{pattern}/servers")
async def servers(pattern: str, c: Caller = Depends(caller)) -> Response:
    c.below(53)
    c.enforce("os_compute_api:os-hypervisors:servers", {})
    async with c.svc.db.session() as session:
        rows = await _nodes(session, pattern)
        found = await _servers_of(session, [n.host for n, _ in rows])
    if not rows:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return json_response({"hypervisors": [_view(c, n, s, False, None, found.get(n.host), False)
                                          for n, s in rows]})


# -- services -------------------------------------------------------------------------------------
def _service_view(c: Caller, s: Service, zone: str) -> dict[str, Any]:
    return hosts.service_view(s, c.svc.settings, zone, c.at(53), c.at(11))


async def _zones(c: Caller, session: AsyncSession, services: list[Service]) -> dict[int, str]:
    zones = await hosts.host_zones(session, c.svc.settings.default_availability_zone,
                                   sorted({s.host for s in services}))
    return {s.id: zones[s.host] if s.binary == hosts.COMPUTE_BINARY
            else c.svc.settings.internal_availability_zone for s in services}


@router.get("/v2.1/os-services")
async def list_services(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-services:list", {})
    params = c.query()
    query = select(Service).order_by(Service.id)
    if params.get("host"):
        query = query.where(Service.host == params["host"])
    if params.get("binary"):
        query = query.where(Service.binary == params["binary"])
    async with c.svc.db.session() as session:
        rows = list((await session.scalars(query)).all())
        zones = await _zones(c, session, rows)
    return json_response({"services": [_service_view(c, s, zones[s.id]) for s in rows]})


LEGACY_BODY = {"type": "object", "properties": {
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "binary": {"type": "string", "minLength": 1, "maxLength": 255},
    "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
    "forced_down": v.BOOLEAN}, "required": ["host", "binary"],
    "additionalProperties": False}
UPDATE_253 = {"type": "object", "properties": {
    "status": {"type": "string", "enum": ["enabled", "disabled"]},
    "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
    "forced_down": v.BOOLEAN}, "additionalProperties": False}


async def _changed(c: Caller, service: Service) -> None:
    c.svc.services_changed()
    await c.svc.notify("service.update", {"host": service.host, "binary": service.binary,
                                          "disabled": service.disabled,
                                          "forced_down": service.forced_down})


@router.put("/v2.1/os-services/{ident}", openapi_extra=body_doc(UPDATE_253))
async def update_service(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-services:update", {})
    if not c.at(53):
        return await _legacy_update(c, ident)
    body = await c.body(UPDATE_253)
    if not body:
        raise BadRequest("No updates were requested. Fields 'status' or 'forced_down' should "
                         "be specified.")
    if "disabled_reason" in body and body.get("status") != "disabled":
        raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    try:
        uuidlib.UUID(ident)
    except ValueError:
        raise BadRequest(f"Invalid uuid {ident}") from None
    async with c.svc.db.transaction() as session:
        service = (await session.scalars(select(Service).where(Service.uuid == ident))).first()
        if service is None:
            raise NotFound(f"Service {ident} could not be found.")
        if service.binary != hosts.COMPUTE_BINARY and ("status" in body or
                                                       "forced_down" in body):
            raise BadRequest(f"Updating a {service.binary} service is not supported. Only "
                             "nova-compute services can be updated.")
        if "status" in body:
            service.disabled = body["status"] == "disabled"
            service.disabled_reason = body.get("disabled_reason") if service.disabled else None
        if "forced_down" in body:
            service.forced_down = v.truthy(body["forced_down"])
        service.updated_at = utcnow()
        zones = await _zones(c, session, [service])
        out = _service_view(c, service, zones[service.id])
    await _changed(c, service)
    return json_response({"service": out})


async def _legacy_update(c: Caller, action: str) -> Response:
    if action not in ("enable", "disable", "disable-log-reason", "force-down") or \
            (action == "force-down" and not c.at(11)):
        raise NotFound("Unknown action")
    body = await c.body(LEGACY_BODY)
    async with c.svc.db.transaction() as session:
        service = (await session.scalars(select(Service).where(
            Service.host == body["host"], Service.binary == body["binary"]))).first()
        if service is None:
            raise NotFound(f"Host '{body['host']}' is not mapped to any cell" if body[
                "binary"] == hosts.COMPUTE_BINARY else "Unknown service")
        out: dict[str, Any] = {"host": service.host, "binary": service.binary}
        if action == "enable":
            service.disabled, service.disabled_reason = False, None
            out["status"] = "enabled"
        elif action in ("disable", "disable-log-reason"):
            if action == "disable-log-reason" and not body.get("disabled_reason"):
                raise BadRequest("Missing disabled reason field")
            service.disabled = True
            service.disabled_reason = body.get("disabled_reason")
            out["status"] = "disabled"
            if action == "disable-log-reason":
                out["disabled_reason"] = service.disabled_reason
        else:
            if "forced_down" not in body:
                raise BadRequest("Missing forced_down field")
            service.forced_down = v.truthy(body["forced_down"])
            out["forced_down"] = service.forced_down
        service.updated_at = utcnow()
    await _changed(c, service)
    return json_response({"service": out})


@router.delete("/v2.1/os-services/{ident}")
async def delete_service(ident: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-services:delete", {})
    if c.at(53):
        try:
            uuidlib.UUID(ident)
        except ValueError:
            raise BadRequest(f"Invalid uuid {ident}") from None
        cond = Service.uuid == ident
    else:
        if not ident.isdigit():
            raise BadRequest(f"Invalid ID {ident}")
        cond = Service.id == int(ident)
    async with c.svc.db.transaction() as session:
        service = (await session.scalars(select(Service).where(cond))).first()
        if service is None:
            raise NotFound(f"Service {ident} not found.")
        nodes: list[str] = []
        if service.binary == hosts.COMPUTE_BINARY:
            hosted = await session.scalar(select(func.count()).select_from(Instance).where(
                Instance.host == service.host, Instance.deleted.is_(False)))
            if hosted:
                raise Conflict("Unable to delete compute service that is hosting instances. "
                               "Migrate or delete the instances first.")
            for node in (await session.scalars(select(ComputeNode).where(
                    ComputeNode.service_id == service.id))).all():
                nodes.append(node.uuid)
                await session.delete(node)
        await session.delete(service)
    if nodes and lifecycle.has_service(c.svc.cloud, "placement"):
        client = c.svc.cloud.clients.get(PlacementClient)
        for node_uuid in nodes:
            try:
                await client.delete_provider(node_uuid)
            except Exception:  # placement may still hold allocations; nothing else to do
                pass
    c.svc.services_changed()
    return Response(status_code=204)

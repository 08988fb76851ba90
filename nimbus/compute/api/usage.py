"""/os-simple-tenant-usage, /os-migrations and /servers/{id}/migrations."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import or_, select
from starlette.responses import Response

from nimbus.common.timeutils import aware, utcnow
from nimbus.compute import instances
from nimbus.compute.api.common import Caller, caller
from nimbus.compute.models import Instance, Migration
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _when(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    for fmt in FORMATS:
        try:
            return aware(datetime.strptime(value, fmt))
        except ValueError:
            continue
    raise BadRequest(f"Datetime is in invalid format: {value}")


def _stamp(value: datetime) -> str:
    return aware(value).strftime("%Y-%m-%dT%H:%M:%S.%f")


async def _usages(c: Caller, project: str | None, detailed: bool) -> list[dict[str, Any]]:
    params = c.query()
    start, stop = _when(params.get("start")), _when(params.get("end"))
    if not start < stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    query = select(Instance).where(
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > start),
        Instance.launched_at.is_not(None), Instance.launched_at < stop)
    if project is not None:
        query = query.where(Instance.project_id == project)
    paged = c.at(40)
    limit = c.limit(params)
    async with c.svc.db.session() as session:
        if paged and params.get("marker"):
            mark = (await session.scalars(select(Instance).where(
                Instance.uuid == params["marker"]))).first()
            if mark is None:
                raise BadRequest(f"marker [{params['marker']}] not found")
            query = query.where(Instance.id > mark.id)
        rows = list((await session.scalars(query.order_by(Instance.id).limit(limit))).all())
    tenants: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for inst in rows:
        began = max(aware(inst.launched_at or inst.created_at), start)
        ended = min(aware(inst.terminated_at), stop) if inst.terminated_at else stop
        hours = max((ended - began).total_seconds(), 0) / 3600.0
        local_gb = inst.root_gb + inst.ephemeral_gb
        t = tenants.setdefault(inst.project_id, {
            "tenant_id": inst.project_id, "total_local_gb_usage": 0.0,
            "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
            "start": _stamp(start), "stop": _stamp(stop), "server_usages": []})
        t["total_local_gb_usage"] += local_gb * hours
        t["total_vcpus_usage"] += inst.vcpus * hours
        t["total_memory_mb_usage"] += inst.memory_mb * hours
        t["total_hours"] += hours
        if detailed:
            launched = aware(inst.launched_at or inst.created_at)
            t["server_usages"].append({
                "instance_id": inst.uuid, "name": inst.display_name, "hours": hours,
                "memory_mb": inst.memory_mb, "local_gb": local_gb, "vcpus": inst.vcpus,
                "tenant_id": inst.project_id, "flavor": (inst.flavor or {}).get("name"),
                "started_at": _stamp(launched),
                "ended_at": _stamp(inst.terminated_at) if inst.terminated_at else None,
                "state": "terminated" if inst.deleted else inst.vm_state,
                "uptime": int(((aware(inst.terminated_at) if inst.terminated_at else now)
                               - launched).total_seconds())})
    out = list(tenants.values())
    if not detailed:
        for t in out:
            del t["server_usages"]
    c.request.state.usage_rows = rows
    return out


@router.get("/v2.1/os-simple-tenant-usage")
async def list_usage(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-simple-tenant-usage:list", {})
    detailed = c.query().get("detailed") == "1"
    usages = await _usages(c, None, detailed)
    body: dict[str, Any] = {"tenant_usages": usages}
    rows = c.request.state.usage_rows
    if c.at(40) and rows and len(rows) == c.limit(c.query()):
        body["tenant_usages_links"] = [c.next_link("os-simple-tenant-usage", rows[-1].uuid)]
    return json_response(body)


@router.get("/v2.1/os-simple-tenant-usage/{tenant_id}")
async def show_usage(tenant_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-simple-tenant-usage:show", {"project_id": tenant_id})
    usages = await _usages(c, tenant_id, True)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    rows = c.request.state.usage_rows
    if c.at(40) and rows and len(rows) == c.limit(c.query()):
        body["tenant_usage_links"] = [c.next_link(f"os-simple-tenant-usage/{tenant_id}",
                                                  rows[-1].uuid)]
    return json_response(body)


# -- migrations -----------------------------------------------------------------------------------
def migration_view(c: Caller, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id, "source_node": m.source_node, "dest_node": m.dest_node,
        "source_compute": m.source_compute, "dest_compute": m.dest_compute,
        "dest_host": m.dest_host, "status": m.status, "instance_uuid": m.instance_uuid,
        "old_instance_type_id": m.old_flavor_id, "new_instance_type_id": m.new_flavor_id,
        "created_at": _stamp(m.created_at), "updated_at": _stamp(m.updated_at)}
    if c.at(23):
        out["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in ("queued", "preparing",
                                                                 "running", "post-migrating"):
            out["links"] = c.links(f"servers/{m.instance_uuid}/migrations", m.id)
    if c.at(59):
        out["uuid"] = m.uuid
    if c.at(80):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


@router.get("/v2.1/os-migrations")
async def list_migrations(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-migrations:index", {})
    params = c.query()
    query = select(Migration).where(Migration.hidden.is_(False))
    if params.get("host"):
        query = query.where(or_(Migration.source_compute == params["host"],
                                Migration.dest_compute == params["host"]))
    for key, column in (("status", Migration.status), ("instance_uuid", Migration.instance_uuid),
                        ("migration_type", Migration.migration_type),
                        ("source_compute", Migration.source_compute)):
        if params.get(key):
            query = query.where(column == params[key])
    if c.at(80):
        for key, column in (("user_id", Migration.user_id),
                            ("project_id", Migration.project_id)):
            if params.get(key):
                query = query.where(column == params[key])
    limit = c.limit(params) if c.at(59) else c.svc.settings.max_limit * 100
    if c.at(59):
        for key, op in (("changes-since", "ge"), ("changes-before", "le")):
            if params.get(key):
                from nimbus.common.timeutils import parse_isotime

                try:
                    when = parse_isotime(params[key])
                except ValueError:
                    raise BadRequest(f"Invalid input for query parameters {key}.") from None
                query = query.where(Migration.updated_at >= when if op == "ge"
                                    else Migration.updated_at <= when)
    async with c.svc.db.session() as session:
        if c.at(59) and params.get("marker"):
            mark = (await session.scalars(select(Migration).where(
                Migration.uuid == params["marker"]))).first()
            if mark is None:
                raise BadRequest(f"Marker {params['marker']} could not be found.")
            query = query.where(Migration.id < mark.id)
        rows = list((await session.scalars(query.order_by(Migration.created_at.desc(),
                                                          Migration.id.desc()).limit(limit))
                     ).all())
    body: dict[str, Any] = {"migrations": [migration_view(c, m) for m in rows]}
    if c.at(59) and rows and len(rows) == limit:
        body["migrations_links"] = [c.next_link("os-migrations", rows[-1].uuid)]
    return json_response(body)


def live_view(c: Caller, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id, "server_uuid": m.instance_uuid, "source_node": m.source_node,
        "dest_node": m.dest_node, "source_compute": m.source_compute,
        "dest_compute": m.dest_compute, "dest_host": m.dest_host, "status": m.status,
        "memory_total_bytes": m.memory_total, "memory_processed_bytes": m.memory_processed,
        "memory_remaining_bytes": m.memory_remaining, "disk_total_bytes": m.disk_total,
        "disk_processed_bytes": m.disk_processed, "disk_remaining_bytes": m.disk_remaining,
        "created_at": _stamp(m.created_at), "updated_at": _stamp(m.updated_at)}
    if c.at(59):
        out["uuid"] = m.uuid
    if c.at(80):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


@router.get("/v2.1/servers/{server_id}/migrations")
async def server_migrations(server_id: str, c: Caller = Depends(caller)) -> Response:
    c.require(23)
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:servers:migrations:index", {"project_id": inst.project_id})
        rows = (await session.scalars(select(Migration).where(
            Migration.instance_uuid == inst.uuid, Migration.migration_type == "live-migration",
            Migration.status.in_(IN_PROGRESS)))).all()
    return json_response({"migrations": [live_view(c, m) for m in rows]})


async def _migration(c: Caller, server_id: str, migration_id: str, rule: str) -> Migration:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce(rule, {"project_id": inst.project_id})
        if not migration_id.isdigit():
            raise NotFound(f"Migration {migration_id} could not be found.")
        m = await session.get(Migration, int(migration_id))
    if m is None or m.instance_uuid != inst.uuid:
        raise NotFound(f"Migration {migration_id} for instance {server_id} could not be "
                       "found.")
    return m


@router.get("/v2.1/servers/{server_id}/migrations/{migration_id}")
async def show_server_migration(server_id: str, migration_id: str,
                                c: Caller = Depends(caller)) -> Response:
    c.require(23)
    m = await _migration(c, server_id, migration_id, "os_compute_api:servers:migrations:show")
    if m.migration_type != "live-migration" or m.status not in IN_PROGRESS:
        raise NotFound(f"In-progress live migration {migration_id} is not found for server "
                       f"{server_id}.")
    return json_response({"migration": live_view(c, m)})


@router.post("/v2.1/servers/{server_id}/migrations/{migration_id}/action")
async def force_complete(server_id: str, migration_id: str,
                         c: Caller = Depends(caller)) -> Response:
    c.require(22)
    await c.body({"type": "object", "properties": {"force_complete": {"type": "null"}},
                  "required": ["force_complete"], "additionalProperties": False})
    m = await _migration(c, server_id, migration_id,
                         "os_compute_api:servers:migrations:force_complete")
    if m.status != "running":
        raise BadRequest(f"Migration {migration_id} state of instance {server_id} is "
                         f"{m.status}. Cannot force_complete while the migration is in this "
                         "state.")
    return Response(status_code=202)


@router.delete("/v2.1/servers/{server_id}/migrations/{migration_id}")
async def abort_migration(server_id: str, migration_id: str,
                          c: Caller = Depends(caller)) -> Response:
    c.require(24)
    m = await _migration(c, server_id, migration_id, "os_compute_api:servers:migrations:delete")
    if m.migration_type != "live-migration":
        raise BadRequest(f"Migration {migration_id} for instance {server_id} is not a live "
                         "migration.")
    allowed = ("running", "queued", "preparing") if c.at(65) else ("running",)
    if m.status not in allowed:
        raise BadRequest(f"Migration {migration_id} state of instance {server_id} is "
                         f"{m.status}. Cannot abort live migration while the migration is "
                         "in this state.")
    return Response(status_code=202)


# -- instance usage audit log ---------------------------------------------------------------------
async def _audit(c: Caller, before: datetime | None) -> dict[str, Any]:
    """No periodic usage audit runs here: every compute host shows as not run for the last
    completed month."""
    from sqlalchemy import select as sql_select

    from nimbus.compute import hosts as host_logic
    from nimbus.compute.models import Service

    now = before or utcnow().replace(tzinfo=None)
    end = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
    async with c.svc.db.session() as session:
        names = sorted(set((await session.scalars(sql_select(Service.host).where(
            Service.binary == host_logic.COMPUTE_BINARY))).all()))
    return {"period_beginning": str(begin), "period_ending": str(end),
            "num_hosts": len(names), "num_hosts_done": 0, "num_hosts_running": 0,
            "num_hosts_not_run": len(names), "hosts_not_run": names, "total_instances": 0,
            "total_errors": 0, "overall_status": f"0 of {len(names)} hosts done. 0 errors.",
            "log": {}}


@router.get("/v2.1/os-instance_usage_audit_log")
async def list_audit(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-instance-usage-audit-log:list", {})
    return json_response({"instance_usage_audit_logs": await _audit(c, None)})


@router.get("/v2.1/os-instance_usage_audit_log/{before}")
async def show_audit(before: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-instance-usage-audit-log:show", {})
    try:
        when = datetime.strptime(before, "%Y-%m-%d %H:%M:%S.%f" if "." in before
                                 else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"Invalid timestamp for date {before}") from None
    return json_response({"instance_usage_audit_log": await _audit(c, when)})

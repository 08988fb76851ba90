"""/servers: create, list (and detail), show, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.common.timeutils import parse_isotime
from nimbus.compute import hosts, instances, lifecycle, listing, rpc, states
from nimbus.compute.api import server_schemas as schemas
from nimbus.compute.api import server_views as views
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.create import Creator, canonical_ip
from nimbus.compute.errors import locked
from nimbus.compute.models import Instance, Service
from nimbus.web.errors import BadRequest, Forbidden
from nimbus.web.responses import json_response

router = APIRouter()

NON_ADMIN_FILTERS = ("reservation_id", "name", "status", "image", "flavor", "ip",
                     "changes-since", "all_tenants")


def _allowed_filters(c: Caller) -> tuple[str, ...]:
    allowed: tuple[str, ...] = NON_ADMIN_FILTERS
    if c.at(5):
        allowed += ("ip6",)
    if c.at(26):
        allowed += schemas.TAG_FILTERS
    if c.at(66):
        allowed += ("changes-before",)
    if c.at(73):
        allowed += ("locked",)
    if c.at(83):
        allowed += ("availability_zone", "config_drive", "key_name", "created_at",
                    "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
                    "progress", "user_id")
    if c.at(90):
        allowed += ("hostname",)
    return allowed


def _sort(c: Caller) -> list[tuple[str, str]]:
    keys = c.query_list("sort_key")
    dirs = c.query_list("sort_dir")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {d}. "
                             f"'{d}' is not one of ['asc', 'desc']")
    valid = set(schemas.SORT_KEYS) | ({"locked"} if c.at(73) else set())
    ignored = set() if c.at(75) else set(schemas.IGNORED_SORT_KEYS) - (
        {"locked"} if c.at(73) else set())
    out: list[tuple[str, str]] = []
    for i, key in enumerate(keys):
        if key not in valid and key not in ignored:
            raise BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
        if key in ignored or (key in ("host", "node") and not c.ctx.is_admin):
            continue
        out.append((key, dirs[i] if i < len(dirs) else "desc"))
    return out or [("created_at", dirs[0] if dirs and not keys else "desc")]


def _parse_time(value: str, name: str) -> Any:
    try:
        return parse_isotime(value)
    except ValueError:
        raise BadRequest(f"Invalid filter field: {name}.") from None


def _build_query(c: Caller, detail: bool) -> listing.Query:
    raw = dict(c.request.query_params)
    if c.at(75):
        allowed = set(schemas.LIST_FILTERS) | set(schemas.TAG_FILTERS) | {
            "changes-before", "locked"}
        unknown = sorted(k for k in raw if k not in allowed and not k.startswith("_"))
        if unknown:
            raise BadRequest(f"Invalid input for query parameters {unknown[0]}. Value: "
                             f"{raw[unknown[0]]}. Additional properties are not allowed "
                             f"('{unknown[0]}' was unexpected)")
    for key in ("block_device_mapping", "services", "metadata", "system_metadata",
                "info_cache", "security_groups", "pci_devices"):
        if key in raw:
            raise BadRequest(f"Invalid filter field: {key}.")
    if any(k.startswith("_") for k in raw):
        raise BadRequest(f"Invalid filter field: {next(k for k in raw if k.startswith('_'))}.")
    opts = {k: val for k, val in raw.items() if k not in ("limit", "marker", "sort_key",
                                                         "sort_dir")}
    if not c.allowed("os_compute_api:servers:allow_all_filters"):
        opts = {k: val for k, val in opts.items() if k in _allowed_filters(c)}
    q = listing.Query(limit=c.limit(raw), marker=raw.get("marker"), sort=_sort(c))
    if "status" in raw:
        pairs = listing.status_pairs(c.query_list("status"))
        if not pairs:
            if c.at(38):
                raise BadRequest("Invalid status value")
            q.status_pairs = []
        else:
            q.status_pairs = pairs
    if "changes-since" in opts:
        q.changes_since = _parse_time(opts["changes-since"], "changes-since")
    if "changes-before" in opts:
        q.changes_before = _parse_time(opts["changes-before"], "changes-before")
        if q.changes_since and q.changes_before < q.changes_since:
            raise BadRequest("The value of changes-since must be less than or equal to "
                             "changes-before.")
    if "deleted" in opts:
        q.deleted = v.truthy(opts["deleted"])
    elif q.changes_since or q.changes_before:
        q.deleted = None
    if opts.get("vm_state") == "deleted" or c.query_list("vm_state") == ["deleted"]:
        if not c.ctx.is_admin:
            raise Forbidden("Only administrators may list deleted instances")
        q.deleted = True
    all_tenants = "all_tenants" in opts and opts["all_tenants"].strip().lower() not in (
        "false", "0", "off", "no", "f", "n")
    if all_tenants:
        c.enforce("os_compute_api:servers:detail:get_all_tenants" if detail
                  else "os_compute_api:servers:index:get_all_tenants")
        project = opts.get("project_id") or opts.get("tenant_id")
        if project:
            q.exact["project_id"] = [project]
    else:
        q.project_id = c.ctx.project_id
    for key in ("user_id", "uuid", "host", "image", "image_ref", "flavor", "reservation_id",
                "launch_index"):
        if key in opts:
            q.exact[key] = c.query_list(key) or [opts[key]]
    for key in listing.REGEX:
        if key in opts:
            q.regex[key] = opts[key]
    if "vm_state" in opts and q.deleted is not True:
        q.vm_states = c.query_list("vm_state")
    if "task_state" in opts:
        q.task_states = [None if t in ("", "None", "none") else t
                         for t in c.query_list("task_state")]
    if "power_state" in opts:
        try:
            q.power_state = [int(p) for p in c.query_list("power_state")]
        except ValueError:
            q.power_state = []
    if "progress" in opts:
        try:
            q.progress = int(opts["progress"])
        except ValueError:
            raise BadRequest("Invalid filter field: progress.") from None
    for key in ("created_at", "launched_at", "terminated_at"):
        if key in opts:
            setattr(q, key, _parse_time(opts[key], key))
    if "config_drive" in opts:
        q.config_drive = opts["config_drive"]
    if "locked" in opts:
        text = opts["locked"].strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f"):
            raise BadRequest(f"Unrecognized value '{opts['locked']}', acceptable values "
                             "are 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off'")
        q.locked = v.truthy(text)
    q.ip = opts.get("ip")
    q.ip6 = opts.get("ip6")
    if c.at(26):
        for key, attr in (("tags", "tags"), ("tags-any", "tags_any"),
                          ("not-tags", "not_tags"), ("not-tags-any", "not_tags_any")):
            if key in opts:
                setattr(q, attr, [t for t in opts[key].split(",") if t])
    return q


async def _list(c: Caller, detail: bool) -> Response:
    c.enforce("os_compute_api:servers:detail" if detail else "os_compute_api:servers:index")
    q = _build_query(c, detail)
    async with c.svc.db.session() as session:
        rows = [] if q.status_pairs == [] else await listing.run(session, q,
                                                                brief=not detail)
        if detail:
            extras = await views.Extras.load(c, session, rows)
    if detail:
        esa = c.allowed(views.ESA)
        specs = c.at(47) and c.allowed("os_compute_api:servers:show:flavor-extra-specs")
        host_status = c.allowed("os_compute_api:servers:show:host_status")
        items = [views.show(c, r, extras, show_esa=esa, show_specs=specs,
                            show_host_status=host_status) for r in rows]
    else:
        items = [views.basic(c, r) for r in rows]
    body: dict[str, Any] = {"servers": items}
    if rows and len(rows) == q.limit:
        body["servers_links"] = [c.next_link("servers/detail" if detail else "servers",
                                             rows[-1].uuid)]
    return json_response(body)


@router.get("/v2.1/servers")
async def list_servers(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=False)


@router.get("/v2.1/servers/detail")
async def list_servers_detail(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=True)


@router.get("/v2.1/servers/{server_id}")
async def show_server(server_id: str, c: Caller = Depends(caller)) -> Response:
    if c.at(102):
        c.query({"type": "object", "properties": {}, "additionalProperties": False})
    async with c.svc.db.session() as session:
        inst, known = await instances.get_with_extras(session, server_id, c.ctx,
                                                      tags=c.at(26), groups=c.at(71))
        c.enforce("os_compute_api:servers:show", target(inst))
        body = await views.render_one(c, session, inst, known)
    return json_response({"server": body})


def target(inst: Instance) -> dict[str, Any]:
    return {"project_id": inst.project_id, "user_id": inst.user_id}


@router.post("/v2.1/servers", openapi_extra=body_doc(schemas.CREATE_2102))
async def create_server(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:servers:create")
    body = await c.body(schemas.create_schema(c.at))
    server = body["server"]
    if server.get("networks") not in (None, "none", "auto") and \
            any(n.get("port") for n in server["networks"]):
        c.enforce("os_compute_api:servers:create:attach_network")
    creator = Creator(c.svc, c.ctx, c.at, lambda rule: c.allowed(rule))
    created = await creator.create(body)
    if v.truthy(server.get("return_reservation_id", False)):
        return json_response({"reservation_id": created.reservation_id}, 202)
    out: dict[str, Any] = {
        "id": created.uuids[0], "links": c.links("servers", created.uuids[0]),
        "OS-DCF:diskConfig": "AUTO" if created.auto_disk_config else "MANUAL",
        "security_groups": server.get("security_groups") or [{"name": "default"}],
        "adminPass": created.admin_password}
    return json_response({"server": out}, 202)


@router.put("/v2.1/servers/{server_id}", openapi_extra=body_doc(schemas.UPDATE_2104))
async def update_server(server_id: str, c: Caller = Depends(caller)) -> Response:
    body = (await c.body(schemas.update_schema(c.at)))["server"]
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:servers:update", target(inst))
        updates: dict[str, Any] = {}
        if "name" in body:
            updates["display_name"] = body["name"]
        if "description" in body:
            updates["display_description"] = body["description"]
        if "accessIPv4" in body:
            updates["access_ip_v4"] = canonical_ip(body["accessIPv4"])
        if "accessIPv6" in body:
            updates["access_ip_v6"] = canonical_ip(body["accessIPv6"])
        if "OS-DCF:diskConfig" in body:
            updates["auto_disk_config"] = body["OS-DCF:diskConfig"] == "AUTO"
        if "hostname" in body:
            updates["hostname"] = body["hostname"]
        if "pinned_availability_zone" in body:
            updates["pinned_availability_zone"] = await _repin(
                c, session, inst, body["pinned_availability_zone"])
        instances.apply(inst, updates, changes)
    await changes.send(c.svc)
    await c.svc.notify("compute.instance.update", instances.state_payload(inst))
    return json_response({"server": await views.refresh(c, server_id)})


async def _repin(c: Caller, session: Any, inst: Instance, zone: str | None) -> str | None:
    from nimbus.web.errors import Conflict

    current = inst.pinned_availability_zone
    if zone is None or zone == current:
        return zone
    if current is not None:
        raise Conflict("Cannot change the pinned availability zone from one zone to another; "
                       "unpin the server first.")
    if zone != inst.availability_zone:
        raise Conflict(f"Cannot pin the server to availability zone {zone}: it is in "
                       f"{inst.availability_zone}.")
    return zone


@router.delete("/v2.1/servers/{server_id}")
async def delete_server(server_id: str, c: Caller = Depends(caller)) -> Response:
    await delete(c, server_id, "os_compute_api:servers:delete", force=False)
    return Response(status_code=204)


async def delete(c: Caller, server_id: str, rule: str, *, force: bool) -> None:
    """Delete in any state: by the host's agent when it is up, else right here."""
    svc = c.svc
    request_id = c.ctx.global_request_id or c.ctx.request_id
    changes = instances.Changes()
    consumers: list[str] = []
    async with svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce(rule, target(inst))
        if inst.locked and not c.ctx.is_admin:
            raise locked(server_id)
        host = inst.host
        service = None
        if host:
            service = (await session.scalars(select_service(host))).first()
        up = service is not None and hosts.is_up(service, svc.settings)
        instances.start_action(session, inst, "delete", c.ctx)
        start_payload = instances.state_payload(inst)
        network_info = list(inst.network_info or [])
        by_agent = bool(host) and up and inst.vm_state != states.SHELVED_OFFLOADED
        if by_agent:
            instances.apply(inst, {"task_state": states.DELETING}, changes)
            payload = instances.to_agent(inst)
        else:
            consumers = await lifecycle.mark_deleted(session, inst, request_id, changes)
            end_payload = instances.state_payload(inst)
    await svc.notify("compute.instance.delete.start", start_payload)
    if by_agent and host:
        await changes.send(svc)
        await svc.cloud.bus.cast(rpc.agent(host), "terminate_instance", instance=payload,
                                 request_id=request_id)
        return
    await lifecycle.release(svc, server_id, consumers, network_info, end_payload, changes,
                            ports=True)


def select_service(host: str) -> Any:
    from sqlalchemy import select

    return select(Service).where(Service.host == host, Service.binary == hosts.COMPUTE_BINARY)

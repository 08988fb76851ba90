"""POST /servers/{id}/action: power and state actions, console output, lock, reset state,
security groups, force delete. Moves (resize, migrations, rebuild, shelve, images) live in
server_moves; both register their handlers in ACTIONS."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.bus import BusTimeout, RemoteError
from nimbus.clients.network import NetworkClient
from nimbus.compute import instances, lifecycle, rpc, states
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.errors import invalid_state, locked
from nimbus.compute.models import Instance
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

Handler = Callable[[Caller, str, Any], Awaitable[Response]]
ACTIONS: dict[str, tuple[Handler, dict[str, Any] | None, int]] = {}


def action(name: str, schema: dict[str, Any] | None = None,
           since: int = 1) -> Callable[[Handler], Handler]:
    """Register a handler for {name: params}; `schema` checks params."""
    def wrap(fn: Handler) -> Handler:
        ACTIONS[name] = (fn, schema, since)
        return fn
    return wrap


def target(inst: Instance) -> dict[str, Any]:
    return {"project_id": inst.project_id, "user_id": inst.user_id}


def check_state(inst: Instance, method: str, vm: Sequence[str] | None,
                task: Sequence[str | None] | None = (None,)) -> None:
    if vm is not None and inst.vm_state not in vm:
        raise invalid_state("vm_state", inst.vm_state, method, inst.uuid)
    if task is not None and inst.task_state not in task:
        raise invalid_state("task_state", inst.task_state, method, inst.uuid)


def check_lock(c: Caller, inst: Instance) -> None:
    if inst.locked and not c.ctx.is_admin:
        raise locked(inst.uuid)


@dataclass
class Step:
    """One state-changing action handed to the instance's agent."""

    rule: str
    method: str  # name in Nova's conflict messages ("reboot", "stop", ...)
    instance_action: str
    agent_method: str
    vm: list[str] | None
    task: list[str | None] | None
    new_task: str | None
    check_lock: bool = True


async def run_step(c: Caller, server_id: str, step: Step, **kwargs: Any) -> Instance:
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce(step.rule, target(inst))
        if step.check_lock:
            check_lock(c, inst)
        check_state(inst, step.method, step.vm, step.task)
        if not inst.host:
            raise Conflict(f"Instance {server_id} is not ready")
        instances.apply(inst, {"task_state": step.new_task}, changes)
        instances.start_action(session, inst, step.instance_action, c.ctx)
        payload = instances.to_agent(inst)
        host = inst.host
    await changes.send(c.svc)
    await c.svc.cloud.bus.cast(rpc.agent(host), step.agent_method, instance=payload,
                               request_id=c.ctx.global_request_id or c.ctx.request_id,
                               **kwargs)
    return inst


ACTIVE_ISH = [states.ACTIVE, states.STOPPED, states.PAUSED_VM, states.SUSPENDED_VM,
              states.ERROR]
REBOOT_TASKS: list[str | None] = [None, states.REBOOTING, states.REBOOT_PENDING,
                                  states.REBOOT_STARTED, states.REBOOTING_HARD,
                                  states.REBOOT_PENDING_HARD, states.REBOOT_STARTED_HARD]


@action("reboot", {"type": "object", "properties": {"type": {
    "type": "string", "enum": ["HARD", "Hard", "hard", "SOFT", "Soft", "soft"]}},
    "required": ["type"], "additionalProperties": False})
async def reboot(c: Caller, server_id: str, params: Any) -> Response:
    hard = params["type"].upper() == "HARD"
    step = Step("os_compute_api:servers:reboot", "reboot", "reboot", "reboot_instance",
                ACTIVE_ISH if hard else [states.ACTIVE],
                REBOOT_TASKS if hard else [None],
                states.REBOOTING_HARD if hard else states.REBOOTING)
    await run_step(c, server_id, step, reboot_type="HARD" if hard else "SOFT")
    return Response(status_code=202)


def _simple(name: str, rule: str, method: str, instance_action: str, agent_method: str,
            vm: list[str], new_task: str) -> None:
    async def handler(c: Caller, server_id: str, params: Any) -> Response:
        step = Step(rule, method, instance_action, agent_method, vm, [None], new_task)
        await run_step(c, server_id, step)
        return Response(status_code=202)
    ACTIONS[name] = (handler, None, 1)


_simple("os-stop", "os_compute_api:servers:stop", "stop", "stop", "stop_instance",
        [states.ACTIVE, states.ERROR], states.POWERING_OFF)
_simple("os-start", "os_compute_api:servers:start", "start", "start", "start_instance",
        [states.STOPPED], states.POWERING_ON)
_simple("pause", "os_compute_api:os-pause-server:pause", "pause", "pause", "pause_instance",
        [states.ACTIVE], states.PAUSING)
_simple("unpause", "os_compute_api:os-pause-server:unpause", "unpause", "unpause",
        "unpause_instance", [states.PAUSED_VM], states.UNPAUSING)
_simple("suspend", "os_compute_api:os-suspend-server:suspend", "suspend", "suspend",
        "suspend_instance", [states.ACTIVE], states.SUSPENDING)
_simple("resume", "os_compute_api:os-suspend-server:resume", "resume", "resume",
        "resume_instance", [states.SUSPENDED_VM], states.RESUMING)
_simple("unrescue", "os_compute_api:os-unrescue", "unrescue", "unrescue",
        "unrescue_instance", [states.RESCUED], states.UNRESCUING)


@action("rescue", {"type": ["object", "null"], "properties": {
    "adminPass": {"type": "string"}, "rescue_image_ref": v.UUID},
    "additionalProperties": False})
async def rescue(c: Caller, server_id: str, params: Any) -> Response:
    password = (params or {}).get("adminPass") or secrets.token_urlsafe(9)[:12]
    step = Step("os_compute_api:os-rescue", "rescue", "rescue", "rescue_instance",
                [states.ACTIVE, states.STOPPED, states.ERROR], [None], states.RESCUING)
    await run_step(c, server_id, step, rescue_password=password)
    return json_response({"adminPass": password})


@action("changePassword", {"type": "object", "properties": {"adminPass": {"type": "string"}},
                           "required": ["adminPass"], "additionalProperties": False})
async def change_password(c: Caller, server_id: str, params: Any) -> Response:
    step = Step("os_compute_api:os-admin-password", "set_admin_password", "changePassword",
                "set_admin_password", [states.ACTIVE], [None], states.UPDATING_PASSWORD)
    await run_step(c, server_id, step, password=params["adminPass"])
    return Response(status_code=202)


@action("trigger_crash_dump", {"type": "null"}, since=17)
async def crash_dump(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:servers:trigger_crash_dump", target(inst))
        check_lock(c, inst)
        check_state(inst, "trigger_crash_dump", [states.ACTIVE, states.PAUSED_VM,
                                                 states.RESCUED, states.RESIZED, states.ERROR])
        instances.start_action(session, inst, "trigger_crash_dump", c.ctx)
    return Response(status_code=202)


LOCK_273 = {"type": ["object", "null"], "properties": {
    "locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}},
    "additionalProperties": False}


@action("lock")
async def lock(c: Caller, server_id: str, params: Any) -> Response:
    if c.at(73):
        v.validate({"type": "object", "properties": {"lock": LOCK_273}}, {"lock": params})
    else:
        params = None
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-lock-server:lock", target(inst))
        if not inst.locked:
            by = "owner" if c.ctx.project_id == inst.project_id else "admin"
            instances.apply(inst, {"locked": True, "locked_by": by,
                                   "locked_reason": (params or {}).get("locked_reason")},
                            changes)
            instances.start_action(session, inst, "lock", c.ctx)
    await c.svc.notify("compute.instance.lock", instances.state_payload(inst))
    return Response(status_code=202)


@action("unlock")
async def unlock(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-lock-server:unlock", target(inst))
        if inst.locked and inst.locked_by == "admin" and c.ctx.project_id == inst.project_id:
            c.enforce("os_compute_api:os-lock-server:unlock:unlock_override", target(inst))
        if inst.locked:
            instances.apply(inst, {"locked": False, "locked_by": None, "locked_reason": None})
            instances.start_action(session, inst, "unlock", c.ctx)
    await c.svc.notify("compute.instance.unlock", instances.state_payload(inst))
    return Response(status_code=202)


@action("os-resetState", {"type": "object", "properties": {"state": {
    "type": "string", "enum": ["active", "error"]}}, "required": ["state"],
    "additionalProperties": False})
async def reset_state(c: Caller, server_id: str, params: Any) -> Response:
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-admin-actions:reset_state", target(inst))
        instances.apply(inst, {"vm_state": params["state"], "task_state": None}, changes)
        instances.start_action(session, inst, "resetState", c.ctx)
    await changes.send(c.svc)
    return Response(status_code=202)


@action("injectNetworkInfo")
async def inject_network_info(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-admin-actions:inject_network_info", target(inst))
    return Response(status_code=202)


@action("forceDelete")
async def force_delete(c: Caller, server_id: str, params: Any) -> Response:
    from nimbus.compute.api.servers import delete

    await delete(c, server_id, "os_compute_api:os-deferred-delete:force", force=True)
    return Response(status_code=202)


@action("restore")
async def restore(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-deferred-delete:restore", target(inst))
        check_state(inst, "restore", [states.SOFT_DELETED])
    return Response(status_code=202)


@action("os-getConsoleOutput", {"type": "object", "properties": {"length": {
    "type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$", "minimum": -1}},
    "additionalProperties": False})
async def console_output(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-console-output", target(inst))
        if not inst.host or inst.vm_state in (states.BUILDING, states.SHELVED_OFFLOADED) or \
                inst.vm_state == states.ERROR and not inst.launched_at:
            raise Conflict(f"Instance {server_id} is not ready")
        payload = instances.to_agent(inst)
    raw = (params or {}).get("length")
    length = None if raw in (None, "", -1, "-1") else int(raw)
    try:
        output = await c.svc.cloud.bus.call(rpc.agent(inst.host), "get_console_output",
                                            instance=payload, length=length, timeout=30)
    except (BusTimeout, RemoteError) as exc:
        raise Conflict(f"Instance {server_id} is not ready: {exc}") from None
    return json_response({"output": output})


SG_SCHEMA = {"type": "object", "properties": {"name": {
    "type": "string", "minLength": 1, "maxLength": 255}}, "required": ["name"],
    "additionalProperties": False}


async def _security_group(c: Caller, server_id: str, name: str, adding: bool) -> Response:
    rule = "os_compute_api:os-security-groups:add" if adding \
        else "os_compute_api:os-security-groups:remove"
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce(rule, target(inst))
        vifs = list(inst.network_info or [])
    if not lifecycle.has_service(c.svc.cloud, "network"):
        raise NotFound(f"Security group {name} not found for project {inst.project_id}.")
    client = c.svc.cloud.clients.get(NetworkClient)
    groups = await client.security_groups({"project_id": inst.project_id})
    match = [g for g in groups if g["id"] == name or g["name"] == name]
    if not match:
        raise NotFound(f"Security group {name} not found for project {inst.project_id}.")
    group_id = match[0]["id"]
    if not vifs:
        raise BadRequest(f"Instance {server_id} has no network interfaces")
    ports = [await client.port(vif["port_id"]) for vif in vifs]
    current = [set(p.get("security_groups") or []) for p in ports if p]
    if adding and all(group_id in cur for cur in current):
        raise BadRequest(f"Security group {name} is already associated with the instance "
                         f"{server_id}")
    if not adding and not any(group_id in cur for cur in current):
        raise BadRequest(f"Security group {name} not associated with the instance "
                         f"{server_id}")
    for port in ports:
        if port is None:
            continue
        groups_now = list(port.get("security_groups") or [])
        new = groups_now + [group_id] if adding else [g for g in groups_now if g != group_id]
        if new != groups_now:
            await client.update_port(port["id"], {"security_groups": list(dict.fromkeys(new))})
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        current_names = list(inst.security_groups or [])
        if adding and match[0]["name"] not in current_names:
            current_names.append(match[0]["name"])
        if not adding:
            current_names = [n for n in current_names if n != match[0]["name"]]
        instances.apply(inst, {"security_groups": current_names})
        instances.start_action(session, inst, "addSecurityGroup" if adding
                               else "removeSecurityGroup", c.ctx)
    return Response(status_code=202)


@action("addSecurityGroup", SG_SCHEMA)
async def add_security_group(c: Caller, server_id: str, params: Any) -> Response:
    return await _security_group(c, server_id, params["name"], True)


@action("removeSecurityGroup", SG_SCHEMA)
async def remove_security_group(c: Caller, server_id: str, params: Any) -> Response:
    return await _security_group(c, server_id, params["name"], False)


ACTION_DOC = {"type": "object", "minProperties": 1, "maxProperties": 1}


@router.post("/v2.1/servers/{server_id}/action", openapi_extra=body_doc(ACTION_DOC))
async def server_action(server_id: str, c: Caller = Depends(caller)) -> Response:
    from nimbus.compute.api import server_moves  # noqa: F401 - registers its actions

    body = await c.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Malformed request body")
    name, params = next(iter(body.items()))
    entry = ACTIONS.get(name)
    if entry is None or not c.at(entry[2]):
        raise BadRequest(f"There is no such action: {name}")
    handler, schema, _ = entry
    if schema is not None:
        v.validate({"type": "object", "properties": {name: schema}}, body)
    return await handler(c, server_id, params)

"""/os-quota-sets (per project, optionally per user) and /os-quota-class-sets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.clients.identity import IdentityClient
from nimbus.compute import quotas as logic
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response

router = APIRouter()

_LIMIT = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$", "minimum": -1,
          "maximum": 0x7FFFFFFF}


def _set_schema(resources: tuple[str, ...], key: str, force: bool) -> dict[str, Any]:
    props: dict[str, Any] = {name: _LIMIT for name in resources}
    if force:
        props["force"] = v.BOOLEAN
    return {"type": "object", "properties": {key: {
        "type": "object", "properties": props, "additionalProperties": False}},
        "required": [key], "additionalProperties": False}


def _visible(c: Caller) -> tuple[str, ...]:
    hidden = logic.filtered(c.at)
    return tuple(r for r in logic.RESOURCES if r not in hidden)


UPDATE_DOC = _set_schema(logic.RESOURCES, "quota_set", True)
CLASS_DOC = _set_schema(logic.RESOURCES, "quota_class_set", False)
USER_QUERY = {"type": "object", "properties": {"user_id": {"type": "string"}},
              "additionalProperties": True}


def _query(c: Caller) -> dict[str, str]:
    return c.query({**USER_QUERY, "additionalProperties": not c.at(75)})


async def _check_project(c: Caller, project_id: str) -> None:
    """Nova asks identity whether the project exists (400 if it does not)."""
    try:
        found = await c.svc.cloud.clients.get(IdentityClient).project(project_id)
    except Exception:
        return  # identity unreachable or forbidden: do not block, as Nova does not
    if found is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")


@router.get("/v2.1/os-quota-sets/{project_id}")
async def show_quota_set(project_id: str, c: Caller = Depends(caller)) -> Response:
    params = _query(c)
    c.enforce("os_compute_api:os-quota-sets:show", {"project_id": project_id})
    await _check_project(c, project_id)
    async with c.svc.db.session() as session:
        limits = await logic.limits(session, project_id, params.get("user_id"))
    body = {"id": project_id, **{r: limits[r] for r in _visible(c)}}
    return json_response({"quota_set": body})


@router.get("/v2.1/os-quota-sets/{project_id}/detail")
async def show_quota_set_detail(project_id: str, c: Caller = Depends(caller)) -> Response:
    params = _query(c)
    c.enforce("os_compute_api:os-quota-sets:detail", {"project_id": project_id})
    await _check_project(c, project_id)
    user_id = params.get("user_id")
    async with c.svc.db.session() as session:
        limits = await logic.limits(session, project_id, user_id)
        used = await logic.usage(session, project_id, user_id)
    body: dict[str, Any] = {"id": project_id}
    for r in _visible(c):
        body[r] = {"limit": limits[r], "in_use": used.get(r, 0), "reserved": 0}
    return json_response({"quota_set": body})


@router.get("/v2.1/os-quota-sets/{project_id}/defaults")
async def show_defaults(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
    await _check_project(c, project_id)
    async with c.svc.db.session() as session:
        limits = await logic.class_limits(session)
    return json_response({"quota_set": {"id": project_id,
                                        **{r: limits[r] for r in _visible(c)}}})


@router.put("/v2.1/os-quota-sets/{project_id}", openapi_extra=body_doc(UPDATE_DOC))
async def update_quota_set(project_id: str, c: Caller = Depends(caller)) -> Response:
    params = _query(c)
    c.enforce("os_compute_api:os-quota-sets:update", {"project_id": project_id})
    body = (await c.body(_set_schema(_visible(c), "quota_set", True)))["quota_set"]
    await _check_project(c, project_id)
    user_id = params.get("user_id")
    force = v.truthy(body.pop("force", False))
    values = {k: int(val) for k, val in body.items()}
    async with c.svc.db.transaction() as session:
        if not force:
            used = await logic.usage(session, project_id, user_id)
            project_limits = await logic.limits(session, project_id)
            for resource, value in values.items():
                minimum = used.get(resource, 0)
                if value != -1 and value < minimum:
                    raise BadRequest(f"Quota limit {value} for {resource} must be greater "
                                     f"than or equal to already used and reserved {minimum}.")
                maximum = project_limits[resource] if user_id else -1
                if maximum != -1 and (value == -1 or value > maximum):
                    raise BadRequest(f"Quota limit {value} for {resource} must be less "
                                     f"than or equal to {maximum}.")
        await logic.set_limits(session, project_id, user_id, values)
        await session.flush()
        limits = await logic.limits(session, project_id, user_id)
    return json_response({"quota_set": {r: limits[r] for r in _visible(c)}})


@router.delete("/v2.1/os-quota-sets/{project_id}")
async def delete_quota_set(project_id: str, c: Caller = Depends(caller)) -> Response:
    params = _query(c)
    c.enforce("os_compute_api:os-quota-sets:delete", {"project_id": project_id})
    async with c.svc.db.transaction() as session:
        await logic.reset(session, project_id, params.get("user_id"))
    return Response(status_code=202)


def _class_visible(c: Caller) -> tuple[str, ...]:
    hidden = set(logic.filtered(c.at))
    if c.at(50):
        hidden |= {"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}
        return tuple(r for r in logic.RESOURCES if r not in hidden)
    return tuple(r for r in logic.RESOURCES
                 if r not in hidden and r not in ("server_groups", "server_group_members"))


@router.get("/v2.1/os-quota-class-sets/{class_name}")
async def show_quota_class(class_name: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-quota-class-sets:show", {"quota_class": class_name})
    async with c.svc.db.session() as session:
        limits = await logic.class_limits(session, class_name)
    return json_response({"quota_class_set": {"id": class_name,
                                              **{r: limits[r] for r in _class_visible(c)}}})


@router.put("/v2.1/os-quota-class-sets/{class_name}", openapi_extra=body_doc(CLASS_DOC))
async def update_quota_class(class_name: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-quota-class-sets:update", {"quota_class": class_name})
    if len(class_name) > 255 or not class_name:
        raise BadRequest("The quota class name is invalid.")
    body = (await c.body(_set_schema(_class_visible(c), "quota_class_set", False)))
    values = {k: int(val) for k, val in body["quota_class_set"].items()}
    async with c.svc.db.transaction() as session:
        await logic.set_class_limits(session, class_name, values)
        await session.flush()
        limits = await logic.class_limits(session, class_name)
    return json_response({"quota_class_set": {r: limits[r] for r in _class_visible(c)}})

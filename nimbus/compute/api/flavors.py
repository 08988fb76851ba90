"""/flavors, their extra specs (/os-extra_specs) and access lists (/os-flavor-access)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.clients.identity import IdentityClient
from nimbus.compute import flavors as logic
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller, page_links
from nimbus.compute.models import Flavor
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()

_FLAVOR_PROPS: dict[str, Any] = {
    "name": v.NAME,
    "id": {"type": ["string", "number", "null"], "minLength": 1, "maxLength": 255,
           "pattern": "^(?! )[a-zA-Z0-9. _-]+(?<! )$"},
    "ram": v.SIZE, "vcpus": v.SIZE, "disk": v.SIZE_OR_ZERO,
    "OS-FLV-EXT-DATA:ephemeral": v.SIZE_OR_ZERO, "swap": v.SIZE_OR_ZERO,
    "rxtx_factor": {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                    "exclusiveMinimum": 0, "maximum": 3.40282e38},
    "os-flavor-access:is_public": v.BOOLEAN,
}
_DESCRIPTION: dict[str, Any] = {"type": ["string", "null"], "minLength": 0, "maxLength": 65535,
                "format": "description"}
CREATE: dict[str, Any] = {"type": "object", "properties": {"flavor": {
    "type": "object", "properties": _FLAVOR_PROPS,
    "required": ["name", "ram", "vcpus", "disk"], "additionalProperties": False}},
    "required": ["flavor"], "additionalProperties": False}
CREATE_255: dict[str, Any] = copy.deepcopy(CREATE)
CREATE_255["properties"]["flavor"]["properties"]["description"] = _DESCRIPTION
CREATE_2102: dict[str, Any] = copy.deepcopy(CREATE_255)
del CREATE_2102["properties"]["flavor"]["properties"]["rxtx_factor"]
UPDATE: dict[str, Any] = {"type": "object", "properties": {"flavor": {
    "type": "object", "properties": {"description": _DESCRIPTION},
    "required": ["description"], "additionalProperties": False}},
    "required": ["flavor"], "additionalProperties": False}
EXTRA_SPECS: dict[str, Any] = {"type": "object", "properties": {"extra_specs": {
    "type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {
        "type": ["string", "number", "boolean"], "minLength": 0, "maxLength": 255}},
    "additionalProperties": False}}, "required": ["extra_specs"],
    "additionalProperties": False}
ONE_SPEC: dict[str, Any] = {"type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. ]{1,255}$": {
    "type": ["string", "number", "boolean"], "minLength": 0, "maxLength": 255}},
    "minProperties": 1, "maxProperties": 1, "additionalProperties": False}
ACCESS_ACTION: dict[str, Any] = {"type": "object", "properties": {
    "addTenantAccess": {"type": "object", "properties": {"tenant": v.PROJECT_ID},
                        "required": ["tenant"], "additionalProperties": False},
    "removeTenantAccess": {"type": "object", "properties": {"tenant": v.PROJECT_ID},
                           "required": ["tenant"], "additionalProperties": False}},
    "minProperties": 1, "maxProperties": 1, "additionalProperties": False}
SORT_KEYS = list(logic.SORT_KEYS)
INDEX_QUERY: dict[str, Any] = {"type": "object", "properties": {
    "limit": v.NON_NEGATIVE_QUERY, "marker": {"type": "string"},
    "is_public": {"type": "string"}, "minRam": {"type": "string"},
    "minDisk": {"type": "string"}, "sort_key": {"type": "string", "enum": SORT_KEYS},
    "sort_dir": {"type": "string", "enum": ["asc", "desc"]}}, "additionalProperties": True}
INDEX_QUERY_275: dict[str, Any] = {**INDEX_QUERY, "additionalProperties": False}
INDEX_QUERY_2102: dict[str, Any] = copy.deepcopy(INDEX_QUERY_275)
INDEX_QUERY_2102["properties"]["name"] = {"type": "string"}
INDEX_QUERY_2102["properties"]["sort_key"]["enum"] = [k for k in SORT_KEYS
                                                      if k != "rxtx_factor"]
NO_QUERY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def render(c: Caller, flavor: Flavor, specs: dict[str, str] | None,
           detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name,
                           "links": c.links("flavors", flavor.flavorid)}
    if detail:
        out.update({
            "ram": flavor.memory_mb, "disk": flavor.root_gb, "vcpus": flavor.vcpus,
            "swap": flavor.swap if (flavor.swap or c.at(75)) else "",
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
            "os-flavor-access:is_public": flavor.is_public,
        })
        if not c.at(102):
            out["OS-FLV-DISABLED:disabled"] = flavor.disabled
            out["rxtx_factor"] = flavor.rxtx_factor
    if c.at(55):
        out["description"] = flavor.description
    if detail and c.at(61) and specs is not None:
        out["extra_specs"] = specs
    return out


def _specs_visible(c: Caller) -> bool:
    return c.allowed("os_compute_api:os-flavor-extra-specs:index")


async def _list(c: Caller, detail: bool) -> Response:
    schema = INDEX_QUERY_2102 if c.at(102) else INDEX_QUERY_275 if c.at(75) else INDEX_QUERY
    params = c.query(schema)
    is_public: bool | None = True
    raw = params.get("is_public")
    if c.ctx.is_admin and raw is not None:
        text = raw.strip().lower()
        if text == "none":
            is_public = None
        elif text in ("true", "t", "1", "on", "yes", "y"):
            is_public = True
        elif text in ("false", "f", "0", "off", "no", "n"):
            is_public = False
        else:
            raise BadRequest(f"Invalid is_public filter [{raw}]")
    bounds: dict[str, int | None] = {}
    for key in ("minRam", "minDisk"):
        value = params.get(key)
        if value is None:
            bounds[key] = None
            continue
        try:
            bounds[key] = int(value)
        except ValueError:
            raise BadRequest(f"Invalid {key} filter [{value}]") from None
    limit = c.limit(params)
    async with c.svc.db.session() as session:
        rows = await logic.list_flavors(
            session, c.ctx, is_public=is_public, min_ram=bounds["minRam"],
            min_disk=bounds["minDisk"], name=params.get("name") if c.at(102) else None,
            sort_key=params.get("sort_key", "flavorid"), sort_dir=params.get("sort_dir", "asc"),
            limit=limit, marker=params.get("marker"))
        specs = await logic.extra_specs(session, [f.id for f in rows]) \
            if detail and c.at(61) and _specs_visible(c) else {}
    items = [render(c, f, specs.get(f.id), detail) for f in rows]
    body: dict[str, Any] = {"flavors": items}
    links = page_links(c, "flavors/detail" if detail else "flavors", items, limit)
    if links:
        body["flavors_links"] = links
    return json_response(body)


@router.get("/v2.1/flavors")
async def list_flavors(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=False)


@router.get("/v2.1/flavors/detail")
async def list_flavors_detail(c: Caller = Depends(caller)) -> Response:
    return await _list(c, detail=True)


async def _show(c: Caller, flavor: Flavor) -> dict[str, Any]:
    specs = None
    if c.at(61) and _specs_visible(c):
        async with c.svc.db.session() as session:
            specs = (await logic.extra_specs(session, [flavor.id]))[flavor.id]
    return render(c, flavor, specs)


@router.get("/v2.1/flavors/{flavor_id}")
async def show_flavor(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    if c.at(102):
        c.query(NO_QUERY)
    async with c.svc.db.session() as session:
        flavor = await logic.get(session, flavor_id)
    return json_response({"flavor": await _show(c, flavor)})


@router.post("/v2.1/flavors", openapi_extra=body_doc(CREATE_255))
async def create_flavor(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-manage:create")
    schema = CREATE_2102 if c.at(102) else CREATE_255 if c.at(55) else CREATE
    body = await c.body(schema)
    async with c.svc.db.transaction() as session:
        flavor = await logic.create(session, body["flavor"])
    c.svc.flavor_cache.clear()
    await c.svc.notify("flavor.create", {"flavorid": flavor.flavorid, "name": flavor.name})
    return json_response({"flavor": render(c, flavor, {} if c.at(61) else None)})


@router.put("/v2.1/flavors/{flavor_id}", openapi_extra=body_doc(UPDATE))
async def update_flavor(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    c.require(55)
    c.enforce("os_compute_api:os-flavor-manage:update")
    body = await c.body(UPDATE)
    async with c.svc.db.transaction() as session:
        flavor = await logic.get(session, flavor_id)
        flavor.description = body["flavor"]["description"]
        specs = (await logic.extra_specs(session, [flavor.id]))[flavor.id]
    c.svc.flavor_cache.clear()
    await c.svc.notify("flavor.update", {"flavorid": flavor.flavorid})
    return json_response({"flavor": render(c, flavor, specs if c.at(61) else None)})


@router.delete("/v2.1/flavors/{flavor_id}")
async def delete_flavor(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-manage:delete")
    async with c.svc.db.transaction() as session:
        await logic.delete_flavor(session, flavor_id)
    c.svc.flavor_cache.clear()
    await c.svc.notify("flavor.delete", {"flavorid": flavor_id})
    return Response(status_code=202)


# -- extra specs --------------------------------------------------------------------------------
@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs")
async def list_extra_specs(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-extra-specs:index")
    async with c.svc.db.session() as session:
        flavor = await logic.get(session, flavor_id)
        specs = (await logic.extra_specs(session, [flavor.id]))[flavor.id]
    return json_response({"extra_specs": specs})


@router.post("/v2.1/flavors/{flavor_id}/os-extra_specs", openapi_extra=body_doc(EXTRA_SPECS))
async def create_extra_specs(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-extra-specs:create")
    body = await c.body(EXTRA_SPECS)
    specs = body["extra_specs"]
    async with c.svc.db.transaction() as session:
        flavor = await logic.get(session, flavor_id)
        await logic.set_extra_specs(session, flavor, specs)
    c.svc.flavor_cache.clear()
    return json_response({"extra_specs": specs})


@router.get("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}")
async def show_extra_spec(flavor_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-extra-specs:show")
    async with c.svc.db.session() as session:
        flavor = await logic.get(session, flavor_id)
        specs = (await logic.extra_specs(session, [flavor.id]))[flavor.id]
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return json_response({key: specs[key]})


@router.put("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", openapi_extra=body_doc(ONE_SPEC))
async def update_extra_spec(flavor_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-extra-specs:update")
    raw = await c.body()
    if isinstance(raw, dict) and len(raw) > 1:
        raise BadRequest("Request body contains too many items")
    body = v.validate(ONE_SPEC, raw)
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    async with c.svc.db.transaction() as session:
        flavor = await logic.get(session, flavor_id)
        await logic.set_extra_specs(session, flavor, body)
    c.svc.flavor_cache.clear()
    return json_response(body)


@router.delete("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}")
async def delete_extra_spec(flavor_id: str, key: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-extra-specs:delete")
    async with c.svc.db.transaction() as session:
        flavor = await logic.get(session, flavor_id)
        await logic.delete_extra_spec(session, flavor, key)
    c.svc.flavor_cache.clear()
    return Response(status_code=200)


# -- access -------------------------------------------------------------------------------------
@router.get("/v2.1/flavors/{flavor_id}/os-flavor-access")
async def list_access(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-flavor-access")
    async with c.svc.db.session() as session:
        flavor = await logic.get(session, flavor_id)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        access = await logic.access_list(session, flavor)
    return json_response({"flavor_access": access})


@router.post("/v2.1/flavors/{flavor_id}/action", openapi_extra=body_doc(ACCESS_ACTION))
async def flavor_action(flavor_id: str, c: Caller = Depends(caller)) -> Response:
    body = await c.body(ACCESS_ACTION)
    adding = "addTenantAccess" in body
    c.enforce("os_compute_api:os-flavor-access:add_tenant_access" if adding
              else "os_compute_api:os-flavor-access:remove_tenant_access")
    project_id = (body.get("addTenantAccess") or body.get("removeTenantAccess"))["tenant"]
    async with c.svc.db.session() as session:
        flavor = await logic.get(session, flavor_id)
    if adding and flavor.is_public and c.at(7):
        raise Conflict("Can not add access to a public flavor.")
    if await c.svc.cloud.clients.get(IdentityClient).project(project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")
    async with c.svc.db.transaction() as session:
        flavor = await logic.get(session, flavor_id)
        c.svc.flavor_cache.clear()
        if adding:
            await logic.add_access(session, flavor, project_id)
        else:
            await logic.remove_access(session, flavor, project_id)
        await session.flush()
        access = await logic.access_list(session, flavor)
    return json_response({"flavor_access": access})

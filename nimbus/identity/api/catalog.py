"""/v3/regions, /v3/services, /v3/endpoints and OS-EP-FILTER (endpoint groups and project
associations). Every change invalidates the token catalog cache once committed."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.responses import Response

from nimbus.identity import catalog_admin as logic
from nimbus.identity import projects as project_logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.policy import ADMIN, ADMIN_OR_READER
from nimbus.web.errors import BadRequest, NotFound
from nimbus.web.responses import json_response, no_content

router = APIRouter()

_READ = "rule:identity:project_endpoint"
_WRITE = "rule:identity:manage_project_endpoint"
POLICY: dict[str, str] = {
    "identity:add_endpoint_to_project": _WRITE,
    "identity:check_endpoint_in_project": _READ,
    "identity:list_endpoints_for_project": _READ,
    "identity:remove_endpoint_from_project": _WRITE,
    "identity:list_projects_for_endpoint": _READ,
    "identity:list_endpoint_groups_for_project": _READ,
    "identity:list_projects_associated_with_endpoint_group": _READ,
    "identity:list_endpoints_associated_with_endpoint_group": _READ,
    "identity:get_endpoint_group_in_project": _READ,
    "identity:add_endpoint_group_to_project": _WRITE,
    "identity:remove_endpoint_group_from_project": _WRITE,
    # the generic rules these refer to, should the defaults lose them
    "identity:project_endpoint": ADMIN_OR_READER,
    "identity:manage_project_endpoint": ADMIN,
}

Interface = Literal["public", "internal", "admin"]


def no_nulls(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    for field in fields:
        if field in data and data[field] is None:
            raise BadRequest(f"Invalid input for field '{field}': None is not of type "
                             "'string'." if field != "enabled" else
                             f"Invalid input for field '{field}': None is not of type "
                             "'boolean'.")
    return data


def not_empty(data: dict[str, Any], kind: str) -> dict[str, Any]:
    if not data:
        raise BadRequest(f"Invalid input for field '{kind}': {{}} does not have enough "
                         "properties.")
    return data


# -- regions -----------------------------------------------------------------------------------
class RegionFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: StrictStr | None = Field(None, max_length=255)
    description: StrictStr | None = Field(None, max_length=255)
    parent_region_id: StrictStr | None = Field(None, min_length=1, max_length=255)


class RegionBody(BaseModel):
    region: RegionFields


@router.get("/v3/regions")
async def list_regions(c: Caller = Depends(caller),
                       parent_region_id: str | None = None) -> Response:
    c.enforce("identity:list_regions")
    async with c.svc.db.session() as session:
        rows = await logic.list_regions(session, parent_region_id)
    base = c.url("")
    return json_response({"regions": [logic.render_region(r, base) for r in rows],
                          "links": c.collection_links()})


@router.post("/v3/regions", status_code=201)
async def create_region(body: RegionBody, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_region")
    async with c.svc.db.transaction() as session:
        region = await logic.create_region(session, c.svc, body.region.model_dump(
            exclude_unset=True))
        out = logic.render_region(region, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"region": out}, 201)


@router.put("/v3/regions/{region_id}", status_code=201)
async def put_region(region_id: str, body: RegionBody, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_region")
    data = body.region.model_dump(exclude_unset=True)
    if data.get("id") is None:
        data["id"] = region_id
    elif data["id"] != region_id:
        raise BadRequest(f'Conflicting region IDs specified: "{region_id}" != "{data["id"]}"')
    async with c.svc.db.transaction() as session:
        region = await logic.create_region(session, c.svc, data)
        out = logic.render_region(region, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"region": out}, 201)


@router.get("/v3/regions/{region_id}")
async def show_region(region_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_region")
    async with c.svc.db.session() as session:
        region = await logic.get_region(session, region_id)
    return json_response({"region": logic.render_region(region, c.url(""))})


@router.patch("/v3/regions/{region_id}")
async def update_region(region_id: str, body: RegionBody, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_region")
    data = not_empty(body.region.model_dump(exclude_unset=True), "region")
    async with c.svc.db.transaction() as session:
        region = await logic.get_region(session, region_id)
        await logic.update_region(session, c.svc, region, data)
        out = logic.render_region(region, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"region": out})


@router.delete("/v3/regions/{region_id}", status_code=204)
async def delete_region(region_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_region")
    async with c.svc.db.transaction() as session:
        region = await logic.get_region(session, region_id)
        await logic.delete_region(session, c.svc, region)
    c.svc.catalog.invalidate()
    return no_content()


# -- services ----------------------------------------------------------------------------------
class ServiceFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr | None = Field(None, min_length=1, max_length=255)
    name: StrictStr | None = Field(None, min_length=1, max_length=255)
    description: StrictStr | None = None
    enabled: StrictBool | None = None


class ServiceCreateFields(ServiceFields):
    type: StrictStr = Field(..., min_length=1, max_length=255)


class ServiceCreate(BaseModel):
    service: ServiceCreateFields


class ServiceUpdate(BaseModel):
    service: ServiceFields


@router.get("/v3/services")
async def list_services(c: Caller = Depends(caller), type: str | None = None,
                        name: str | None = None) -> Response:
    c.enforce("identity:list_services")
    async with c.svc.db.session() as session:
        rows = await logic.list_services(session, {"type": type, "name": name})
    base = c.url("")
    return json_response({"services": [logic.render_service(s, base) for s in rows],
                          "links": c.collection_links()})


@router.post("/v3/services", status_code=201)
async def create_service(body: ServiceCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_service")
    data = no_nulls(body.service.model_dump(exclude_unset=True), ("name", "enabled"))
    async with c.svc.db.transaction() as session:
        service = await logic.create_service(session, c.svc, data)
        out = logic.render_service(service, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"service": out}, 201)


@router.get("/v3/services/{service_id}")
async def show_service(service_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_service")
    async with c.svc.db.session() as session:
        service = await logic.get_service(session, service_id)
    return json_response({"service": logic.render_service(service, c.url(""))})


@router.patch("/v3/services/{service_id}")
async def update_service(service_id: str, body: ServiceUpdate,
                         c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_service")
    data = no_nulls(not_empty(body.service.model_dump(exclude_unset=True), "service"),
                    ("type", "name", "enabled"))
    async with c.svc.db.transaction() as session:
        service = await logic.get_service(session, service_id)
        await logic.update_service(session, c.svc, service, data)
        out = logic.render_service(service, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"service": out})


@router.delete("/v3/services/{service_id}", status_code=204)
async def delete_service(service_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_service")
    async with c.svc.db.transaction() as session:
        service = await logic.get_service(session, service_id)
        await logic.delete_service(session, c.svc, service)
    c.svc.catalog.invalidate()
    return no_content()


# -- endpoints ---------------------------------------------------------------------------------
URL_PATTERN = r"^[a-zA-Z0-9+.-]+:.+"


class EndpointFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    interface: Interface | None = None
    region_id: StrictStr | None = None
    region: StrictStr | None = None
    service_id: StrictStr | None = None
    url: StrictStr | None = Field(None, max_length=225, pattern=URL_PATTERN)
    enabled: StrictBool | None = None
    description: StrictStr | None = None


class EndpointCreateFields(EndpointFields):
    interface: Interface
    service_id: StrictStr
    url: StrictStr = Field(..., max_length=225, pattern=URL_PATTERN)


class EndpointCreate(BaseModel):
    endpoint: EndpointCreateFields


class EndpointUpdate(BaseModel):
    endpoint: EndpointFields


@router.get("/v3/endpoints")
async def list_endpoints(c: Caller = Depends(caller), interface: str | None = None,
                         service_id: str | None = None,
                         region_id: str | None = None) -> Response:
    c.enforce("identity:list_endpoints")
    if interface is not None and interface not in logic.INTERFACES:
        raise BadRequest(f"Invalid input for field 'interface': {interface!r} is not one of "
                         "['admin', 'internal', 'public'].")
    async with c.svc.db.session() as session:
        rows = await logic.list_endpoints(session, {"interface": interface,
                                                    "service_id": service_id,
                                                    "region_id": region_id})
    base = c.url("")
    return json_response({"endpoints": [logic.render_endpoint(e, base) for e in rows],
                          "links": c.collection_links()})


@router.post("/v3/endpoints", status_code=201)
async def create_endpoint(body: EndpointCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_endpoint")
    data = body.endpoint.model_dump(exclude_unset=True)
    data.pop("id", None)
    async with c.svc.db.transaction() as session:
        endpoint = await logic.create_endpoint(session, c.svc, data)
        out = logic.render_endpoint(endpoint, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"endpoint": out}, 201)


@router.get("/v3/endpoints/{endpoint_id}")
async def show_endpoint(endpoint_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_endpoint")
    async with c.svc.db.session() as session:
        endpoint = await logic.get_endpoint(session, endpoint_id)
    return json_response({"endpoint": logic.render_endpoint(endpoint, c.url(""))})


@router.patch("/v3/endpoints/{endpoint_id}")
async def update_endpoint(endpoint_id: str, body: EndpointUpdate,
                          c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_endpoint")
    data = no_nulls(not_empty(body.endpoint.model_dump(exclude_unset=True), "endpoint"),
                    ("interface", "service_id", "url"))
    async with c.svc.db.transaction() as session:
        endpoint = await logic.get_endpoint(session, endpoint_id)
        await logic.update_endpoint(session, c.svc, endpoint, data)
        out = logic.render_endpoint(endpoint, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"endpoint": out})


@router.delete("/v3/endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_endpoint")
    async with c.svc.db.transaction() as session:
        endpoint = await logic.get_endpoint(session, endpoint_id)
        await logic.delete_endpoint(session, c.svc, endpoint)
    c.svc.catalog.invalidate()
    return no_content()


# -- OS-EP-FILTER: endpoint groups -------------------------------------------------------------
EP = "/v3/OS-EP-FILTER"


class GroupFilters(BaseModel):
    model_config = ConfigDict(extra="allow")
    interface: Interface | None = None
    service_id: StrictStr | None = None
    region_id: StrictStr | None = None
    enabled: StrictBool | None = None


class GroupFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = Field(None, min_length=1, max_length=255)
    description: StrictStr | None = None
    filters: GroupFilters | None = None


class GroupCreateFields(GroupFields):
    name: StrictStr = Field(..., min_length=1, max_length=255)
    filters: GroupFilters


class GroupCreate(BaseModel):
    endpoint_group: GroupCreateFields


class GroupUpdate(BaseModel):
    endpoint_group: GroupFields


@router.get(f"{EP}/endpoint_groups")
async def list_endpoint_groups(c: Caller = Depends(caller), name: str | None = None) -> Response:
    c.enforce("identity:list_endpoint_groups")
    async with c.svc.db.session() as session:
        rows = await logic.list_endpoint_groups(session, name)
    base = c.url("")
    return json_response({"endpoint_groups": [logic.render_endpoint_group(g, base)
                                              for g in rows],
                          "links": c.collection_links()})


@router.post(f"{EP}/endpoint_groups", status_code=201)
async def create_endpoint_group(body: GroupCreate, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_endpoint_group")
    data = body.endpoint_group.model_dump(exclude_unset=True)
    async with c.svc.db.transaction() as session:
        group = await logic.create_endpoint_group(session, c.svc, data)
        out = logic.render_endpoint_group(group, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"endpoint_group": out}, 201)


@router.api_route(f"{EP}/endpoint_groups/{{group_id}}", methods=["GET", "HEAD"])
async def show_endpoint_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_endpoint_group")
    async with c.svc.db.session() as session:
        group = await logic.get_endpoint_group(session, group_id)
    return json_response({"endpoint_group": logic.render_endpoint_group(group, c.url(""))})


@router.patch(f"{EP}/endpoint_groups/{{group_id}}")
async def update_endpoint_group(group_id: str, body: GroupUpdate,
                                c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:update_endpoint_group")
    data = no_nulls(not_empty(body.endpoint_group.model_dump(exclude_unset=True),
                              "endpoint_group"), ("name",))
    async with c.svc.db.transaction() as session:
        group = await logic.get_endpoint_group(session, group_id)
        await logic.update_endpoint_group(session, c.svc, group, data)
        out = logic.render_endpoint_group(group, c.url(""))
    c.svc.catalog.invalidate()
    return json_response({"endpoint_group": out})


@router.delete(f"{EP}/endpoint_groups/{{group_id}}", status_code=204)
async def delete_endpoint_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:delete_endpoint_group")
    async with c.svc.db.transaction() as session:
        group = await logic.get_endpoint_group(session, group_id)
        await logic.delete_endpoint_group(session, c.svc, group)
    c.svc.catalog.invalidate()
    return no_content()


@router.api_route(f"{EP}/endpoint_groups/{{group_id}}/endpoints", methods=["GET", "HEAD"])
async def endpoints_in_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_endpoints_associated_with_endpoint_group")
    async with c.svc.db.session() as session:
        group = await logic.get_endpoint_group(session, group_id)
        rows = await logic.endpoints_in_group(session, group)
    base = c.url("")
    return json_response({"endpoints": [logic.render_endpoint(e, base) for e in rows],
                          "links": c.collection_links()})


async def _render_projects(c: Caller, session: Any, ids: Any) -> list[dict[str, Any]]:
    found = []
    for project_id in ids:
        try:
            found.append(await project_logic.get(session, project_id))
        except NotFound:  # a project deleted since: its association no longer counts
            continue
    tags = await project_logic.tags_of(session, [p.id for p in found])
    base = c.url("")
    return [project_logic.render(p, tags[p.id], base) for p in found]


@router.api_route(f"{EP}/endpoint_groups/{{group_id}}/projects", methods=["GET", "HEAD"])
async def projects_for_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_projects_associated_with_endpoint_group")
    async with c.svc.db.session() as session:
        await logic.get_endpoint_group(session, group_id)
        projects = await _render_projects(c, session,
                                          await logic.project_ids_for_group(session, group_id))
    return json_response({"projects": projects, "links": c.collection_links()})


@router.api_route(f"{EP}/endpoint_groups/{{group_id}}/projects/{{project_id}}",
                  methods=["GET", "HEAD"])
async def show_project_group(group_id: str, project_id: str,
                             c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_endpoint_group_in_project")
    async with c.svc.db.session() as session:
        await project_logic.get(session, project_id)
        await logic.get_endpoint_group(session, group_id)
        await logic.get_project_group(session, group_id, project_id)
    return json_response({"project_endpoint_group": logic.render_project_group(
        group_id, project_id, c.url(""))})


@router.put(f"{EP}/endpoint_groups/{{group_id}}/projects/{{project_id}}", status_code=204)
async def add_project_group(group_id: str, project_id: str,
                            c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:add_endpoint_group_to_project")
    async with c.svc.db.transaction() as session:
        await project_logic.get(session, project_id)
        await logic.get_endpoint_group(session, group_id)
        await logic.add_project_group(session, group_id, project_id)
    c.svc.catalog.invalidate()
    return no_content()


@router.delete(f"{EP}/endpoint_groups/{{group_id}}/projects/{{project_id}}", status_code=204)
async def remove_project_group(group_id: str, project_id: str,
                               c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:remove_endpoint_group_from_project")
    async with c.svc.db.transaction() as session:
        await project_logic.get(session, project_id)
        await logic.get_endpoint_group(session, group_id)
        await logic.remove_project_group(session, group_id, project_id)
    c.svc.catalog.invalidate()
    return no_content()


# -- OS-EP-FILTER: projects and endpoints ------------------------------------------------------
@router.api_route(f"{EP}/projects/{{project_id}}/endpoint_groups", methods=["GET", "HEAD"])
async def groups_for_project(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_endpoint_groups_for_project")
    async with c.svc.db.session() as session:
        await project_logic.get(session, project_id)
        rows = await logic.groups_for_project(session, project_id)
    base = c.url("")
    return json_response({"endpoint_groups": [logic.render_endpoint_group(g, base)
                                              for g in rows],
                          "links": c.collection_links()})


@router.api_route(f"{EP}/projects/{{project_id}}/endpoints", methods=["GET", "HEAD"])
async def endpoints_for_project(project_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_endpoints_for_project")
    async with c.svc.db.session() as session:
        await project_logic.get(session, project_id)
        rows = await logic.endpoints_for_project(session, project_id)
    base = c.url("")
    return json_response({"endpoints": [logic.render_endpoint(e, base) for e in rows],
                          "links": c.collection_links()})


@router.api_route(f"{EP}/projects/{{project_id}}/endpoints/{{endpoint_id}}",
                  methods=["GET", "HEAD"], status_code=204)
async def check_project_endpoint(project_id: str, endpoint_id: str,
                                 c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:check_endpoint_in_project")
    async with c.svc.db.session() as session:
        await logic.get_endpoint(session, endpoint_id)
        await project_logic.get(session, project_id)
        await logic.get_project_endpoint(session, project_id, endpoint_id)
    return no_content()


@router.put(f"{EP}/projects/{{project_id}}/endpoints/{{endpoint_id}}", status_code=204)
async def add_project_endpoint(project_id: str, endpoint_id: str,
                               c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:add_endpoint_to_project")
    async with c.svc.db.transaction() as session:
        await logic.get_endpoint(session, endpoint_id)
        await project_logic.get(session, project_id)
        await logic.add_project_endpoint(session, project_id, endpoint_id)
    c.svc.catalog.invalidate()
    return no_content()


@router.delete(f"{EP}/projects/{{project_id}}/endpoints/{{endpoint_id}}", status_code=204)
async def remove_project_endpoint(project_id: str, endpoint_id: str,
                                  c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:remove_endpoint_from_project")
    async with c.svc.db.transaction() as session:
        await logic.remove_project_endpoint(session, project_id, endpoint_id)
    c.svc.catalog.invalidate()
    return no_content()


@router.api_route(f"{EP}/endpoints/{{endpoint_id}}/projects", methods=["GET", "HEAD"])
async def projects_for_endpoint(endpoint_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:list_projects_for_endpoint")
    async with c.svc.db.session() as session:
        await logic.get_endpoint(session, endpoint_id)
        projects = await _render_projects(
            c, session, await logic.project_ids_for_endpoint(session, endpoint_id))
    return json_response({"projects": projects, "links": c.collection_links()})

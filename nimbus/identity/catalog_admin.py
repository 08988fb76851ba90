"""Catalog administration: regions, services, endpoints and OS-EP-FILTER (project to endpoint
and project to endpoint-group associations), as Keystone's catalog manager does it.

Callers invalidate the token catalog cache (svc.catalog.invalidate()) after committing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.errors import not_found
from nimbus.identity.models import (
    CatalogService,
    Endpoint,
    EndpointGroup,
    ProjectEndpoint,
    ProjectEndpointGroup,
    Region,
)
from nimbus.web.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

INTERFACES = ("public", "internal", "admin")
GROUP_FILTER_KEYS = ("service_id", "region_id", "interface")


def missing_reference(attribute: str, target: str) -> BadRequest:
    """Keystone's ValidationError wording for a reference to something that does not exist."""
    return BadRequest(f"Expecting to find {attribute} in {target}. The server could not comply "
                      "with the request since it is either malformed or otherwise incorrect. "
                      "The client is assumed to be in error.")


def cannot_change_id(current: str, data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != current:
        raise BadRequest("Cannot change ID")


# -- regions -----------------------------------------------------------------------------------
REGION_CORE = {"id", "description", "parent_region_id", "links"}


def render_region(r: Region, base: str) -> dict[str, Any]:
    return {**(r.extra or {}), "id": r.id, "description": r.description or "",
            "parent_region_id": r.parent_region_id,
            "links": {"self": f"{base}/v3/regions/{r.id}"}}


async def get_region(session: AsyncSession, region_id: str) -> Region:
    region = await session.get(Region, region_id)
    if region is None:
        raise not_found("region", region_id)
    return region


async def list_regions(session: AsyncSession, parent_region_id: str | None) -> list[Region]:
    query = select(Region)
    if parent_region_id is not None:
        query = query.where(Region.parent_region_id == parent_region_id)
    return list((await session.scalars(query.order_by(Region.id))).all())


async def create_region(session: AsyncSession, svc: IdentityService,
                        data: dict[str, Any]) -> Region:
    region_id = data.get("id") or new_id()
    if await session.get(Region, region_id) is not None:
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, "
                       f"{region_id}.")
    parent = data.get("parent_region_id")
    if parent is not None:
        await get_region(session, parent)
    region = Region(id=region_id, description=data.get("description") or "",
                    parent_region_id=parent,
                    extra={k: v for k, v in data.items() if k not in REGION_CORE})
    session.add(region)
    await session.flush()
    await svc.notify("identity.region.created", region.id)
    return region


async def update_region(session: AsyncSession, svc: IdentityService, region: Region,
                        data: dict[str, Any]) -> None:
    cannot_change_id(region.id, data)
    if "parent_region_id" in data:
        parent = data["parent_region_id"]
        seen = {region.id}
        cursor = parent
        while cursor is not None:
            if cursor in seen:
                raise BadRequest(f"The specified parent region {parent} would create a "
                                 "circular region hierarchy.")
            seen.add(cursor)
            cursor = (await get_region(session, cursor)).parent_region_id
        region.parent_region_id = parent
    if "description" in data:
        region.description = data["description"] or ""
    extra = {k: v for k, v in data.items() if k not in REGION_CORE}
    if extra:
        region.extra = {**(region.extra or {}), **extra}
    await svc.notify("identity.region.updated", region.id)


async def _region_tree(session: AsyncSession, region_id: str) -> list[str]:
    """The region and all its descendants (cycle-safe)."""
    found = [region_id]
    frontier = [region_id]
    while frontier:
        rows = (await session.scalars(select(Region.id).where(
            Region.parent_region_id.in_(frontier)))).all()
        frontier = [r for r in rows if r not in found]
        found.extend(frontier)
    return found


async def delete_region(session: AsyncSession, svc: IdentityService, region: Region) -> None:
    """Keystone deletes the child regions too, unless any of them has endpoints."""
    tree = await _region_tree(session, region.id)
    if await session.scalar(select(Endpoint.id).where(Endpoint.region_id.in_(tree)).limit(1)):
        raise Forbidden(f"Unable to delete region {region.id} because it or its child regions "
                        "have associated endpoints.")
    for region_id in reversed(tree):
        row = await session.get(Region, region_id)
        if row is not None:
            await session.delete(row)
            await svc.notify("identity.region.deleted", region_id)
    await session.flush()


# -- services ----------------------------------------------------------------------------------
SERVICE_CORE = {"id", "type", "name", "description", "enabled", "links"}


def render_service(s: CatalogService, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {**(s.extra or {}), "id": s.id, "type": s.type,
                            "name": s.name or "", "enabled": s.enabled,
                            "links": {"self": f"{base}/v3/services/{s.id}"}}
    if s.description is not None:
        body["description"] = s.description
    return body


async def get_service(session: AsyncSession, service_id: str) -> CatalogService:
    service = await session.get(CatalogService, service_id)
    if service is None:
        raise not_found("service", service_id)
    return service


async def list_services(session: AsyncSession, filters: dict[str, Any]) -> list[CatalogService]:
    query = select(CatalogService)
    for field in ("type", "name"):
        if filters.get(field) is not None:
            query = query.where(getattr(CatalogService, field) == filters[field])
    return list((await session.scalars(query.order_by(CatalogService.type,
                                                      CatalogService.id))).all())


async def create_service(session: AsyncSession, svc: IdentityService,
                         data: dict[str, Any]) -> CatalogService:
    service = CatalogService(id=new_id(), type=data["type"], name=data.get("name") or "",
                             description=data.get("description"),
                             enabled=data.get("enabled", True),
                             extra={k: v for k, v in data.items() if k not in SERVICE_CORE})
    session.add(service)
    await session.flush()
    await svc.notify("identity.service.created", service.id)
    return service


async def update_service(session: AsyncSession, svc: IdentityService, service: CatalogService,
                         data: dict[str, Any]) -> None:
    cannot_change_id(service.id, data)
    for field in ("type", "name", "description", "enabled"):
        if field in data:
            setattr(service, field, data[field])
    extra = {k: v for k, v in data.items() if k not in SERVICE_CORE}
    if extra:
        service.extra = {**(service.extra or {}), **extra}
    await svc.notify("identity.service.updated", service.id)


async def delete_service(session: AsyncSession, svc: IdentityService,
                         service: CatalogService) -> None:
    """A service goes with its endpoints (and their project associations)."""
    endpoint_ids = (await session.scalars(select(Endpoint.id).where(
        Endpoint.service_id == service.id))).all()
    if endpoint_ids:
        await session.execute(delete(ProjectEndpoint).where(
            ProjectEndpoint.endpoint_id.in_(endpoint_ids)))
        await session.execute(delete(Endpoint).where(Endpoint.id.in_(endpoint_ids)))
    await session.delete(service)
    await session.flush()
    await svc.notify("identity.service.deleted", service.id)


# -- endpoints ---------------------------------------------------------------------------------
ENDPOINT_CORE = {"id", "interface", "region_id", "region", "service_id", "url", "enabled",
                 "links", "legacy_endpoint_id"}


def render_endpoint(e: Endpoint, base: str) -> dict[str, Any]:
    return {**(e.extra or {}), "id": e.id, "interface": e.interface,
            "region_id": e.region_id, "region": e.region_id, "service_id": e.service_id,
            "url": e.url, "enabled": e.enabled,
            "links": {"self": f"{base}/v3/endpoints/{e.id}"}}


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> Endpoint:
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise not_found("endpoint", endpoint_id)
    return endpoint


async def list_endpoints(session: AsyncSession, filters: dict[str, Any]) -> list[Endpoint]:
    query = select(Endpoint)
    for field in ("interface", "service_id", "region_id"):
        if filters.get(field) is not None:
            query = query.where(getattr(Endpoint, field) == filters[field])
    return list((await session.scalars(query.order_by(Endpoint.service_id, Endpoint.interface,
                                                      Endpoint.id))).all())


async def _endpoint_region(session: AsyncSession, svc: IdentityService,
                           data: dict[str, Any]) -> None:
    """'region_id' must name an existing region; the legacy 'region' is created if missing,
    for clients that still use the v3 API the v2 way (as Keystone does)."""
    legacy = data.pop("region", None)
    if data.get("region_id") is None and legacy is not None:
        data["region_id"] = legacy
        if await session.get(Region, legacy) is None:
            await create_region(session, svc, {"id": legacy})
    elif data.get("region_id") is not None:
        if await session.get(Region, data["region_id"]) is None:
            raise missing_reference("endpoint region_id", "region table")


async def _endpoint_service(session: AsyncSession, service_id: str | None) -> None:
    if service_id is not None and await session.get(CatalogService, service_id) is None:
        raise missing_reference("endpoint service_id", "service table")


async def create_endpoint(session: AsyncSession, svc: IdentityService,
                          data: dict[str, Any]) -> Endpoint:
    data = dict(data)
    await _endpoint_region(session, svc, data)
    await _endpoint_service(session, data["service_id"])
    enabled = data.get("enabled")
    endpoint = Endpoint(id=new_id(), service_id=data["service_id"],
                        interface=data["interface"], url=data["url"],
                        region_id=data.get("region_id"),
                        enabled=True if enabled is None else enabled,
                        extra={k: v for k, v in data.items() if k not in ENDPOINT_CORE})
    session.add(endpoint)
    await session.flush()
    await svc.notify("identity.endpoint.created", endpoint.id)
    return endpoint


async def update_endpoint(session: AsyncSession, svc: IdentityService, endpoint: Endpoint,
                          data: dict[str, Any]) -> None:
    cannot_change_id(endpoint.id, data)
    data = dict(data)
    had_region = "region_id" in data or data.get("region") is not None
    await _endpoint_region(session, svc, data)
    await _endpoint_service(session, data.get("service_id"))
    if had_region:
        endpoint.region_id = data.get("region_id")
    for field in ("service_id", "interface", "url"):
        if data.get(field) is not None:
            setattr(endpoint, field, data[field])
    if "enabled" in data:
        endpoint.enabled = True if data["enabled"] is None else data["enabled"]
    extra = {k: v for k, v in data.items() if k not in ENDPOINT_CORE}
    if extra:
        endpoint.extra = {**(endpoint.extra or {}), **extra}
    await svc.notify("identity.endpoint.updated", endpoint.id)


async def delete_endpoint(session: AsyncSession, svc: IdentityService,
                          endpoint: Endpoint) -> None:
    await session.execute(delete(ProjectEndpoint).where(
        ProjectEndpoint.endpoint_id == endpoint.id))
    await session.delete(endpoint)
    await session.flush()
    await svc.notify("identity.endpoint.deleted", endpoint.id)


# -- endpoint groups ---------------------------------------------------------------------------
def render_endpoint_group(g: EndpointGroup, base: str) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "description": g.description, "filters": g.filters,
            "links": {"self": f"{base}/v3/OS-EP-FILTER/endpoint_groups/{g.id}"}}


def validate_group_filters(filters: dict[str, Any]) -> None:
    for key in filters:
        if key not in GROUP_FILTER_KEYS:
            raise missing_reference(" or ".join(GROUP_FILTER_KEYS), "endpoint_group")


async def get_endpoint_group(session: AsyncSession, group_id: str) -> EndpointGroup:
    group = await session.get(EndpointGroup, group_id)
    if group is None:
        raise NotFound(f"Could not find Endpoint Group: {group_id}.")
    return group


async def list_endpoint_groups(session: AsyncSession, name: str | None) -> list[EndpointGroup]:
    query = select(EndpointGroup)
    if name is not None:
        query = query.where(EndpointGroup.name == name)
    return list((await session.scalars(query.order_by(EndpointGroup.name,
                                                      EndpointGroup.id))).all())


async def create_endpoint_group(session: AsyncSession, svc: IdentityService,
                                data: dict[str, Any]) -> EndpointGroup:
    if not data.get("filters"):
        raise BadRequest("filters field is required and cannot be empty")
    validate_group_filters(data["filters"])
    group = EndpointGroup(id=new_id(), name=data["name"], description=data.get("description"),
                          filters=data["filters"])
    session.add(group)
    await session.flush()
    await svc.notify("identity.endpoint_group.created", group.id)
    return group


async def update_endpoint_group(session: AsyncSession, svc: IdentityService,
                                group: EndpointGroup, data: dict[str, Any]) -> None:
    cannot_change_id(group.id, data)
    if "filters" in data:
        if not data["filters"]:
            raise BadRequest("filters field is required and cannot be empty")
        validate_group_filters(data["filters"])
        group.filters = data["filters"]
    if data.get("name") is not None:
        group.name = data["name"]
    if "description" in data:
        group.description = data["description"]
    await svc.notify("identity.endpoint_group.updated", group.id)


async def delete_endpoint_group(session: AsyncSession, svc: IdentityService,
                                group: EndpointGroup) -> None:
    await session.execute(delete(ProjectEndpointGroup).where(
        ProjectEndpointGroup.endpoint_group_id == group.id))
    await session.delete(group)
    await session.flush()
    await svc.notify("identity.endpoint_group.deleted", group.id)


def matches(endpoint: Endpoint, filters: dict[str, Any]) -> bool:
    return all(getattr(endpoint, key, None) == value for key, value in filters.items())


async def endpoints_in_group(session: AsyncSession, group: EndpointGroup) -> list[Endpoint]:
    return [e for e in await list_endpoints(session, {}) if matches(e, group.filters or {})]


# -- project associations ----------------------------------------------------------------------
async def add_project_endpoint(session: AsyncSession, project_id: str, endpoint_id: str) -> None:
    if await session.get(ProjectEndpoint, (endpoint_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint - Duplicate "
                       "entry.")
    session.add(ProjectEndpoint(endpoint_id=endpoint_id, project_id=project_id))
    await session.flush()


async def get_project_endpoint(session: AsyncSession, project_id: str,
                               endpoint_id: str) -> ProjectEndpoint:
    link = await session.get(ProjectEndpoint, (endpoint_id, project_id))
    if link is None:
        raise NotFound(f"Endpoint {endpoint_id} not found in project {project_id}")
    return link


async def remove_project_endpoint(session: AsyncSession, project_id: str,
                                  endpoint_id: str) -> None:
    await session.delete(await get_project_endpoint(session, project_id, endpoint_id))
    await session.flush()


async def project_ids_for_endpoint(session: AsyncSession, endpoint_id: str) -> list[str]:
    return list((await session.scalars(select(ProjectEndpoint.project_id).where(
        ProjectEndpoint.endpoint_id == endpoint_id))).all())


async def groups_for_project(session: AsyncSession, project_id: str) -> list[EndpointGroup]:
    return list((await session.scalars(select(EndpointGroup).join(
        ProjectEndpointGroup, ProjectEndpointGroup.endpoint_group_id == EndpointGroup.id).where(
        ProjectEndpointGroup.project_id == project_id).order_by(EndpointGroup.name))).all())


async def endpoints_for_project(session: AsyncSession, project_id: str) -> list[Endpoint]:
    """Endpoints associated directly plus those the project's endpoint groups select."""
    direct = set((await session.scalars(select(ProjectEndpoint.endpoint_id).where(
        ProjectEndpoint.project_id == project_id))).all())
    groups = await groups_for_project(session, project_id)
    found = []
    for endpoint in await list_endpoints(session, {}):
        if endpoint.id in direct or any(matches(endpoint, g.filters or {}) for g in groups):
            found.append(endpoint)
    return found


def render_project_group(group_id: str, project_id: str, base: str) -> dict[str, Any]:
    return {"endpoint_group_id": group_id, "project_id": project_id,
            "links": {"self": f"{base}/v3/OS-EP-FILTER/endpoint_groups/{group_id}/projects/"
                              f"{project_id}"}}


async def add_project_group(session: AsyncSession, group_id: str, project_id: str) -> None:
    if await session.get(ProjectEndpointGroup, (group_id, project_id)) is not None:
        raise Conflict("Conflict occurred attempting to store project_endpoint_group - "
                       "Duplicate entry.")
    session.add(ProjectEndpointGroup(endpoint_group_id=group_id, project_id=project_id))
    await session.flush()


async def get_project_group(session: AsyncSession, group_id: str,
                            project_id: str) -> ProjectEndpointGroup:
    link = await session.get(ProjectEndpointGroup, (group_id, project_id))
    if link is None:
        raise NotFound("Endpoint Group Project Association not found")
    return link


async def remove_project_group(session: AsyncSession, group_id: str, project_id: str) -> None:
    await session.delete(await get_project_group(session, group_id, project_id))
    await session.flush()


async def project_ids_for_group(session: AsyncSession, group_id: str) -> Sequence[str]:
    return (await session.scalars(select(ProjectEndpointGroup.project_id).where(
        ProjectEndpointGroup.endpoint_group_id == group_id))).all()

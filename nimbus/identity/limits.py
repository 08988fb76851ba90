"""Unified limits: registered (default) limits per service, region and resource, and project
or domain limits that override them. The enforcement model is Keystone's "flat" one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.catalog_admin import missing_reference
from nimbus.identity.models import CatalogService, Limit, Project, Region, RegisteredLimit
from nimbus.web.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

MODEL = {"name": "flat",
         "description": "Limit enforcement and validation does not take project hierarchy "
                        "into consideration."}


def render_registered(r: RegisteredLimit, base: str) -> dict[str, Any]:
    return {"id": r.id, "service_id": r.service_id, "region_id": r.region_id,
            "resource_name": r.resource_name, "default_limit": r.default_limit,
            "description": r.description,
            "links": {"self": f"{base}/v3/registered_limits/{r.id}"}}


def render_limit(lim: Limit, base: str) -> dict[str, Any]:
    return {"id": lim.id, "project_id": lim.project_id, "domain_id": lim.domain_id,
            "service_id": lim.service_id, "region_id": lim.region_id,
            "resource_name": lim.resource_name, "resource_limit": lim.resource_limit,
            "description": lim.description, "links": {"self": f"{base}/v3/limits/{lim.id}"}}


async def _references(session: AsyncSession, data: dict[str, Any], target: str) -> None:
    """Service, region, project and domain named in a (registered) limit must exist; a project
    that is a domain becomes the domain_id, as Keystone does."""
    if data.get("service_id") is not None and \
            await session.get(CatalogService, data["service_id"]) is None:
        raise missing_reference("service_id", target)
    if data.get("region_id") is not None and await session.get(Region, data["region_id"]) is None:
        raise missing_reference("region_id", target)
    if data.get("project_id") is not None:
        project = await session.get(Project, data["project_id"])
        if project is None:
            raise missing_reference("project_id", target)
        if project.is_domain:
            data["domain_id"] = data.pop("project_id")
    if data.get("domain_id") is not None:
        domain = await session.get(Project, data["domain_id"])
        if domain is None or not domain.is_domain:
            raise missing_reference("domain_id", target)


# -- registered limits -------------------------------------------------------------------------
async def get_registered(session: AsyncSession, limit_id: str) -> RegisteredLimit:
    row = await session.get(RegisteredLimit, limit_id)
    if row is None:
        raise NotFound(f"Could not find registered limit for {limit_id}.")
    return row


async def list_registered(session: AsyncSession, filters: dict[str, Any]
                          ) -> list[RegisteredLimit]:
    query = select(RegisteredLimit)
    for field in ("service_id", "region_id", "resource_name"):
        if filters.get(field) is not None:
            query = query.where(getattr(RegisteredLimit, field) == filters[field])
    return list((await session.scalars(query.order_by(RegisteredLimit.service_id,
                                                      RegisteredLimit.resource_name,
                                                      RegisteredLimit.id))).all())


async def _registered_for(session: AsyncSession, service_id: str, region_id: str | None,
                          resource_name: str) -> RegisteredLimit | None:
    return (await session.scalars(select(RegisteredLimit).where(
        RegisteredLimit.service_id == service_id, RegisteredLimit.region_id.is_(None)
        if region_id is None else RegisteredLimit.region_id == region_id,
        RegisteredLimit.resource_name == resource_name))).first()


async def _limits_of(session: AsyncSession, reg: RegisteredLimit) -> Limit | None:
    return (await session.scalars(select(Limit).where(
        Limit.service_id == reg.service_id, Limit.resource_name == reg.resource_name,
        Limit.region_id.is_(None) if reg.region_id is None
        else Limit.region_id == reg.region_id))).first()


def _in_use(limit_id: str) -> Forbidden:
    return Forbidden(f"Unable to update or delete registered limit {limit_id} because there "
                     "are project limits associated with it.")


async def create_registered(session: AsyncSession, svc: IdentityService,
                            items: list[dict[str, Any]]) -> list[RegisteredLimit]:
    created = []
    for data in items:
        await _references(session, data, "registered_limit")
        if await _registered_for(session, data["service_id"], data.get("region_id"),
                                 data["resource_name"]) is not None:
            raise Conflict("Conflict occurred attempting to store registered_limit - "
                           "Duplicate entry.")
        row = RegisteredLimit(id=new_id(), service_id=data["service_id"],
                              region_id=data.get("region_id"),
                              resource_name=data["resource_name"],
                              default_limit=data["default_limit"],
                              description=data.get("description"))
        session.add(row)
        await session.flush()
        created.append(row)
    for row in created:
        await svc.notify("identity.registered_limit.created", row.id)
    return created


async def update_registered(session: AsyncSession, svc: IdentityService, row: RegisteredLimit,
                            data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != row.id:
        raise BadRequest("Cannot change ID")
    await _references(session, data, "registered_limit")
    if await _limits_of(session, row) is not None:
        raise _in_use(row.id)
    service_id: str = data.get("service_id") or row.service_id
    region_id: str | None = data["region_id"] if "region_id" in data else row.region_id
    resource_name: str = data.get("resource_name") or row.resource_name
    other = await _registered_for(session, service_id, region_id, resource_name)
    if other is not None and other.id != row.id:
        raise Conflict("Conflict occurred attempting to store registered_limit - "
                       "Duplicate entry.")
    row.service_id, row.region_id, row.resource_name = service_id, region_id, resource_name
    if data.get("default_limit") is not None:
        row.default_limit = data["default_limit"]
    if "description" in data:
        row.description = data["description"]
    await svc.notify("identity.registered_limit.updated", row.id)


async def delete_registered(session: AsyncSession, svc: IdentityService,
                            row: RegisteredLimit) -> None:
    if await _limits_of(session, row) is not None:
        raise _in_use(row.id)
    await session.delete(row)
    await session.flush()
    await svc.notify("identity.registered_limit.deleted", row.id)


# -- limits ------------------------------------------------------------------------------------
async def get_limit(session: AsyncSession, limit_id: str) -> Limit:
    row = await session.get(Limit, limit_id)
    if row is None:
        raise NotFound(f"Could not find limit for {limit_id}.")
    return row


async def list_limits(session: AsyncSession, filters: dict[str, Any]) -> list[Limit]:
    query = select(Limit)
    for field in ("service_id", "region_id", "resource_name", "project_id", "domain_id"):
        if filters.get(field) is not None:
            query = query.where(getattr(Limit, field) == filters[field])
    if filters.get("project_ids") is not None:
        query = query.where(Limit.project_id.in_(filters["project_ids"]))
    return list((await session.scalars(query.order_by(Limit.service_id, Limit.resource_name,
                                                      Limit.id))).all())


async def create_limits(session: AsyncSession, svc: IdentityService,
                        items: list[dict[str, Any]]) -> list[Limit]:
    created = []
    for data in items:
        await _references(session, data, "limit")
        if await _registered_for(session, data["service_id"], data.get("region_id"),
                                 data["resource_name"]) is None:
            raise Forbidden("Unable to create a limit that has no corresponding registered "
                            "limit.")
        owner = (Limit.project_id == data["project_id"]) if data.get("project_id") \
            else (Limit.domain_id == data.get("domain_id"))
        region = data.get("region_id")
        if (await session.scalars(select(Limit.id).where(
                owner, Limit.service_id == data["service_id"],
                Limit.resource_name == data["resource_name"],
                Limit.region_id.is_(None) if region is None
                else Limit.region_id == region))).first():
            raise Conflict("Conflict occurred attempting to store limit - Duplicate entry.")
        row = Limit(id=new_id(), project_id=data.get("project_id"),
                    domain_id=data.get("domain_id"), service_id=data["service_id"],
                    region_id=region, resource_name=data["resource_name"],
                    resource_limit=data["resource_limit"], description=data.get("description"))
        session.add(row)
        await session.flush()
        created.append(row)
    for row in created:
        await svc.notify("identity.limit.created", row.id)
    return created


async def update_limit(session: AsyncSession, svc: IdentityService, row: Limit,
                       data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != row.id:
        raise BadRequest("Cannot change ID")
    if data.get("resource_limit") is not None:
        row.resource_limit = data["resource_limit"]
    if "description" in data:
        row.description = data["description"]
    await svc.notify("identity.limit.updated", row.id)


async def delete_limit(session: AsyncSession, svc: IdentityService, row: Limit) -> None:
    await session.delete(row)
    await session.flush()
    await svc.notify("identity.limit.deleted", row.id)

"""Address scopes: subnet pools inside one scope never overlap; routers don't NAT between
subnets of one scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import in_use, invalid_input, not_found
from nimbus.network.models import AddressScope, RBACPolicy, SubnetPool


def _version(value: Any, field: str) -> int:
    number = v.integer(value, field)
    if number not in (4, 6):
        raise invalid_input(f"{value} is not in [4, 6]")
    return number


SPEC = {
    "name": v.Attr(v.name255, required=True), "ip_version": v.Attr(_version, put=False,
                                                                   required=True),
    "shared": v.Attr(v.boolean), "description": v.Attr(v.name255),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}
COLUMNS: query.Columns = {
    "id": AddressScope.id, "name": AddressScope.name, "project_id": AddressScope.project_id,
    "ip_version": AddressScope.ip_version, "shared": AddressScope.shared,
    "description": AddressScope.description,
}


def visibility(ctx: RequestContext) -> Any:
    return access.visible(ctx, AddressScope, "address_scope", ("access_as_shared",),
                          AddressScope.shared)


async def get(session: AsyncSession, ctx: RequestContext, scope_id: str) -> AddressScope:
    q = access.restrict(select(AddressScope).where(AddressScope.id == scope_id),
                        visibility(ctx))
    row = (await session.scalars(q)).first()
    if row is None:
        raise not_found("address_scope", scope_id)
    return row


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[AddressScope], bool]:
    q = access.restrict(select(AddressScope), visibility(ctx))
    q = query.apply_filters(q, COLUMNS, params)
    return await query.paginate(session, q, AddressScope, COLUMNS, params)


async def create(session: AsyncSession, data: dict[str, Any], project_id: str) -> AddressScope:
    row = AddressScope(id=new_uuid(), project_id=project_id, name=data["name"],
                       description=data.get("description", ""), ip_version=data["ip_version"],
                       shared=data.get("shared", False), revision_number=0)
    session.add(row)
    await session.flush()
    if row.shared:
        session.add(RBACPolicy(id=new_uuid(), project_id=project_id,
                               object_type="address_scope", object_id=row.id,
                               action="access_as_shared", target_tenant="*", description="",
                               revision_number=0))
    return row


async def update(session: AsyncSession, row: AddressScope, data: dict[str, Any]) -> None:
    for key in ("name", "description"):
        if key in data:
            setattr(row, key, data[key] or "")
    if "shared" in data and data["shared"] != row.shared:
        if not data["shared"]:
            raise invalid_input("Unable to unshare an address scope")
        row.shared = True
        session.add(RBACPolicy(id=new_uuid(), project_id=row.project_id,
                               object_type="address_scope", object_id=row.id,
                               action="access_as_shared", target_tenant="*", description="",
                               revision_number=0))
    standard.bump(row)


async def delete_scope(session: AsyncSession, row: AddressScope) -> None:
    if await session.scalar(select(SubnetPool.id).where(
            SubnetPool.address_scope_id == row.id).limit(1)):
        raise in_use("address_scope", row.id)
    await session.execute(delete(RBACPolicy).where(
        RBACPolicy.object_type == "address_scope", RBACPolicy.object_id == row.id))
    await standard.drop_tags(session, row.id)
    await session.delete(row)


def render(row: AddressScope) -> dict[str, Any]:
    body = standard.standard(row)
    body.update({"name": row.name, "ip_version": row.ip_version, "shared": row.shared})
    return body

"""Address groups: named sets of CIDRs that security group rules can use as their remote."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, invalid_input, not_found
from nimbus.network.models import AddressGroup, RBACPolicy, SecurityGroupRule


def addresses(value: Any, field: str) -> list[str]:
    if not isinstance(value, list):
        raise invalid_input(f"'{value}' is not a list")
    out: list[str] = []
    for item in value:
        net = str(v.prefix(item))
        if net in out:
            raise invalid_input(f"Duplicate address '{item}'")
        out.append(net)
    return out


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "addresses": v.Attr(addresses, put=False),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}
COLUMNS: query.Columns = {
    "id": AddressGroup.id, "name": AddressGroup.name, "project_id": AddressGroup.project_id,
    "description": AddressGroup.description,
}


def visibility(ctx: RequestContext) -> Any:
    return access.visible(ctx, AddressGroup, "address_group", ("access_as_shared",))


async def get(session: AsyncSession, ctx: RequestContext, group_id: str) -> AddressGroup:
    q = access.restrict(select(AddressGroup).where(AddressGroup.id == group_id),
                        visibility(ctx))
    row = (await session.scalars(q)).first()
    if row is None:
        raise not_found("address_group", group_id)
    return row


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[AddressGroup], bool]:
    q = query.apply_filters(access.restrict(select(AddressGroup), visibility(ctx)), COLUMNS,
                            params)
    return await query.paginate(session, q, AddressGroup, COLUMNS, params)


async def create(session: AsyncSession, data: dict[str, Any], project_id: str) -> AddressGroup:
    row = AddressGroup(id=new_uuid(), project_id=project_id, name=data.get("name", ""),
                       description=data.get("description", ""),
                       addresses=data.get("addresses", []), revision_number=0)
    session.add(row)
    await session.flush()
    return row


def change(row: AddressGroup, wanted: list[str], add: bool) -> None:
    current = list(row.addresses or [])
    if add:
        for net in wanted:
            if net not in current:
                current.append(net)
    else:
        missing = [n for n in wanted if n not in current]
        if missing:
            raise bad_request(f"Addresses {missing} not found in the address group {row.id}.",
                              "AddressesNotFound")
        current = [n for n in current if n not in wanted]
    row.addresses = sorted(current, key=lambda n: (ipaddress.ip_network(n).version,
                                                   ipaddress.ip_network(n)))  # type: ignore[arg-type,return-value]
    standard.bump(row)


async def delete_group(session: AsyncSession, row: AddressGroup) -> None:
    if await session.scalar(select(SecurityGroupRule.id).where(
            SecurityGroupRule.remote_address_group_id == row.id).limit(1)):
        raise conflict(f"Address group {row.id} is in use by a security group rule.",
                       "AddressGroupInUse")
    await session.execute(delete(RBACPolicy).where(
        RBACPolicy.object_type == "address_group", RBACPolicy.object_id == row.id))
    await session.delete(row)


def render(row: AddressGroup) -> dict[str, Any]:
    body = standard.standard(row)
    body.update({"name": row.name, "addresses": list(row.addresses or [])})
    return body

"""RBAC policies: share an object (network, subnet pool, address scope, security group,
address group) with one project or everyone, or make a network external to them.

A "*" entry and the object's own `shared` (or `router:external`) flag are kept in step, as
upstream does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import conflict, invalid_input, not_found
from nimbus.network.models import (
    AddressGroup,
    AddressScope,
    Network,
    Port,
    PortSecurityGroup,
    RBACPolicy,
    SecurityGroup,
    Subnet,
    SubnetPool,
)

OBJECTS: dict[str, Any] = {"network": Network, "subnetpool": SubnetPool,
                           "address_scope": AddressScope, "security_group": SecurityGroup,
                           "address_group": AddressGroup}
ACTIONS = ("access_as_shared", "access_as_external")


def _object_type(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in OBJECTS:
        raise invalid_input(f"{value} is not in {sorted(OBJECTS)}")
    return str(value)


def _action(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in ACTIONS:
        raise invalid_input(f"{value} is not in {list(ACTIONS)}")
    return str(value)


SPEC = {
    "object_type": v.Attr(_object_type, put=False, required=True),
    "object_id": v.Attr(v.check_uuid, put=False, required=True),
    "action": v.Attr(_action, put=False, required=True),
    "target_tenant": v.Attr(lambda x, f: v.string(x, f, 255), required=True),
    "target_project": v.Attr(lambda x, f: v.string(x, f, 255)),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}
COLUMNS: query.Columns = {
    "id": RBACPolicy.id, "project_id": RBACPolicy.project_id,
    "object_type": RBACPolicy.object_type, "object_id": RBACPolicy.object_id,
    "action": RBACPolicy.action, "target_tenant": RBACPolicy.target_tenant,
    "target_project": RBACPolicy.target_tenant,
}


async def get(session: AsyncSession, ctx: RequestContext, policy_id: str) -> RBACPolicy:
    q = access.restrict(select(RBACPolicy).where(RBACPolicy.id == policy_id),
                        access.visible(ctx, RBACPolicy))
    row = (await session.scalars(q)).first()
    if row is None:
        raise not_found("rbac_policy", policy_id)
    return row


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[RBACPolicy], bool]:
    q = access.restrict(select(RBACPolicy), access.visible(ctx, RBACPolicy))
    q = query.apply_filters(q, COLUMNS, params)
    return await query.paginate(session, q, RBACPolicy, COLUMNS, params)


async def create(session: AsyncSession, ctx: RequestContext, data: dict[str, Any],
                 project_id: str) -> RBACPolicy:
    kind, object_id, action = data["object_type"], data["object_id"], data["action"]
    target = data.get("target_project", data["target_tenant"])
    if action == "access_as_external" and kind != "network":
        raise invalid_input(f"Action access_as_external is not supported for {kind}")
    obj = await session.get(OBJECTS[kind], object_id)
    if obj is None or not (ctx.is_admin or obj.project_id == access.project_of(ctx)):
        raise not_found(kind, object_id)
    row = RBACPolicy(id=new_uuid(), project_id=project_id, object_type=kind,
                     object_id=object_id, action=action, target_tenant=target,
                     description="", revision_number=0)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise conflict("An RBAC policy already exists with those values.",
                       "DuplicateRbacPolicy") from None
    if target == "*":
        _flag(obj, action, True)
    return row


def _flag(obj: Any, action: str, value: bool) -> None:
    if action == "access_as_external":
        obj.external = value
    elif hasattr(obj, "shared"):
        obj.shared = value
    standard.bump(obj)


async def _still_needed(session: AsyncSession, row: RBACPolicy, new_target: str | None) -> None:
    """Refuse to withdraw access that some other project still uses."""
    if row.object_type != "network" and row.object_type != "security_group":
        return
    remaining = set((await session.scalars(select(RBACPolicy.target_tenant).where(
        RBACPolicy.object_type == row.object_type, RBACPolicy.object_id == row.object_id,
        RBACPolicy.action == row.action, RBACPolicy.id != row.id))).all())
    if new_target:
        remaining.add(new_target)
    if "*" in remaining:
        return
    obj = await session.get(OBJECTS[row.object_type], row.object_id)
    if obj is None:
        return
    users: set[str] = set()
    if row.object_type == "network" and row.action == "access_as_shared":
        users = set((await session.scalars(select(Port.project_id).where(
            Port.network_id == row.object_id, Port.project_id != obj.project_id,
            Port.device_owner.not_like("network:%")))).all())
        users |= set((await session.scalars(select(Subnet.project_id).where(
            Subnet.network_id == row.object_id, Subnet.project_id != obj.project_id))).all())
    elif row.object_type == "security_group":
        users = set((await session.scalars(select(Port.project_id).join(
            PortSecurityGroup, PortSecurityGroup.port_id == Port.id).where(
            PortSecurityGroup.security_group_id == row.object_id,
            Port.project_id != obj.project_id))).all())
    elif row.action == "access_as_external":
        from nimbus.network.models import FloatingIP, Router

        users = set((await session.scalars(select(Router.project_id).where(
            Router.gw_network_id == row.object_id, Router.project_id != obj.project_id))).all())
        users |= set((await session.scalars(select(FloatingIP.project_id).where(
            FloatingIP.floating_network_id == row.object_id,
            FloatingIP.project_id != obj.project_id))).all())
    users.discard("")
    lost = users - remaining if row.target_tenant == "*" else (
        {row.target_tenant} & users) - remaining
    if lost:
        raise conflict(f"RBAC policy on object {row.object_id} cannot be removed because other "
                       "objects depend on it.", "RbacPolicyInUse")


async def update(session: AsyncSession, row: RBACPolicy, data: dict[str, Any]) -> None:
    target = data.get("target_project", data.get("target_tenant"))
    if target is None or target == row.target_tenant:
        return
    await _still_needed(session, row, target)
    obj = await session.get(OBJECTS[row.object_type], row.object_id)
    if obj is not None and row.target_tenant == "*":
        _flag(obj, row.action, False)
    if obj is not None and target == "*":
        _flag(obj, row.action, True)
    row.target_tenant = target
    standard.bump(row)


async def delete_policy(session: AsyncSession, row: RBACPolicy) -> None:
    await _still_needed(session, row, None)
    if row.target_tenant == "*":
        obj = await session.get(OBJECTS[row.object_type], row.object_id)
        if obj is not None:
            _flag(obj, row.action, False)
    await session.delete(row)


def render(row: RBACPolicy) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
            "object_type": row.object_type, "object_id": row.object_id, "action": row.action,
            "target_tenant": row.target_tenant, "target_project": row.target_tenant}


async def count_for(session: AsyncSession, object_type: str, object_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(RBACPolicy).where(
        RBACPolicy.object_type == object_type, RBACPolicy.object_id == object_id)) or 0)


"""Groups and their members. A member holds every role granted to the group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity import users
from nimbus.identity.errors import duplicate, not_found
from nimbus.identity.models import Assignment, Group, GroupMembership, Project, User
from nimbus.web.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

CORE = {"id", "name", "domain_id", "description", "links"}


def render(group: Group, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {**(group.extra or {})}
    body.update({
        "id": group.id, "name": group.name, "domain_id": group.domain_id,
        "description": group.description or "",
        "links": {"self": f"{base}/v3/groups/{group.id}"},
    })
    return body


async def get(session: AsyncSession, group_id: str) -> Group:
    group = await session.get(Group, group_id)
    if group is None:
        raise not_found("group", group_id)
    return group


async def _check_name_free(session: AsyncSession, domain_id: str, name: str) -> None:
    if await session.scalar(select(Group.id).where(Group.domain_id == domain_id,
                                                   Group.name == name)):
        raise duplicate("group", "name", name)


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise duplicate("group", "name", name) from None


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any],
                 domain_id: str) -> Group:
    name = users.clean_name(data["name"])
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise not_found("domain", domain_id)
    await _check_name_free(session, domain_id, name)
    group = Group(id=new_id(), name=name, domain_id=domain_id,
                  description=data.get("description"),
                  extra={k: v for k, v in data.items() if k not in CORE})
    session.add(group)
    await _flush(session, name)
    await svc.notify("identity.group.created", group.id)
    return group


async def update(session: AsyncSession, svc: IdentityService, group: Group,
                 data: dict[str, Any]) -> None:
    if not data:
        raise BadRequest("Invalid input for field 'group': give at least one attribute.")
    for field in ("id", "domain_id"):
        if field in data and data[field] != getattr(group, field):
            raise BadRequest(f"Invalid input for field '{field}': it cannot be changed.")
    if "name" in data:
        name = users.clean_name(data["name"])
        if name != group.name:
            await _check_name_free(session, group.domain_id, name)
            group.name = name
    if "description" in data:
        group.description = data["description"]
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        group.extra = {**(group.extra or {}), **extra}
    await _flush(session, group.name)
    await svc.notify("identity.group.updated", group.id)


async def member_ids(session: AsyncSession, group_id: str) -> list[str]:
    return list((await session.scalars(select(GroupMembership.user_id).where(
        GroupMembership.group_id == group_id))).all())


async def delete_group(session: AsyncSession, svc: IdentityService, group: Group) -> None:
    """The group goes with its grants; its members' tokens lose those roles, so they stop."""
    members = await member_ids(session, group.id)
    await session.execute(delete(Assignment).where(Assignment.actor_id == group.id))
    await session.execute(delete(GroupMembership).where(GroupMembership.group_id == group.id))
    await session.delete(group)
    for user_id in members:
        await svc.revoke(session, user_id=user_id)
    await svc.notify("identity.group.deleted", group.id)


async def list_groups(session: AsyncSession, filters: dict[str, Any]) -> list[Group]:
    query = select(Group)
    for field in ("name", "domain_id"):
        if filters.get(field) is not None:
            query = query.where(getattr(Group, field) == filters[field])
    for comparator, value in (filters.get("name_comparators") or {}).items():
        query = query.where(users.name_clause(Group.name, comparator, value))
    return list((await session.scalars(query.order_by(Group.name, Group.id))).all())


async def members(session: AsyncSession, group_id: str, filters: dict[str, Any]) -> list[User]:
    return await users.list_users(session, filters, await member_ids(session, group_id))


async def is_member(session: AsyncSession, group_id: str, user_id: str) -> bool:
    return await session.get(GroupMembership, (user_id, group_id)) is not None


async def add_member(session: AsyncSession, svc: IdentityService, group: Group,
                     user: User) -> None:
    if await is_member(session, group.id, user.id):
        return
    session.add(GroupMembership(user_id=user.id, group_id=group.id))
    await session.flush()
    await svc.notify("identity.group.updated", group.id, user_id=user.id, operation="added")


async def remove_member(session: AsyncSession, svc: IdentityService, group: Group,
                        user: User) -> None:
    """Tokens carry the roles the user held through the group: they stop working."""
    if not await is_member(session, group.id, user.id):
        raise not_member(group.id, user.id)
    await session.execute(delete(GroupMembership).where(
        GroupMembership.group_id == group.id, GroupMembership.user_id == user.id))
    await svc.revoke(session, user_id=user.id)
    await svc.notify("identity.group.updated", group.id, user_id=user.id, operation="removed")


def not_member(group_id: str, user_id: str) -> NotFound:
    return NotFound(f"User {user_id} is not a member of group {group_id}.")

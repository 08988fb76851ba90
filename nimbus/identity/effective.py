"""Which roles a user holds on a project, a domain or the system.

Direct grants to the user and to the user's groups, grants inherited from the project's domain
and ancestors (OS-INHERIT), then the closure over implied roles. As in Keystone, domain-specific
roles only serve to imply others: they never end up in a token themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.identity.models import (
    GLOBAL_ROLE,
    GROUP_DOMAIN,
    GROUP_PROJECT,
    GROUP_SYSTEM,
    SYSTEM_TARGET,
    USER_DOMAIN,
    USER_PROJECT,
    USER_SYSTEM,
    Assignment,
    GroupMembership,
    ImpliedRole,
    Project,
    Role,
)
from nimbus.identity.projects import ancestors


async def group_ids(session: AsyncSession, user_id: str) -> list[str]:
    rows = await session.scalars(
        select(GroupMembership.group_id).where(GroupMembership.user_id == user_id))
    return list(rows.all())


async def implied_closure(session: AsyncSession, role_ids: Iterable[str]) -> set[str]:
    found = set(role_ids)
    frontier = set(found)
    while frontier:
        rows = await session.scalars(select(ImpliedRole.implied_role_id).where(
            ImpliedRole.prior_role_id.in_(frontier)))
        frontier = set(rows.all()) - found
        found |= frontier
    return found


async def global_only(session: AsyncSession, role_ids: Iterable[str]) -> set[str]:
    """Drop domain-specific roles (and ids of roles that no longer exist)."""
    ids = set(role_ids)
    if not ids:
        return set()
    rows = await session.scalars(select(Role.id).where(
        Role.id.in_(ids), Role.domain_id == GLOBAL_ROLE))
    return set(rows.all())


async def _grants(session: AsyncSession, actors: list[str], kinds: tuple[str, ...],
                  targets: list[str], inherited: bool) -> set[str]:
    if not targets:
        return set()
    rows = await session.scalars(select(Assignment.role_id).where(
        Assignment.actor_id.in_(actors), Assignment.type.in_(kinds),
        Assignment.target_id.in_(targets), Assignment.inherited.is_(inherited)))
    return set(rows.all())


async def project_role_ids(session: AsyncSession, user_id: str, project: Project,
                           *, expand: bool = True) -> set[str]:
    actors = [user_id, *await group_ids(session, user_id)]
    direct = await _grants(session, actors, (USER_PROJECT, GROUP_PROJECT), [project.id], False)
    parents = [p.id for p in await ancestors(session, project)]
    inherited = await _grants(session, actors, (USER_PROJECT, GROUP_PROJECT), parents, True)
    inherited |= await _grants(session, actors, (USER_DOMAIN, GROUP_DOMAIN),
                               [project.domain_id], True)
    roles = direct | inherited
    if not expand:
        return roles
    return await global_only(session, await implied_closure(session, roles))


async def domain_role_ids(session: AsyncSession, user_id: str, domain_id: str) -> set[str]:
    actors = [user_id, *await group_ids(session, user_id)]
    roles = await _grants(session, actors, (USER_DOMAIN, GROUP_DOMAIN), [domain_id], False)
    return await global_only(session, await implied_closure(session, roles))


async def system_role_ids(session: AsyncSession, user_id: str) -> set[str]:
    actors = [user_id, *await group_ids(session, user_id)]
    roles = await _grants(session, actors, (USER_SYSTEM, GROUP_SYSTEM), [SYSTEM_TARGET], False)
    return await global_only(session, await implied_closure(session, roles))


async def role_pairs(session: AsyncSession, role_ids: Iterable[str]) -> list[list[str]]:
    """[[id, name], ...] sorted by name, for tokens."""
    ids = list(role_ids)
    if not ids:
        return []
    rows = await session.execute(select(Role.id, Role.name).where(Role.id.in_(ids)))
    return sorted(([rid, name] for rid, name in rows), key=lambda p: p[1])

"""Grants of roles to users and groups on projects, domains and the system (OS-INHERIT
included), and the role-assignment listing, direct or effective. No HTTP here.

Listed assignments are plain dicts shaped as Keystone's assignment driver shapes them:
``{"user_id"|"group_id", "project_id"|"domain_id"|"system", "role_id",
"inherited_to_projects"?, "indirect"?: {"group_id", "project_id"|"domain_id", "role_id"}}``;
`render` turns one into the API's role_assignment entity.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.identity import projects
from nimbus.identity.errors import not_found
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
    Group,
    GroupMembership,
    ImpliedRole,
    Project,
    Role,
    User,
)
from nimbus.web.errors import BadRequest, Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

TYPES = {
    ("user", "project"): USER_PROJECT, ("group", "project"): GROUP_PROJECT,
    ("user", "domain"): USER_DOMAIN, ("group", "domain"): GROUP_DOMAIN,
    ("user", "system"): USER_SYSTEM, ("group", "system"): GROUP_SYSTEM,
}
PROJECT_KINDS = (USER_PROJECT, GROUP_PROJECT)
DOMAIN_KINDS = (USER_DOMAIN, GROUP_DOMAIN)
SYSTEM_KINDS = (USER_SYSTEM, GROUP_SYSTEM)
Ref = dict[str, Any]


# -- grants ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """One grant as the URL names it: actor (user|group), target (project|domain|system)."""

    actor: str
    actor_id: str
    target: str
    target_id: str
    role_id: str
    inherited: bool = False

    @property
    def type(self) -> str:
        return TYPES[(self.actor, self.target)]

    @property
    def key(self) -> tuple[str, str, str, str, bool]:
        return (self.type, self.actor_id, self.target_id, self.role_id, self.inherited)


async def get_actor(session: AsyncSession, actor: str, actor_id: str, *,
                    allow_missing: bool = False) -> User | Group | None:
    row: User | Group | None = await session.get(User if actor == "user" else Group, actor_id)
    if row is None and not allow_missing:
        raise not_found(actor, actor_id)
    return row


async def get_target(session: AsyncSession, target: str, target_id: str) -> Project | None:
    if target == "project":
        return await projects.get(session, target_id)
    if target == "domain":
        return await projects.get_domain(session, target_id)
    return None


async def members(session: AsyncSession, group_id: str) -> list[str]:
    rows = await session.scalars(select(GroupMembership.user_id).where(
        GroupMembership.group_id == group_id))
    return list(rows.all())


async def groups_of(session: AsyncSession, user_id: str) -> list[str]:
    rows = await session.scalars(select(GroupMembership.group_id).where(
        GroupMembership.user_id == user_id))
    return list(rows.all())


def assignment_not_found(grant: Grant) -> NotFound:
    return NotFound(f"Could not find role assignment with role: {grant.role_id}, user or "
                    f"group: {grant.actor_id}, project, domain, or system: "
                    f"{grant.target_id}.")


async def create_grant(session: AsyncSession, svc: IdentityService, grant: Grant, role: Role,
                       target: Project | None) -> None:
    """Idempotent, as in Keystone: granting what is already granted is not an error."""
    if grant.target == "system" and role.domain_id != GLOBAL_ROLE:
        raise BadRequest(f"Role {role.id} is a domain-specific role. Unable to use a "
                         "domain-specific role in a system assignment.")
    if (grant.target == "project" and target is not None and role.domain_id != GLOBAL_ROLE
            and role.domain_id != target.domain_id):
        raise Forbidden(f"Project {target.id} must be in the same domain as the role "
                        f"{role.id} being assigned.")
    if await session.get(Assignment, grant.key) is None:
        session.add(Assignment(type=grant.type, actor_id=grant.actor_id,
                               target_id=grant.target_id, role_id=grant.role_id,
                               inherited=grant.inherited))
        await session.flush()
    await svc.notify("identity.role_assignment.created", grant.role_id, **_payload(grant))


async def check_grant(session: AsyncSession, grant: Grant) -> None:
    if await session.get(Assignment, grant.key) is None:
        raise assignment_not_found(grant)


async def delete_grant(session: AsyncSession, svc: IdentityService, grant: Grant) -> None:
    row = await session.get(Assignment, grant.key)
    if row is None:
        raise assignment_not_found(grant)
    await session.delete(row)
    await revoke_tokens(session, svc, grant)
    await svc.notify("identity.role_assignment.deleted", grant.role_id, **_payload(grant))


async def revoke_tokens(session: AsyncSession, svc: IdentityService, grant: Grant) -> None:
    """Revoke the tokens a removed grant may have contributed roles to."""
    users = ([grant.actor_id] if grant.actor == "user"
             else await members(session, grant.actor_id))
    for user_id in users:
        if grant.target == "project" and not grant.inherited:
            await svc.revoke(session, user_id=user_id, project_id=grant.target_id)
        elif grant.target == "domain":
            # Domain-scoped tokens, and project tokens in the domain (inherited grants).
            await svc.revoke(session, user_id=user_id, domain_id=grant.target_id)
        else:
            await svc.revoke(session, user_id=user_id)


def grant_of(row: Assignment) -> Grant:
    actor = "user" if row.type.startswith("User") else "group"
    target = ("project" if row.type in PROJECT_KINDS
              else "domain" if row.type in DOMAIN_KINDS else "system")
    return Grant(actor, row.actor_id, target, row.target_id, row.role_id, row.inherited)


async def revoke_role_holders(session: AsyncSession, svc: IdentityService, role: Role) -> None:
    """Revoke the tokens that hold `role` or roles it implied, before it changes or goes.

    Tokens list global roles, so one event by role id finds them. A domain-specific role
    never reaches a token, only what it implies does: its holders are found through the
    grants of the role and of every (domain-specific) role implying it."""
    if role.domain_id == GLOBAL_ROLE:
        await svc.revoke(session, role_id=role.id)
        return
    priors = {role.id}
    frontier = {role.id}
    while frontier:
        rows = await session.scalars(select(ImpliedRole.prior_role_id).where(
            ImpliedRole.implied_role_id.in_(frontier)))
        frontier = set(rows.all()) - priors
        priors |= frontier
    for row in (await session.scalars(select(Assignment).where(
            Assignment.role_id.in_(priors)))).all():
        await revoke_tokens(session, svc, grant_of(row))


def _payload(grant: Grant) -> dict[str, Any]:
    return {"role": grant.role_id, grant.actor: grant.actor_id,
            grant.target: grant.target_id if grant.target != "system" else "all",
            "inherited_to_projects": grant.inherited}


async def list_grant_roles(session: AsyncSession, actor: str, actor_id: str, target: str,
                           target_id: str, inherited: bool) -> list[Role]:
    rows = await session.scalars(select(Role).join(
        Assignment, Assignment.role_id == Role.id).where(
        Assignment.type == TYPES[(actor, target)], Assignment.actor_id == actor_id,
        Assignment.target_id == target_id, Assignment.inherited.is_(inherited)).order_by(
        Role.name))
    return list(rows.all())


# -- listing -----------------------------------------------------------------------------------
@dataclass
class AssignmentQuery:
    role_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    system: bool = False
    domain_id: str | None = None
    project_id: str | None = None
    include_subtree: bool = False
    inherited: bool | None = None  # None: both
    effective: bool = False


def _to_ref(row: Assignment) -> Ref:
    ref: Ref = {"role_id": row.role_id}
    ref["user_id" if row.type.startswith("User") else "group_id"] = row.actor_id
    if row.type in PROJECT_KINDS:
        ref["project_id"] = row.target_id
    elif row.type in DOMAIN_KINDS:
        ref["domain_id"] = row.target_id
    else:
        ref["system"] = {"all": True}
    if row.inherited:
        ref["inherited_to_projects"] = "projects"
    return ref


async def _select(session: AsyncSession, kinds: Sequence[str], *,
                  user_id: str | None = None, group_ids: Sequence[str] | None = None,
                  targets: Sequence[str] | None = None, inherited: bool | None = None,
                  role_id: str | None = None) -> list[Ref]:
    """Assignments of `kinds`; for the user and/or the groups given, else for everyone."""
    query = select(Assignment)
    if user_id is None and group_ids is None:
        query = query.where(Assignment.type.in_(kinds))
    else:
        parts = []
        user_kinds = [k for k in kinds if k.startswith("User")]
        group_kinds = [k for k in kinds if k.startswith("Group")]
        if user_id is not None and user_kinds:
            parts.append(and_(Assignment.type.in_(user_kinds), Assignment.actor_id == user_id))
        if group_ids and group_kinds:
            parts.append(and_(Assignment.type.in_(group_kinds),
                              Assignment.actor_id.in_(group_ids)))
        if not parts:
            return []
        query = query.where(or_(*parts))
    if targets is not None:
        if not targets:
            return []
        query = query.where(Assignment.target_id.in_(targets))
    if inherited is not None:
        query = query.where(Assignment.inherited.is_(inherited))
    if role_id is not None:
        query = query.where(Assignment.role_id == role_id)
    rows = (await session.scalars(query.order_by(Assignment.type, Assignment.target_id,
                                                 Assignment.actor_id))).all()
    return [_to_ref(row) for row in rows]


async def list_assignments(session: AsyncSession, q: AssignmentQuery) -> list[Ref]:
    subtree_ids: list[str] | None = None
    if q.project_id and q.include_subtree:
        await projects.get(session, q.project_id)
        subtree_ids = [p.id for p in await projects.subtree(session, q.project_id)]
    if q.effective:
        return await _effective(session, q, subtree_ids)
    return await _direct(session, q, subtree_ids)


async def _direct(session: AsyncSession, q: AssignmentQuery,
                  subtree_ids: list[str] | None) -> list[Ref]:
    actor: dict[str, Any] = {}
    if q.user_id:
        actor = {"user_id": q.user_id, "group_ids": []}
    elif q.group_id:
        actor = {"group_ids": [q.group_id]}
    refs: list[Ref] = []
    if not q.system:
        if q.domain_id:
            refs += await _select(session, DOMAIN_KINDS, targets=[q.domain_id],
                                  inherited=q.inherited, role_id=q.role_id, **actor)
        elif q.project_id:
            refs += await _select(session, PROJECT_KINDS,
                                  targets=[q.project_id, *(subtree_ids or [])],
                                  inherited=q.inherited, role_id=q.role_id, **actor)
        else:
            refs += await _select(session, PROJECT_KINDS + DOMAIN_KINDS,
                                  inherited=q.inherited, role_id=q.role_id, **actor)
    if (q.system or not (q.project_id or q.domain_id)) and q.inherited is not True:
        refs += await _select(session, SYSTEM_KINDS, targets=[SYSTEM_TARGET],
                              role_id=q.role_id, **actor)
    return refs


async def _effective(session: AsyncSession, q: AssignmentQuery,
                     subtree_ids: list[str] | None) -> list[Ref]:
    """Groups expanded into their members, inherited grants onto the projects they reach,
    implied roles added, domain-specific roles dropped (they never reach tokens)."""
    actor: dict[str, Any] = {}
    if q.user_id:
        actor = {"user_id": q.user_id, "group_ids": await groups_of(session, q.user_id)}
    inherited = False if q.domain_id else q.inherited
    raw: list[Ref] = []
    if q.system:
        raw += await _select(session, SYSTEM_KINDS, targets=[SYSTEM_TARGET], **actor)
    else:
        interest = [q.project_id, *(subtree_ids or [])] if q.project_id else None
        if inherited is not True:
            if q.domain_id:
                raw += await _select(session, DOMAIN_KINDS, targets=[q.domain_id],
                                     inherited=False, **actor)
            elif interest:
                raw += await _select(session, PROJECT_KINDS, targets=interest, inherited=False,
                                     **actor)
            else:
                raw += await _select(session, PROJECT_KINDS + DOMAIN_KINDS, inherited=False,
                                     **actor)
        if inherited is not False:
            if q.project_id and interest:
                project = await projects.get(session, q.project_id)
                raw += await _select(session, DOMAIN_KINDS, targets=[project.domain_id],
                                     inherited=True, **actor)
                sources = [p.id for p in await projects.ancestors(session, project)]
                if subtree_ids is not None:
                    sources += interest
                raw += await _select(session, PROJECT_KINDS, targets=sources, inherited=True,
                                     **actor)
            else:
                raw += await _select(session, PROJECT_KINDS + DOMAIN_KINDS, inherited=True,
                                     **actor)
        if not (q.project_id or q.domain_id) and inherited is not True:
            raw += await _select(session, SYSTEM_KINDS, targets=[SYSTEM_TARGET], **actor)
    refs: list[Ref] = []
    expander = _Expander(session, q, subtree_ids)
    for ref in raw:
        refs += await expander.expand(ref)
    refs = await add_implied(session, refs)
    roles = await _roles(session, {r["role_id"] for r in refs})
    refs = [r for r in refs if r["role_id"] in roles
            and roles[r["role_id"]].domain_id == GLOBAL_ROLE]
    if q.role_id:
        refs = [r for r in refs if r["role_id"] == q.role_id]
    return refs


class _Expander:
    def __init__(self, session: AsyncSession, q: AssignmentQuery,
                 subtree_ids: list[str] | None) -> None:
        self.session = session
        self.q = q
        self.subtree_ids = subtree_ids
        self._members: dict[str, list[str]] = {}

    async def users(self, group_id: str) -> list[str]:
        if self.q.user_id:
            return [self.q.user_id]
        if group_id not in self._members:
            self._members[group_id] = await members(self.session, group_id)
        return self._members[group_id]

    async def expand(self, ref: Ref) -> list[Ref]:
        if ref.get("inherited_to_projects"):
            return await self._inherited(ref)
        if "group_id" in ref:
            return [_as_member(ref, uid) for uid in await self.users(ref["group_id"])]
        return [ref]

    async def _inherited(self, ref: Ref) -> list[Ref]:
        session, q = self.session, self.q
        if q.project_id:
            ids = [q.project_id]
            if self.subtree_ids is not None:
                ids += self.subtree_ids
                if ref.get("project_id") in ids:
                    ids = [p.id for p in await projects.subtree(session, ref["project_id"])]
        elif "domain_id" in ref:
            ids = list((await session.scalars(select(Project.id).where(
                Project.domain_id == ref["domain_id"], Project.is_domain.is_(False)))).all())
        else:
            ids = [p.id for p in await projects.subtree(session, ref["project_id"])]
        base = {k: v for k, v in ref.items()
                if k not in ("inherited_to_projects", "project_id", "domain_id")}
        source = ({"project_id": ref["project_id"]} if "project_id" in ref
                  else {"domain_id": ref["domain_id"]})
        actors = ([_as_member(base, uid) for uid in await self.users(ref["group_id"])]
                  if "group_id" in ref else [base])
        out = []
        for one in actors:
            for pid in ids:
                new = copy.deepcopy(one)
                new["project_id"] = pid
                new.setdefault("indirect", {}).update(source)
                out.append(new)
        return out


def _as_member(ref: Ref, user_id: str) -> Ref:
    new = copy.deepcopy(ref)
    new["user_id"] = user_id
    new.setdefault("indirect", {})["group_id"] = new.pop("group_id")
    return new


def _key(ref: Ref) -> str:
    return json.dumps(ref, sort_keys=True)


async def add_implied(session: AsyncSession, refs: list[Ref]) -> list[Ref]:
    """Each assignment of a prior role also stands for its implied roles, recorded with the
    prior role in indirect.role_id. Cycles stop where an entry repeats."""
    graph: dict[str, list[str]] = {}
    for rule in (await session.scalars(select(ImpliedRole))).all():
        graph.setdefault(rule.prior_role_id, []).append(rule.implied_role_id)
    out = list(refs)
    seen = {_key(r) for r in refs}
    stack = list(refs)
    while stack:
        ref = stack.pop()
        for implied in graph.get(ref["role_id"], ()):
            new = copy.deepcopy(ref)
            new["role_id"] = implied
            new.setdefault("indirect", {})["role_id"] = ref["role_id"]
            key = _key(new)
            if key not in seen:
                seen.add(key)
                out.append(new)
                stack.append(new)
    return out


async def _roles(session: AsyncSession, ids: Iterable[str]) -> dict[str, Role]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {r.id: r for r in (await session.scalars(
        select(Role).where(Role.id.in_(wanted)))).all()}


async def limit_to_domain(session: AsyncSession, refs: list[Ref], domain_id: str) -> list[Ref]:
    """What a domain-scoped caller may see: assignments on the domain or its projects."""
    pids = {r["project_id"] for r in refs if "project_id" in r}
    inside = set((await session.scalars(select(Project.id).where(
        Project.id.in_(pids), Project.domain_id == domain_id))).all()) if pids else set()
    return [r for r in refs if r.get("domain_id") == domain_id or r.get("project_id") in inside]


# -- rendering ---------------------------------------------------------------------------------
class Names:
    """Names for include_names, looked up in bulk."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.projects: dict[str, Project] = {}
        self.roles: dict[str, Role] = {}

    @classmethod
    async def load(cls, session: AsyncSession, refs: list[Ref]) -> Names:
        names = cls()
        user_ids = {r["user_id"] for r in refs if "user_id" in r}
        group_ids = {r["group_id"] for r in refs if "group_id" in r}
        if user_ids:
            names.users = {u.id: u for u in (await session.scalars(
                select(User).where(User.id.in_(user_ids)))).all()}
        if group_ids:
            names.groups = {g.id: g for g in (await session.scalars(
                select(Group).where(Group.id.in_(group_ids)))).all()}
        names.roles = await _roles(session, {r["role_id"] for r in refs})
        wanted = {r[k] for r in refs for k in ("project_id", "domain_id") if k in r}
        wanted |= {u.domain_id for u in names.users.values()}
        wanted |= {g.domain_id for g in names.groups.values()}
        wanted |= {r.domain_id for r in names.roles.values() if r.domain_id != GLOBAL_ROLE}
        if wanted:
            names.projects = {p.id: p for p in (await session.scalars(
                select(Project).where(Project.id.in_(wanted)))).all()}
        more = {p.domain_id for p in names.projects.values() if not p.is_domain} - set(
            names.projects)
        if more:
            names.projects.update({p.id: p for p in (await session.scalars(
                select(Project).where(Project.id.in_(more)))).all()})
        return names

    def domain(self, domain_id: str) -> dict[str, Any]:
        found = self.projects.get(domain_id)
        return {"id": domain_id, "name": found.name if found else ""}

    def actor(self, kind: str, actor_id: str) -> dict[str, Any]:
        row = (self.users if kind == "user" else self.groups).get(actor_id)
        if row is None:
            return {"id": actor_id, "name": "", "domain": {"id": "", "name": ""}}
        return {"id": actor_id, "name": row.name, "domain": self.domain(row.domain_id)}

    def project(self, project_id: str) -> dict[str, Any]:
        found = self.projects.get(project_id)
        if found is None:
            return {"id": project_id, "name": "", "domain": {"id": "", "name": ""}}
        return {"id": project_id, "name": found.name, "domain": self.domain(found.domain_id)}

    def role(self, role_id: str) -> dict[str, Any]:
        found = self.roles.get(role_id)
        body: dict[str, Any] = {"id": role_id, "name": found.name if found else ""}
        if found is not None and found.domain_id != GLOBAL_ROLE:
            body["domain"] = self.domain(found.domain_id)
        return body


def render(ref: Ref, base: str, names: Names | None = None) -> dict[str, Any]:
    """The role_assignment entity, links included, as Keystone formats it. `base` ends in /v3."""
    out: dict[str, Any] = {"links": {}}
    indirect = ref.get("indirect", {})
    inherited = bool(ref.get("inherited_to_projects"))
    link = ""
    if "project_id" in ref:
        pid = ref["project_id"]
        out["scope"] = {"project": names.project(pid) if names else {"id": pid}}
        if "domain_id" in indirect:
            inherited, link = True, f"/domains/{indirect['domain_id']}"
        elif "project_id" in indirect:
            inherited, link = True, f"/projects/{indirect['project_id']}"
        else:
            link = f"/projects/{pid}"
    elif "domain_id" in ref:
        did = ref["domain_id"]
        out["scope"] = {"domain": names.domain(did) if names else {"id": did}}
        link = f"/domains/{did}"
    else:
        out["scope"] = {"system": ref["system"]}
        link = "/system"
    if "user_id" in ref:
        uid = ref["user_id"]
        out["user"] = names.actor("user", uid) if names else {"id": uid}
        if "group_id" in indirect:
            out["links"]["membership"] = f"{base}/groups/{indirect['group_id']}/users/{uid}"
            link += f"/groups/{indirect['group_id']}"
        else:
            link += f"/users/{uid}"
    else:
        gid = ref["group_id"]
        out["group"] = names.actor("group", gid) if names else {"id": gid}
        link += f"/groups/{gid}"
    out["role"] = names.role(ref["role_id"]) if names else {"id": ref["role_id"]}
    prior_link = ""
    if "role_id" in indirect:
        link += f"/roles/{indirect['role_id']}"
        # Keystone's own (odd) form of this link: the implied role comes first.
        prior_link = f"/prior_role/{ref['role_id']}/implies/{indirect['role_id']}"
    else:
        link += f"/roles/{ref['role_id']}"
    if inherited:
        out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        link = f"/OS-INHERIT{link}/inherited_to_projects"
    out["links"]["assignment"] = base + link
    if prior_link:
        out["links"]["prior_role"] = base + prior_link
    return out

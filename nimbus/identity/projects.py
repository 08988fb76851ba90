"""Projects and their hierarchy and tags. Domains are projects with is_domain=True."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.errors import duplicate, not_found
from nimbus.identity.models import (
    ROOT_DOMAIN,
    ApplicationCredential,
    Assignment,
    DomainConfig,
    Limit,
    Project,
    ProjectEndpoint,
    ProjectEndpointGroup,
    ProjectTag,
)
from nimbus.web.errors import BadRequest, Forbidden

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

MAX_DEPTH = 5
MAX_TAGS = 80
CORE = {"id", "name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags",
        "options", "links"}


def validate_tags(tags: Sequence[Any]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"Invalid input for field 'tags': at most {MAX_TAGS} tags.")
    clean = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > 255 or "/" in tag or "," in tag:
            raise BadRequest(f"Invalid input for field 'tags': {tag!r} is not a valid tag "
                             "(1 to 255 characters, no '/' or ',').")
        if tag not in clean:
            clean.append(tag)
    return clean


async def tags_of(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(ProjectTag.project_id, ProjectTag.name).where(ProjectTag.project_id.in_(ids)))
    for pid, name in rows:
        found[pid].append(name)
    return found


def render(p: Project, tags: list[str], base: str, *, as_project: bool = False) -> dict[str, Any]:
    """A domain renders as a domain, unless asked through the projects API (as_project)."""
    body: dict[str, Any] = {**(p.extra or {})}
    body.update({
        "id": p.id, "name": p.name, "description": p.description or "",
        "enabled": p.enabled, "tags": tags, "options": p.options or {},
    })
    if p.is_domain and as_project:
        body.update({"domain_id": None, "parent_id": None, "is_domain": True,
                     "links": {"self": f"{base}/v3/projects/{p.id}"}})
    elif p.is_domain:
        body["links"] = {"self": f"{base}/v3/domains/{p.id}"}
    else:
        body.update({"domain_id": p.domain_id, "parent_id": p.parent_id, "is_domain": False,
                     "links": {"self": f"{base}/v3/projects/{p.id}"}})
    return body


async def get(session: AsyncSession, project_id: str, *, domains_too: bool = False) -> Project:
    """A project; with domains_too, also a domain seen as a project (the projects API)."""
    project = await session.get(Project, project_id)
    if project is None or (project.is_domain and not domains_too):
        raise not_found("project", project_id)
    return project


async def get_domain(session: AsyncSession, domain_id: str) -> Project:
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise not_found("domain", domain_id)
    return domain


async def domain_by_name(session: AsyncSession, name: str) -> Project:
    domain = (await session.scalars(select(Project).where(
        Project.domain_id == ROOT_DOMAIN, Project.name == name))).first()
    if domain is None:
        raise not_found("domain", name)
    return domain


async def by_name(session: AsyncSession, name: str, domain_id: str) -> Project:
    project = (await session.scalars(select(Project).where(
        Project.domain_id == domain_id, Project.name == name,
        Project.is_domain.is_(False)))).first()
    if project is None:
        raise not_found("project", name)
    return project


async def ancestors(session: AsyncSession, project: Project) -> list[Project]:
    """Parents up to (not including) the domain, nearest first."""
    chain: list[Project] = []
    current = project
    while current.parent_id and current.parent_id != current.domain_id:
        parent = await session.get(Project, current.parent_id)
        if parent is None or parent.is_domain:
            break
        chain.append(parent)
        current = parent
    return chain


async def children(session: AsyncSession, project_id: str) -> list[Project]:
    return list((await session.scalars(select(Project).where(
        Project.parent_id == project_id, Project.is_domain.is_(False)))).all())


async def subtree(session: AsyncSession, project_id: str) -> list[Project]:
    found: list[Project] = []
    frontier = [project_id]
    while frontier:
        rows = (await session.scalars(select(Project).where(
            Project.parent_id.in_(frontier), Project.is_domain.is_(False)))).all()
        found.extend(rows)
        frontier = [r.id for r in rows]
    return found


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any],
                 default_domain: str | None) -> Project:
    name = data["name"]
    is_domain = bool(data.get("is_domain", False))
    parent_id = data.get("parent_id")
    domain_id = data.get("domain_id")
    if is_domain:
        return await create_domain(session, svc, data)
    if parent_id:
        parent = await session.get(Project, parent_id)
        if parent is None:
            raise not_found("project", parent_id)
        if parent.is_domain:
            domain_id = domain_id or parent.id
        else:
            domain_id = domain_id or parent.domain_id
            if domain_id != parent.domain_id:
                raise BadRequest("Cannot create project, the parent is in another domain.")
            if len(await ancestors(session, parent)) + 2 > MAX_DEPTH:
                raise Forbidden(f"Max hierarchy depth reached for {parent_id} branch.")
    domain_id = domain_id or default_domain or "default"
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise BadRequest(f"Could not find domain: {domain_id}.")
    parent_id = parent_id or domain_id
    if await session.scalar(select(Project.id).where(
            Project.domain_id == domain_id, Project.name == name)):
        raise duplicate("project", "name", name)
    extra = {k: v for k, v in data.items() if k not in CORE}
    project = Project(id=new_id(), name=name, domain_id=domain_id, parent_id=parent_id,
                      description=data.get("description") or "",
                      enabled=data.get("enabled", True), is_domain=False, extra=extra,
                      options=data.get("options") or {})
    session.add(project)
    await session.flush()
    for tag in validate_tags(data.get("tags") or []):
        session.add(ProjectTag(project_id=project.id, name=tag))
    await svc.notify("identity.project.created", project.id)
    return project


async def create_domain(session: AsyncSession, svc: IdentityService,
                        data: dict[str, Any]) -> Project:
    name = data["name"]
    domain_id = data.get("explicit_domain_id") or data.get("id_override") or new_id()
    if await session.scalar(select(Project.id).where(
            Project.domain_id == ROOT_DOMAIN, Project.name == name)):
        raise duplicate("domain", "name", name)
    if await session.get(Project, domain_id) is not None:
        raise duplicate("domain", "id", domain_id)
    extra = {k: v for k, v in data.items()
             if k not in CORE and k not in ("explicit_domain_id", "id_override")}
    domain = Project(id=domain_id, name=name, domain_id=ROOT_DOMAIN, parent_id=None,
                     description=data.get("description") or "",
                     enabled=data.get("enabled", True), is_domain=True, extra=extra,
                     options=data.get("options") or {})
    session.add(domain)
    await session.flush()
    for tag in validate_tags(data.get("tags") or []):
        session.add(ProjectTag(project_id=domain.id, name=tag))
    await svc.notify("identity.domain.created", domain.id)
    return domain


async def set_tags(session: AsyncSession, project_id: str, tags: Sequence[str]) -> list[str]:
    clean = validate_tags(tags)
    await session.execute(delete(ProjectTag).where(ProjectTag.project_id == project_id))
    for tag in clean:
        session.add(ProjectTag(project_id=project_id, name=tag))
    return clean


async def update(session: AsyncSession, svc: IdentityService, project: Project,
                 data: dict[str, Any]) -> None:
    kind = "domain" if project.is_domain else "project"
    for field in ("domain_id", "is_domain", "parent_id", "id"):
        if field in data and data[field] != getattr(project, field):
            raise BadRequest(f"Invalid input for field '{field}': it cannot be changed.")
    if "name" in data and data["name"] != project.name:
        scope = ROOT_DOMAIN if project.is_domain else project.domain_id
        if await session.scalar(select(Project.id).where(
                Project.domain_id == scope, Project.name == data["name"])):
            raise duplicate(kind, "name", data["name"])
        project.name = data["name"]
    if "description" in data:
        project.description = data["description"] or ""
    if "options" in data:
        project.options = {**(project.options or {}), **(data["options"] or {})}
    if "tags" in data:
        await set_tags(session, project.id, data["tags"] or [])
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        project.extra = {**(project.extra or {}), **extra}
    if "enabled" in data and data["enabled"] != project.enabled:
        project.enabled = data["enabled"]
        if not project.enabled:
            if project.is_domain:
                await svc.revoke(session, domain_id=project.id)
            else:
                await svc.revoke(session, project_id=project.id)
    await svc.notify(f"identity.{kind}.updated", project.id)


async def delete_project(session: AsyncSession, svc: IdentityService, project: Project) -> None:
    if await children(session, project.id):
        raise Forbidden(f"Cannot delete the project {project.id} since it is not a leaf in "
                        "the hierarchy. Use the cascade option if you want to delete a "
                        "subtree.")
    await _remove_project_rows(session, svc, project)
    await svc.notify("identity.project.deleted", project.id)


async def _remove_project_rows(session: AsyncSession, svc: IdentityService,
                               project: Project) -> None:
    await session.execute(delete(Assignment).where(Assignment.target_id == project.id))
    for model in (ApplicationCredential, ProjectTag, ProjectEndpoint, ProjectEndpointGroup,
                  Limit):
        await session.execute(delete(model).where(model.project_id == project.id))
    await session.delete(project)
    await svc.revoke(session, project_id=project.id)


Tagged = list[tuple[Project, list[str]]]


async def with_tags(session: AsyncSession, query: Any) -> Tagged:
    """Run a project query joined with tags: one round trip instead of two."""
    query = query.add_columns(ProjectTag.name).outerjoin(
        ProjectTag, ProjectTag.project_id == Project.id)
    found: dict[str, tuple[Project, list[str]]] = {}
    for project, tag in (await session.execute(query)).all():
        entry = found.setdefault(project.id, (project, []))
        if tag is not None:
            entry[1].append(tag)
    return list(found.values())


async def list_projects(session: AsyncSession, filters: dict[str, Any],
                        ids: Sequence[str] | None = None) -> list[Project]:
    return [p for p, _ in await list_projects_tagged(session, filters, ids)]


async def list_projects_tagged(session: AsyncSession, filters: dict[str, Any],
                               ids: Sequence[str] | None = None) -> Tagged:
    query = select(Project).where(Project.is_domain.is_(False))
    if ids is not None:
        query = query.where(Project.id.in_(ids))
    for field in ("name", "domain_id", "parent_id", "enabled"):
        if filters.get(field) is not None:
            query = query.where(getattr(Project, field) == filters[field])
    if filters.get("is_domain"):
        query = select(Project).where(Project.is_domain.is_(True))
        if filters.get("name") is not None:
            query = query.where(Project.name == filters["name"])
    query = await _tag_filters(query, filters)
    return await with_tags(session, query.order_by(Project.name))


async def _tag_filters(query: Any, filters: dict[str, Any]) -> Any:
    def tags_param(key: str) -> list[str]:
        raw = filters.get(key)
        return [t for t in raw.split(",") if t] if raw else []

    for tag in tags_param("tags"):
        query = query.where(Project.id.in_(select(ProjectTag.project_id).where(
            ProjectTag.name == tag)))
    any_tags = tags_param("tags-any")
    if any_tags:
        query = query.where(Project.id.in_(select(ProjectTag.project_id).where(
            ProjectTag.name.in_(any_tags))))
    not_tags = tags_param("not-tags")
    if not_tags:
        # excluded: projects having all of these tags
        having_all = select(ProjectTag.project_id).where(ProjectTag.name.in_(not_tags)).group_by(
            ProjectTag.project_id)
        having_all = having_all.having(func.count() == len(set(not_tags)))
        query = query.where(Project.id.not_in(having_all))
    not_any = tags_param("not-tags-any")
    if not_any:
        query = query.where(Project.id.not_in(select(ProjectTag.project_id).where(
            ProjectTag.name.in_(not_any))))
    return query


async def list_domains(session: AsyncSession, filters: dict[str, Any]) -> list[Project]:
    return [d for d, _ in await list_domains_tagged(session, filters)]


async def list_domains_tagged(session: AsyncSession, filters: dict[str, Any]) -> Tagged:
    query = select(Project).where(Project.is_domain.is_(True))
    for field in ("name", "enabled"):
        if filters.get(field) is not None:
            query = query.where(getattr(Project, field) == filters[field])
    query = await _tag_filters(query, filters)
    return await with_tags(session, query.order_by(Project.name))


async def delete_domain(session: AsyncSession, svc: IdentityService, domain: Project) -> None:
    """A disabled domain goes with everything in it: projects, users, groups, domain roles."""
    from nimbus.identity.models import GLOBAL_ROLE, Group, Role, User

    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    projects = (await session.scalars(select(Project).where(
        Project.domain_id == domain.id))).all()
    parent_of = {p.id: p.parent_id for p in projects}

    def depth(pid: str) -> int:
        n = 0
        while parent_of.get(pid) in parent_of:
            pid, n = parent_of[pid] or "", n + 1
        return n

    for project in sorted(projects, key=lambda p: -depth(p.id)):  # leaves first
        await _remove_project_rows(session, svc, project)
    user_ids = (await session.scalars(select(User.id).where(User.domain_id == domain.id))).all()
    group_ids = (await session.scalars(
        select(Group.id).where(Group.domain_id == domain.id))).all()
    actors = [*user_ids, *group_ids]
    if actors:
        await session.execute(delete(Assignment).where(Assignment.actor_id.in_(actors)))
        await session.execute(delete(User).where(User.id.in_(user_ids)))
        await session.execute(delete(Group).where(Group.id.in_(group_ids)))
    roles = (await session.scalars(select(Role).where(
        Role.domain_id == domain.id, Role.domain_id != GLOBAL_ROLE))).all()
    for role in roles:
        await session.delete(role)
    await session.execute(delete(Assignment).where(Assignment.target_id == domain.id))
    await session.execute(delete(ProjectTag).where(ProjectTag.project_id == domain.id))
    await session.execute(delete(DomainConfig).where(DomainConfig.domain_id == domain.id))
    await session.execute(delete(Limit).where(Limit.domain_id == domain.id))
    await session.delete(domain)
    await svc.revoke(session, domain_id=domain.id)
    await svc.notify("identity.domain.deleted", domain.id)

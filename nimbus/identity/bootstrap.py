"""First-start (and every-start) bootstrap, as `keystone-manage bootstrap` does it.

Idempotent: the Default domain, the standard roles and their implications, the admin user and
project with the admin role on the project and on the system, the `service` project with the
cloud's own service user (admin and service roles), the region, and a public,
internal and admin endpoint for every service of the deployment (URLs refreshed if they moved).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.clients.credentials import SERVICE_PROJECT, SERVICE_USER, service_password
from nimbus.common.ids import new_id
from nimbus.common.timeutils import utcnow
from nimbus.identity.models import (
    GLOBAL_ROLE,
    ROOT_DOMAIN,
    SYSTEM_TARGET,
    USER_PROJECT,
    USER_SYSTEM,
    Assignment,
    CatalogService,
    Endpoint,
    ImpliedRole,
    Project,
    Region,
    Role,
    User,
)
from nimbus.service import CATALOG

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

DEFAULT_DOMAIN_ID = "default"
STANDARD_ROLES = ("admin", "manager", "member", "reader", "service", "ResellerAdmin")
IMPLIED = (("admin", "manager"), ("manager", "member"), ("member", "reader"))
INTERFACES = ("public", "internal", "admin")


def admin_password(svc: IdentityService) -> str:
    """The configured admin password, else the one generated on first start."""
    if svc.settings.admin_password:
        return svc.settings.admin_password
    path: Path = svc.cloud.settings.state_dir / "admin-password"
    if path.is_file():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password


async def bootstrap(svc: IdentityService) -> None:
    password = admin_password(svc)
    async with svc.db.session() as session:
        exists = await session.scalar(select(User.id).where(
            User.name == svc.settings.admin_user, User.domain_id == DEFAULT_DOMAIN_ID))
    password_hash = None if exists else await svc.hasher.hash(password)
    async with svc.db.session() as session:
        service_exists = await session.scalar(select(User.id).where(
            User.name == SERVICE_USER, User.domain_id == DEFAULT_DOMAIN_ID))
    service_hash = None if service_exists else await svc.hasher.hash(
        service_password(svc.cloud.settings.state_dir))
    async with svc.db.transaction() as session:
        await _domain(session)
        roles = await _roles(session)
        project_id = await _project(session, svc.settings.admin_project)
        user_id = await _admin_user(session, svc.settings.admin_user, password_hash, project_id)
        for kind, target in ((USER_PROJECT, project_id), (USER_SYSTEM, SYSTEM_TARGET)):
            await _grant(session, kind, user_id, target, roles["admin"])
        service_project = await _project(session, SERVICE_PROJECT)
        service_user = await _admin_user(session, SERVICE_USER, service_hash, service_project)
        for role in ("admin", "service"):
            await _grant(session, USER_PROJECT, service_user, service_project, roles[role])
        await _region(session, svc.cloud.settings.region)
        for name in svc.cloud.settings.services:
            if name in CATALOG:
                await _catalog_entry(session, svc, name)
    svc.catalog.invalidate()


async def _domain(session: AsyncSession) -> None:
    if await session.get(Project, DEFAULT_DOMAIN_ID) is None:
        session.add(Project(id=DEFAULT_DOMAIN_ID, name="Default", domain_id=ROOT_DOMAIN,
                            description="The default domain", enabled=True, is_domain=True,
                            extra={}, options={}))


async def _roles(session: AsyncSession) -> dict[str, str]:
    found = {r.name: r.id for r in (await session.scalars(
        select(Role).where(Role.domain_id == GLOBAL_ROLE))).all()}
    for name in STANDARD_ROLES:
        if name not in found:
            found[name] = new_id()
            session.add(Role(id=found[name], name=name, domain_id=GLOBAL_ROLE, extra={},
                             options={}))
    await session.flush()
    for prior, implied in IMPLIED:
        key = (found[prior], found[implied])
        if await session.get(ImpliedRole, key) is None:
            session.add(ImpliedRole(prior_role_id=key[0], implied_role_id=key[1]))
    return found


async def _project(session: AsyncSession, name: str) -> str:
    """A project in the Default domain, created if missing."""
    pid = await session.scalar(select(Project.id).where(
        Project.name == name, Project.domain_id == DEFAULT_DOMAIN_ID))
    if pid:
        return pid
    pid = new_id()
    session.add(Project(id=pid, name=name, domain_id=DEFAULT_DOMAIN_ID, parent_id=DEFAULT_DOMAIN_ID,
                        description="Bootstrap project for initializing the cloud.",
                        enabled=True, is_domain=False, extra={}, options={}))
    return pid


async def _admin_user(session: AsyncSession, name: str, password_hash: str | None,
                      project_id: str) -> str:
    """A user in the Default domain with a default project, created if missing."""
    uid = await session.scalar(select(User.id).where(
        User.name == name, User.domain_id == DEFAULT_DOMAIN_ID))
    if uid:
        return uid
    uid = new_id()
    session.add(User(id=uid, name=name, domain_id=DEFAULT_DOMAIN_ID, enabled=True,
                     default_project_id=project_id, password_hash=password_hash,
                     password_created_at=utcnow(), extra={}, options={}))
    return uid


async def _grant(session: AsyncSession, kind: str, actor: str, target: str, role: str) -> None:
    key = (kind, actor, target, role, False)
    if await session.get(Assignment, key) is None:
        session.add(Assignment(type=kind, actor_id=actor, target_id=target, role_id=role,
                               inherited=False))


async def _region(session: AsyncSession, region: str) -> None:
    if await session.get(Region, region) is None:
        session.add(Region(id=region, description="", parent_region_id=None, extra={}))


async def _catalog_entry(session: AsyncSession, svc: IdentityService, name: str) -> None:
    kind = CATALOG[name][0]
    region = svc.cloud.settings.region
    url = svc.cloud.catalog_url(name)
    service = (await session.scalars(
        select(CatalogService).where(CatalogService.type == kind))).first()
    if service is None:
        service = CatalogService(id=new_id(), type=kind, name=_service_name(name),
                                 description=f"nimbus {name} service", enabled=True, extra={})
        session.add(service)
        await session.flush()
    existing = {ep.interface: ep for ep in (await session.scalars(
        select(Endpoint).where(Endpoint.service_id == service.id))).all()}
    for interface in INTERFACES:
        ep = existing.get(interface)
        if ep is None:
            session.add(Endpoint(id=new_id(), service_id=service.id, interface=interface,
                                 url=url, region_id=region, enabled=True, extra={}))
        elif ep.url != url:
            ep.url = url


def _service_name(name: str) -> str:
    # The names DevStack gives, which some clients and docs expect.
    return {"identity": "keystone", "compute": "nova", "placement": "placement",
            "image": "glance", "network": "neutron", "volume": "cinderv3",
            "object": "swift"}.get(name, name)

"""Application credentials and their access rules.

A credential belongs to one user, is bound to the project (or the system) of the token that
created it, and carries a subset of that token's roles. Its secret is hashed (argon2id) and shown
only once, in the create response. Access rules are kept per user and shared by that user's
credentials; a rule cannot be deleted while a credential uses it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.common.timeutils import aware, parse_isotime, utcnow
from nimbus.identity import effective
from nimbus.identity.errors import duplicate, not_found
from nimbus.identity.models import (
    GLOBAL_ROLE,
    AccessRule,
    AppCredAccessRule,
    ApplicationCredential,
    Project,
    Role,
)
from nimbus.web.errors import BadRequest, Forbidden

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


# -- helpers shared with trusts ---------------------------------------------------------------
def parse_expiry(value: str | None) -> datetime | None:
    """Keystone's parse_expiration_date: ISO 8601, naive means UTC, and not in the past."""
    if value is None:
        return None
    try:
        when = parse_isotime(value)
    except ValueError:
        raise BadRequest("Timestamp not in expected format. The server could not comply with "
                         "the request since it is either malformed or otherwise incorrect. "
                         "The client is assumed to be in error.") from None
    if when <= utcnow():
        raise BadRequest("The 'expires_at' must not be before now. The server could not comply "
                         "with the request since it is either malformed or otherwise "
                         "incorrect. The client is assumed to be in error.")
    return when


def expired(when: datetime | None) -> bool:
    return when is not None and aware(when) <= utcnow()


async def resolve_roles(session: AsyncSession, refs: Sequence[dict[str, Any]]) -> list[Role]:
    """Roles given as {"id": ...} or {"name": ...} (a name means a global role).

    An "id" that is no role's id is also tried as a global role's name: the openstack CLI sends
    names as ids when the caller may not look roles up (as a trustor usually may not)."""
    found: list[Role] = []
    for ref in refs:
        if ref.get("id") or ref.get("name"):
            role = await session.get(Role, ref["id"]) if ref.get("id") else None
            if role is None:
                role = (await session.scalars(select(Role).where(
                    Role.name == (ref.get("name") or ref["id"]),
                    Role.domain_id == GLOBAL_ROLE))).first()
            if role is None:
                raise not_found("role", ref.get("id") or ref["name"])
        else:
            raise BadRequest("Invalid input for field 'roles': each role needs an id or a name.")
        if role.id not in {r.id for r in found}:
            found.append(role)
    return found


async def roles_by_id(session: AsyncSession, role_ids: Iterable[str]) -> list[Role]:
    """The roles that still exist, sorted by name (deleted ones drop out, as in Keystone)."""
    ids = list(role_ids)
    if not ids:
        return []
    rows = (await session.scalars(select(Role).where(Role.id.in_(ids)))).all()
    return sorted(rows, key=lambda r: r.name)


def render_role(role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name,
            "domain_id": None if role.domain_id == GLOBAL_ROLE else role.domain_id}


def generate_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


# -- application credentials ------------------------------------------------------------------
def render(cred: ApplicationCredential, roles: Sequence[Role], rules: Sequence[AccessRule],
           base: str, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cred.id,
        "name": cred.name,
        "description": cred.description,
        "project_id": cred.project_id,
        "expires_at": (aware(cred.expires_at).strftime("%Y-%m-%dT%H:%M:%S.%f")
                       if cred.expires_at else None),
        "unrestricted": bool(cred.unrestricted),
        "roles": [render_role(r) for r in roles],
        "links": {"self": f"{base}/v3/users/{cred.user_id}/application_credentials/{cred.id}"},
    }
    if cred.system:
        body["system"] = cred.system
    if rules:
        body["access_rules"] = [render_rule(r) for r in rules]
    if secret is not None:
        body["secret"] = secret
    return body


async def details(session: AsyncSession, creds: Sequence[ApplicationCredential],
                  ) -> dict[str, tuple[list[Role], list[AccessRule]]]:
    """Roles and access rules of each credential, for rendering."""
    out: dict[str, tuple[list[Role], list[AccessRule]]] = {}
    all_roles = {r.id: r for r in await roles_by_id(
        session, {rid for c in creds for rid in (c.role_ids or [])})}
    rules: dict[str, list[AccessRule]] = {c.id: [] for c in creds}
    if creds:
        rows = await session.execute(
            select(AppCredAccessRule.application_credential_id, AccessRule)
            .join(AccessRule, AccessRule.id == AppCredAccessRule.access_rule_id)
            .where(AppCredAccessRule.application_credential_id.in_([c.id for c in creds])))
        for cred_id, rule in rows:
            rules[cred_id].append(rule)
    for cred in creds:
        roles = sorted((all_roles[r] for r in cred.role_ids or [] if r in all_roles),
                       key=lambda r: r.name)
        out[cred.id] = (roles, sorted(rules[cred.id], key=lambda r: r.id))
    return out


async def get(session: AsyncSession, cred_id: str) -> ApplicationCredential:
    cred = await session.get(ApplicationCredential, cred_id)
    if cred is None:
        raise not_found("application credential", cred_id)
    return cred


async def list_for_user(session: AsyncSession, user_id: str,
                        name: str | None = None) -> list[ApplicationCredential]:
    query = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
    if name is not None:
        query = query.where(ApplicationCredential.name == name)
    return list((await session.scalars(query.order_by(ApplicationCredential.name))).all())


async def _granted_roles(session: AsyncSession, data: dict[str, Any], user_id: str,
                         project: Project | None, token_role_ids: Sequence[str]) -> list[str]:
    held = set(token_role_ids)
    if not data.get("roles"):
        return sorted(held)
    if project is not None:
        # Keystone recomputes a token's roles when it validates it, so a role granted after
        # the login counts; our tokens carry their roles, so ask for the current ones.
        held |= await effective.project_role_ids(session, user_id, project)
    wanted = await resolve_roles(session, data["roles"])
    # The implied roles come along, as when the roles default to the token's.
    ids = await effective.implied_closure(session, [r.id for r in wanted])
    if not ids <= held:
        raise BadRequest("Invalid application credential: Cannot create an application "
                         "credential with unassigned role")
    if project is not None:
        assigned = await effective.project_role_ids(session, user_id, project)
        missing = ids - assigned
        if missing:
            raise BadRequest(f"Invalid application credential: Could not find role assignment "
                             f"with role: {sorted(missing)[0]}, user or group: {user_id}, "
                             f"project, domain, or system: {project.id}.")
    return sorted(ids)


async def _access_rules(session: AsyncSession, user_id: str,
                        refs: Sequence[dict[str, Any]]) -> list[AccessRule]:
    rules: list[AccessRule] = []
    for ref in refs:
        rule = None
        if ref.get("id"):
            rule = await session.get(AccessRule, ref["id"])
            if rule is not None and rule.user_id != user_id:
                raise BadRequest(f"Invalid input for field 'access_rules': access rule "
                                 f"{ref['id']} belongs to another user.")
        if rule is None:
            missing = [k for k in ("service", "path", "method") if not ref.get(k)]
            if missing:
                if ref.get("id") and set(ref) == {"id"}:
                    raise not_found("access rule", ref["id"])
                raise BadRequest(f"Invalid input for field 'access_rules': "
                                 f"'{missing[0]}' is a required property.")
            rule = (await session.scalars(select(AccessRule).where(
                AccessRule.user_id == user_id, AccessRule.service == ref["service"],
                AccessRule.path == ref["path"], AccessRule.method == ref["method"]))).first()
        if rule is None:
            rule = AccessRule(id=ref.get("id") or new_id(), user_id=user_id,
                              service=ref["service"], path=ref["path"], method=ref["method"])
            session.add(rule)
            await session.flush()
        if rule.id not in {r.id for r in rules}:
            rules.append(rule)
    return rules


async def create(session: AsyncSession, svc: IdentityService, *, user_id: str,
                 project_id: str | None, system: str | None, token_role_ids: Sequence[str],
                 data: dict[str, Any], secret_hash: str,
                 ) -> tuple[ApplicationCredential, list[Role], list[AccessRule]]:
    name = data["name"]
    if await session.scalar(select(ApplicationCredential.id).where(
            ApplicationCredential.user_id == user_id, ApplicationCredential.name == name)):
        raise duplicate("application_credential", "name", name)
    project = None
    if project_id is not None:
        project = await session.get(Project, project_id)
        if project is None:
            raise not_found("project", project_id)
    role_ids = await _granted_roles(session, data, user_id, project, token_role_ids)
    if not role_ids:
        raise BadRequest("Invalid application credential: the token that creates it has no "
                         "roles to delegate.")
    cred = ApplicationCredential(
        id=new_id(), name=name, user_id=user_id, project_id=project_id, system=system,
        secret_hash=secret_hash, description=data.get("description"),
        expires_at=parse_expiry(data.get("expires_at")),
        unrestricted=bool(data.get("unrestricted")), role_ids=role_ids)
    session.add(cred)
    await session.flush()
    rules = await _access_rules(session, user_id, data.get("access_rules") or [])
    for rule in rules:
        session.add(AppCredAccessRule(application_credential_id=cred.id,
                                      access_rule_id=rule.id))
    await svc.notify("identity.application_credential.created", cred.id)
    return cred, await roles_by_id(session, role_ids), rules


async def delete(session: AsyncSession, svc: IdentityService,
                 cred: ApplicationCredential) -> None:
    await session.execute(sql_delete(AppCredAccessRule).where(
        AppCredAccessRule.application_credential_id == cred.id))
    await session.delete(cred)
    await svc.revoke(session, app_cred_id=cred.id)
    await svc.notify("identity.application_credential.deleted", cred.id)


async def delete_for_user(session: AsyncSession, svc: IdentityService, user_id: str,
                          project_id: str | None = None) -> None:
    """For user deletion (all of them, and the access rules), or a role removed from a user
    on a project (the credentials on that project), as Keystone does."""
    query = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
    if project_id is not None:
        query = query.where(ApplicationCredential.project_id == project_id)
    for cred in (await session.scalars(query)).all():
        await delete(session, svc, cred)
    if project_id is None:
        await session.execute(sql_delete(AccessRule).where(AccessRule.user_id == user_id))


# -- access rules -----------------------------------------------------------------------------
def render_rule(rule: AccessRule, base: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rule.id, "service": rule.service, "path": rule.path,
                            "method": rule.method}
    if base is not None:
        body["links"] = {"self": f"{base}/v3/users/{rule.user_id}/access_rules/{rule.id}"}
    return body


async def list_rules(session: AsyncSession, user_id: str,
                     filters: dict[str, str | None]) -> list[AccessRule]:
    query = select(AccessRule).where(AccessRule.user_id == user_id)
    for field in ("service", "path", "method"):
        if filters.get(field) is not None:
            query = query.where(getattr(AccessRule, field) == filters[field])
    return list((await session.scalars(query.order_by(AccessRule.id))).all())


async def get_rule(session: AsyncSession, user_id: str, rule_id: str) -> AccessRule:
    rule = await session.get(AccessRule, rule_id)
    if rule is None or rule.user_id != user_id:
        raise not_found("access rule", rule_id)
    return rule


async def delete_rule(session: AsyncSession, svc: IdentityService, rule: AccessRule) -> None:
    if await session.scalar(select(AppCredAccessRule.application_credential_id).where(
            AppCredAccessRule.access_rule_id == rule.id).limit(1)):
        raise Forbidden("May not delete access rule in use")
    await session.delete(rule)
    await svc.notify("identity.access_rule.deleted", rule.id)

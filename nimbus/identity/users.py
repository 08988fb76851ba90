"""Users: their attributes, options, passwords, and what goes with them when they go.

Passwords arrive here already hashed (hashing takes tens of milliseconds, so callers hash
before they open a write transaction); the clear text never reaches this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.common.timeutils import isotime, parse_isotime, utcnow
from nimbus.identity.errors import duplicate, not_found
from nimbus.identity.models import (
    GROUP_DOMAIN,
    GROUP_PROJECT,
    USER_DOMAIN,
    USER_PROJECT,
    AccessRule,
    ApplicationCredential,
    Assignment,
    Credential,
    Group,
    GroupMembership,
    Project,
    Trust,
    User,
)
from nimbus.web.errors import BadRequest, Forbidden, Unauthorized

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

# Attributes with a column (or computed); anything else a client sends is kept in `extra`.
CORE = {"id", "name", "domain_id", "enabled", "default_project_id", "description", "password",
        "original_password", "options", "links", "password_expires_at", "federated"}
BOOL_OPTIONS = ("ignore_change_password_upon_first_use", "ignore_password_expiry",
                "ignore_lockout_failure_attempts", "lock_password", "multi_factor_auth_enabled")
MFA_RULES = "multi_factor_auth_rules"
OPTIONS = (*BOOL_OPTIONS, MFA_RULES)
MAX_PASSWORD = 4096
EXPIRY_OPERATORS = ("lt", "lte", "gt", "gte", "eq", "neq")
NAME_COMPARATORS = ("contains", "icontains", "startswith", "istartswith", "endswith",
                    "iendswith")


# -- validation --------------------------------------------------------------------------------
def clean_name(name: Any, field: str = "name") -> str:
    """Keystone strips names; what is left must not be empty."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(f"Invalid input for field '{field}': expected 1 to 255 characters, "
                         "not only spaces.")
    return name.strip()


def validate_options(options: Any) -> dict[str, Any]:
    """The user options Keystone knows. A None value means 'unset this option'."""
    if not isinstance(options, dict):
        raise BadRequest("Invalid input for field 'options': expected an object.")
    for key, value in options.items():
        if key not in OPTIONS:
            raise BadRequest(f"Invalid input for field 'options': '{key}' is not a known "
                             f"option (known: {', '.join(OPTIONS)}).")
        if value is None:
            continue
        if key in BOOL_OPTIONS and not isinstance(value, bool):
            raise BadRequest(f"Invalid input for field 'options.{key}': expected a boolean.")
        if key == MFA_RULES:
            _validate_mfa_rules(value)
    return dict(options)


def _validate_mfa_rules(value: Any) -> None:
    msg = (f"Invalid input for field 'options.{MFA_RULES}': expected a list of non-empty "
           "lists of strings, with no duplicated list and no duplicated string in a list.")
    if not isinstance(value, list):
        raise BadRequest(msg)
    seen: list[list[str]] = []
    for rule in value:
        if (not isinstance(rule, list) or not rule or rule in seen
                or not all(isinstance(m, str) for m in rule) or len(set(rule)) != len(rule)):
            raise BadRequest(msg)
        seen.append(rule)


def merged_options(current: dict[str, Any] | None, changes: dict[str, Any]) -> dict[str, Any]:
    options = dict(current or {})
    for key, value in changes.items():
        if value is None:
            options.pop(key, None)
        else:
            options[key] = value
    return options


def check_password_length(password: str | None) -> None:
    if password is not None and len(password) > MAX_PASSWORD:
        raise BadRequest(f"Invalid input for field 'password': at most {MAX_PASSWORD} "
                         "characters.")


# -- reading -----------------------------------------------------------------------------------
def expires_at(user: User) -> datetime | None:
    if (user.options or {}).get("ignore_password_expiry"):
        return None
    return user.password_expires_at


def render(user: User, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {**(user.extra or {})}
    body.update({
        "id": user.id, "name": user.name, "domain_id": user.domain_id,
        "enabled": user.enabled, "password_expires_at": isotime(expires_at(user), micro=True),
        "options": user.options or {},
        "links": {"self": f"{base}/v3/users/{user.id}"},
    })
    if user.default_project_id:
        body["default_project_id"] = user.default_project_id
    if user.description is not None:
        body["description"] = user.description
    return body


async def get(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


async def _domain(session: AsyncSession, domain_id: str) -> Project:
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise not_found("domain", domain_id)
    return domain


async def _check_default_project(session: AsyncSession, project_id: str | None) -> None:
    if not project_id:
        return
    project = await session.get(Project, project_id)
    if project is not None and project.is_domain:
        raise BadRequest(f"Invalid input for field 'default_project_id': {project_id} is a "
                         "domain, not a project.")


async def _check_federated(session: AsyncSession, federated: Any) -> None:
    """Federated users need an identity provider; this cloud has none registered."""
    if not federated:
        return
    if not isinstance(federated, list) or not all(
            isinstance(f, dict) and isinstance(f.get("idp_id"), str) for f in federated):
        raise BadRequest("Invalid input for field 'federated': expected a list of objects "
                         "with 'idp_id' and 'protocols'.")
    raise BadRequest(f"Invalid input for field 'federated': identity provider "
                     f"{federated[0]['idp_id']} could not be found.")


async def _check_name_free(session: AsyncSession, domain_id: str, name: str) -> None:
    if await session.scalar(select(User.id).where(User.domain_id == domain_id,
                                                  User.name == name)):
        raise duplicate("user", "name", name)


def expiry_clause(value: str) -> Any:
    """`password_expires_at={operator}:{timestamp}` (operator defaults to eq)."""
    op, sep, stamp = value.partition(":")
    if not sep or op not in EXPIRY_OPERATORS:
        op, stamp = "eq", value
    try:
        when = parse_isotime(stamp)
    except ValueError:
        raise BadRequest("Invalid input for field 'password_expires_at': expected "
                         "{operator}:{timestamp}, operator one of "
                         f"{', '.join(EXPIRY_OPERATORS)}, timestamp like "
                         "2016-12-08T22:02:00Z.") from None
    column = User.password_expires_at
    return {"lt": column < when, "lte": column <= when, "gt": column > when,
            "gte": column >= when, "eq": column == when, "neq": column != when}[op]


def name_clause(column: Any, comparator: str, value: str) -> Any:
    """Keystone's name__contains, name__istartswith, ... list filters."""
    escaped = re.sub(r"([\\%_])", r"\\\1", value)
    pattern = {"contains": f"%{escaped}%", "startswith": f"{escaped}%",
               "endswith": f"%{escaped}"}[comparator.removeprefix("i")]
    if comparator.startswith("i"):
        return column.ilike(pattern, escape="\\")
    return column.like(pattern, escape="\\")


async def list_users(session: AsyncSession, filters: dict[str, Any],
                     ids: Sequence[str] | None = None) -> list[User]:
    if any(filters.get(k) for k in ("idp_id", "protocol_id", "unique_id")):
        return []  # no federated users in this cloud
    query = select(User)
    if ids is not None:
        query = query.where(User.id.in_(ids))
    for field in ("name", "domain_id", "enabled"):
        if filters.get(field) is not None:
            query = query.where(getattr(User, field) == filters[field])
    if filters.get("password_expires_at"):
        query = query.where(expiry_clause(filters["password_expires_at"]))
    for comparator, value in (filters.get("name_comparators") or {}).items():
        query = query.where(name_clause(User.name, comparator, value))
    return list((await session.scalars(query.order_by(User.name, User.id))).all())


async def groups_of(session: AsyncSession, user_id: str,
                    filters: dict[str, Any] | None = None) -> list[Group]:
    query = select(Group).join(GroupMembership, GroupMembership.group_id == Group.id).where(
        GroupMembership.user_id == user_id)
    for field, value in (filters or {}).items():
        if field in ("name", "domain_id") and value is not None:
            query = query.where(getattr(Group, field) == value)
    return list((await session.scalars(query.order_by(Group.name))).all())


async def project_ids_of(session: AsyncSession, user_id: str) -> set[str]:
    """Projects where the user holds a role: directly or through a group, on the project
    itself or inherited from its domain or an ancestor (the same reach as effective.py)."""
    groups = select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
    rows = (await session.execute(select(Assignment.type, Assignment.target_id,
                                         Assignment.inherited).where(
        Assignment.type.in_((USER_PROJECT, GROUP_PROJECT, USER_DOMAIN, GROUP_DOMAIN)),
        (Assignment.actor_id == user_id) | Assignment.actor_id.in_(groups)))).all()
    found: set[str] = set()
    roots: set[str] = set()
    domains: set[str] = set()
    for kind, target, inherited in rows:
        if kind in (USER_PROJECT, GROUP_PROJECT):
            (roots if inherited else found).add(target)
        elif inherited:
            domains.add(target)
    if domains:
        found |= set((await session.scalars(select(Project.id).where(
            Project.domain_id.in_(domains), Project.is_domain.is_(False)))).all())
    frontier = set(roots)
    while frontier:
        below = set((await session.scalars(select(Project.id).where(
            Project.parent_id.in_(frontier), Project.is_domain.is_(False)))).all())
        frontier = below - found
        found |= below
    return found


# -- writing -----------------------------------------------------------------------------------
async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any],
                 domain_id: str, password_hash: str | None) -> User:
    """`password_hash` is the hash of data['password'] (None: no password)."""
    name = clean_name(data["name"])
    await _domain(session, domain_id)
    await _check_default_project(session, data.get("default_project_id"))
    await _check_federated(session, data.get("federated"))
    options = merged_options({}, validate_options(data.get("options") or {}))
    await _check_name_free(session, domain_id, name)
    now = utcnow()
    user = User(id=new_id(), name=name, domain_id=domain_id, enabled=data.get("enabled", True),
                default_project_id=data.get("default_project_id"),
                description=data.get("description"), password_hash=password_hash,
                password_created_at=now if password_hash else None, password_expires_at=None,
                extra={k: v for k, v in data.items() if k not in CORE}, options=options,
                created_at=now)
    session.add(user)
    await _flush(session, name)
    await svc.notify("identity.user.created", user.id)
    return user


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise duplicate("user", "name", name) from None


async def update(session: AsyncSession, svc: IdentityService, user: User, data: dict[str, Any],
                 password_hash: str | None) -> None:
    """Apply a PATCH. A password in `data` has been hashed into `password_hash`."""
    if not data:
        raise BadRequest("Invalid input for field 'user': give at least one attribute.")
    for field in ("id", "domain_id"):
        if field in data and data[field] != getattr(user, field):
            raise BadRequest(f"Invalid input for field '{field}': it cannot be changed.")
    revoke = False
    if "name" in data:
        name = clean_name(data["name"])
        if name != user.name:
            await _check_name_free(session, user.domain_id, name)
            user.name = name
    if "default_project_id" in data:
        await _check_default_project(session, data["default_project_id"])
        user.default_project_id = data["default_project_id"]
    if "description" in data:
        user.description = data["description"]
    if "federated" in data:
        await _check_federated(session, data["federated"])
    if "options" in data:
        user.options = merged_options(user.options, validate_options(data["options"] or {}))
    if "password" in data:
        _set_password(user, password_hash)
        revoke = True
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        user.extra = {**(user.extra or {}), **extra}
    if "enabled" in data and data["enabled"] is not None and data["enabled"] != user.enabled:
        user.enabled = data["enabled"]
        revoke = revoke or not user.enabled
    await _flush(session, user.name)
    if revoke:
        await svc.revoke(session, user_id=user.id)
    await svc.notify("identity.user.updated", user.id)


def _set_password(user: User, password_hash: str | None) -> None:
    user.password_hash = password_hash
    user.password_created_at = utcnow() if password_hash else None
    user.password_expires_at = None  # no password-expiry policy is configured


async def check_original_password(svc: IdentityService, user: User | None,
                                  original: str) -> User:
    """Self-service password change: the caller proves it is the user, as at login."""
    failed = Unauthorized("Error when changing user password: The request you have made "
                          "requires authentication.")
    if user is None or not user.enabled:
        raise failed
    if not await svc.hasher.verify(user.password_hash, original):
        raise failed
    if (user.options or {}).get("lock_password"):
        raise Forbidden("You cannot change your password at this time due to password "
                        "policy disallowing password changes. Please contact your "
                        "administrator to reset your password.")
    return user


async def change_password(session: AsyncSession, svc: IdentityService, user: User,
                          password_hash: str) -> None:
    _set_password(user, password_hash)
    await svc.revoke(session, user_id=user.id)
    await svc.notify("identity.user.updated", user.id)


async def delete_user(session: AsyncSession, svc: IdentityService, user: User) -> None:
    """The user goes with their grants, memberships and credentials; their tokens stop."""
    await session.execute(delete(Assignment).where(Assignment.actor_id == user.id))
    await session.execute(delete(GroupMembership).where(GroupMembership.user_id == user.id))
    await session.execute(delete(ApplicationCredential).where(
        ApplicationCredential.user_id == user.id))
    await session.execute(delete(AccessRule).where(AccessRule.user_id == user.id))
    await session.execute(delete(Credential).where(Credential.user_id == user.id))
    await session.execute(sql_update(Trust).where(
        (Trust.trustor_user_id == user.id) | (Trust.trustee_user_id == user.id),
        Trust.deleted_at.is_(None)).values(deleted_at=utcnow()))
    await session.delete(user)
    await svc.revoke(session, user_id=user.id)
    await svc.notify("identity.user.deleted", user.id)

"""Roles (global and domain-specific) and implied-role rules. No HTTP here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.assignments import revoke_role_holders
from nimbus.identity.errors import duplicate, not_found
from nimbus.identity.models import GLOBAL_ROLE, Assignment, ImpliedRole, Project, Role
from nimbus.web.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

CORE = {"id", "name", "domain_id", "description", "options", "links"}
OPTIONS = ("immutable",)
# Keystone's [assignment] prohibited_implied_role default: nothing may imply admin.
PROHIBITED_IMPLIED = ("admin",)


# -- roles -------------------------------------------------------------------------------------
def domain_of(role: Role) -> str | None:
    """The role's domain, or None for a global role."""
    return None if role.domain_id == GLOBAL_ROLE else role.domain_id


def is_immutable(role: Role) -> bool:
    return bool((role.options or {}).get("immutable"))


def render(role: Role, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {**(role.extra or {})}
    body.update({
        "id": role.id, "name": role.name, "domain_id": domain_of(role),
        "description": role.description, "options": role.options or {},
        "links": {"self": f"{base}/v3/roles/{role.id}"},
    })
    return body


def ref(role: Role, base: str) -> dict[str, Any]:
    """The short form used in role inferences: id, name and link."""
    return {"id": role.id, "name": role.name, "links": {"self": f"{base}/v3/roles/{role.id}"}}


async def get(session: AsyncSession, role_id: str) -> Role:
    role = await session.get(Role, role_id)
    if role is None:
        raise not_found("role", role_id)
    return role


async def get_many(session: AsyncSession, ids: Sequence[str]) -> dict[str, Role]:
    if not ids:
        return {}
    rows = await session.scalars(select(Role).where(Role.id.in_(set(ids))))
    return {r.id: r for r in rows.all()}


async def list_roles(session: AsyncSession, filters: dict[str, Any]) -> list[Role]:
    """Global roles, or a domain's roles when filtered by domain_id."""
    query = select(Role).where(Role.domain_id == (filters.get("domain_id") or GLOBAL_ROLE))
    if filters.get("name") is not None:
        query = query.where(Role.name == filters["name"])
    return list((await session.scalars(query.order_by(Role.name))).all())


def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Invalid input for field 'name': expected 1 to 255 characters, not "
                         "only spaces.")
    return name


def _merge_options(current: dict[str, Any], given: Any) -> dict[str, Any]:
    if given is None:
        return dict(current)
    if not isinstance(given, dict):
        raise BadRequest("Invalid input for field 'options': expected an object.")
    merged = dict(current)
    for key, value in given.items():
        if key not in OPTIONS:
            raise BadRequest(f"Invalid input for field 'options': unknown option {key!r}; "
                             f"known options: {', '.join(OPTIONS)}.")
        if value is None:
            merged.pop(key, None)
        elif not isinstance(value, bool):
            raise BadRequest(f"Invalid input for field 'options.{key}': expected a boolean.")
        else:
            merged[key] = value
    return merged


async def _check_unique(session: AsyncSession, name: str, domain_id: str) -> None:
    if await session.scalar(select(Role.id).where(Role.name == name,
                                                  Role.domain_id == domain_id)):
        raise duplicate("role", "name", name)


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any]) -> Role:
    name = _validate_name(data.get("name"))
    domain_id = data.get("domain_id") or GLOBAL_ROLE
    if domain_id != GLOBAL_ROLE:
        domain = await session.get(Project, domain_id)
        if domain is None or not domain.is_domain:
            raise BadRequest(f"Could not find domain: {domain_id}.")
    await _check_unique(session, name, domain_id)
    role = Role(id=new_id(), name=name, domain_id=domain_id,
                description=data.get("description"),
                extra={k: v for k, v in data.items() if k not in CORE},
                options=_merge_options({}, data.get("options")))
    session.add(role)
    await session.flush()
    await svc.notify("identity.role.created", role.id)
    return role


async def update(session: AsyncSession, svc: IdentityService, role: Role,
                 data: dict[str, Any]) -> None:
    if not data:
        raise BadRequest("Invalid input for field 'role': give at least one attribute.")
    if is_immutable(role):
        options = data.get("options")
        unlocks = (set(data) == {"options"} and isinstance(options, dict)
                   and "immutable" in options and options["immutable"] in (False, None))
        if not unlocks:
            raise Forbidden(f"Unable to update immutable role resource: `{role.id}. Set "
                            "resource option \"immutable\" to false first.")
    if "id" in data and data["id"] != role.id:
        raise BadRequest("Invalid input for field 'id': it cannot be changed.")
    if "domain_id" in data and (data["domain_id"] or None) != domain_of(role):
        raise BadRequest("Update of `domain_id` is not allowed.")
    renamed = False
    if "name" in data and data["name"] != role.name:
        name = _validate_name(data["name"])
        await _check_unique(session, name, role.domain_id)
        role.name = name
        renamed = True
    if "description" in data:
        role.description = data["description"]
    if "options" in data:
        role.options = _merge_options(role.options or {}, data["options"])
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        role.extra = {**(role.extra or {}), **extra}
    if renamed:
        # Tokens carry role names and policy checks names: old tokens must not keep the old one.
        await revoke_role_holders(session, svc, role)
    await svc.notify("identity.role.updated", role.id)


async def delete_role(session: AsyncSession, svc: IdentityService, role: Role) -> None:
    if is_immutable(role):
        raise Forbidden(f"Unable to delete immutable role resource: `{role.id}. Set resource "
                        "option \"immutable\" to false first.")
    await revoke_role_holders(session, svc, role)
    await session.execute(delete(Assignment).where(Assignment.role_id == role.id))
    await session.execute(delete(ImpliedRole).where(or_(
        ImpliedRole.prior_role_id == role.id, ImpliedRole.implied_role_id == role.id)))
    await session.delete(role)
    await svc.notify("identity.role.deleted", role.id)


# -- implied roles -----------------------------------------------------------------------------
async def get_rule(session: AsyncSession, prior: Role, implied: Role) -> ImpliedRole:
    rule = await session.get(ImpliedRole, (prior.id, implied.id))
    if rule is None:
        raise NotFound(f"{prior.id} does not imply {implied.id}.")
    return rule


async def create_rule(session: AsyncSession, svc: IdentityService, prior: Role,
                      implied: Role) -> None:
    """Keystone refuses only these: implying a prohibited role (admin), and a global role
    implying a domain-specific one. Cycles are allowed; expansion stops where it loops."""
    if implied.name in PROHIBITED_IMPLIED:
        raise Forbidden(f"{implied.id} cannot be an implied roles.")
    if domain_of(prior) is None and domain_of(implied) is not None:
        raise Forbidden("Global role cannot imply a domain-specific role")
    if await session.get(ImpliedRole, (prior.id, implied.id)) is not None:
        raise Conflict("Conflict occurred attempting to store implied_role - Duplicate entry "
                       f"found with prior_role_id {prior.id} and implied_role_id {implied.id}.")
    session.add(ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
    await session.flush()
    await svc.notify("identity.implied_role.created", prior.id, implied_role_id=implied.id)


async def delete_rule(session: AsyncSession, svc: IdentityService, prior: Role,
                      implied: Role) -> None:
    rule = await get_rule(session, prior, implied)
    # Tokens got what the prior role implied; they must not keep it.
    await revoke_role_holders(session, svc, prior)
    await session.delete(rule)
    await svc.notify("identity.implied_role.deleted", prior.id, implied_role_id=implied.id)


async def implied_by(session: AsyncSession, prior_id: str) -> list[Role]:
    rows = await session.scalars(select(Role).join(
        ImpliedRole, ImpliedRole.implied_role_id == Role.id).where(
        ImpliedRole.prior_role_id == prior_id).order_by(Role.name))
    return list(rows.all())


async def all_rules(session: AsyncSession) -> list[tuple[Role, list[Role]]]:
    """Every prior role with what it implies, in name order."""
    rules = (await session.scalars(select(ImpliedRole))).all()
    roles = await get_many(session, [r.prior_role_id for r in rules]
                           + [r.implied_role_id for r in rules])
    grouped: dict[str, list[Role]] = {}
    for rule in rules:
        if rule.prior_role_id in roles and rule.implied_role_id in roles:
            grouped.setdefault(rule.prior_role_id, []).append(roles[rule.implied_role_id])
    out = [(roles[pid], sorted(implied, key=lambda r: r.name))
           for pid, implied in grouped.items()]
    return sorted(out, key=lambda item: item[0].name)


def inference(prior: Role, implies: Any, base: str) -> dict[str, Any]:
    return {"prior_role": ref(prior, base), "implies": implies}

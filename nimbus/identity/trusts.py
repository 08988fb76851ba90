"""Trusts (OS-TRUST): a trustor delegates some of their roles on a project to a trustee.

The trustee then gets trust-scoped tokens: scoped to the trust's project, with the delegated
roles (as long as the trustor still holds them), as the trustor when the trust impersonates.
A trust may allow redelegation: the trustee creates a trust from a trust-scoped token, and the
chain may be at most MAX_REDELEGATION long. Deleted trusts are kept (deleted_at), as Keystone does.

Every trust-scoped token carries an audit chain id derived from its trust's id (see
``audit_chain``), so deleting a trust revokes all its tokens with one revocation event.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.common.timeutils import aware, isotime, utcnow
from nimbus.common.tokens import TokenData
from nimbus.identity import effective
from nimbus.identity.application_credentials import (
    expired,
    parse_expiry,
    render_role,
    resolve_roles,
    roles_by_id,
)
from nimbus.identity.errors import not_found
from nimbus.identity.models import Project, Role, Trust, User
from nimbus.web.errors import BadRequest, Forbidden, Unauthorized

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

MAX_REDELEGATION = 3


def audit_chain(trust_id: str) -> str:
    """The audit chain id of the trust's tokens: the id's bytes in an audit id's encoding."""
    try:
        raw = bytes.fromhex(trust_id)
    except ValueError:
        raw = trust_id.encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def usable(trust: Trust) -> bool:
    return (trust.deleted_at is None and not expired(trust.expires_at)
            and (trust.remaining_uses is None or trust.remaining_uses > 0))


# -- reading ----------------------------------------------------------------------------------
def render(trust: Trust, base: str, roles: list[Role] | None = None) -> dict[str, Any]:
    link = f"{base}/v3/OS-TRUST/trusts/{trust.id}"
    body: dict[str, Any] = {
        "id": trust.id,
        "trustor_user_id": trust.trustor_user_id,
        "trustee_user_id": trust.trustee_user_id,
        "project_id": trust.project_id,
        "impersonation": trust.impersonation,
        "expires_at": isotime(trust.expires_at, micro=True),
        "remaining_uses": trust.remaining_uses,
        "allow_redelegation": trust.allow_redelegation,
        "redelegated_trust_id": trust.redelegated_trust_id,
        "redelegation_count": trust.redelegation_count,
        "links": {"self": link},
    }
    if roles is not None:
        body["roles"] = [render_role_link(r, base) for r in roles]
        body["roles_links"] = {"self": f"{link}/roles", "previous": None, "next": None}
    return body


def render_role_link(role: Role, base: str) -> dict[str, Any]:
    return {**render_role(role), "links": {"self": f"{base}/v3/roles/{role.id}"}}


async def get(session: AsyncSession, trust_id: str, *, inactive: bool = False) -> Trust:
    """A trust that can still be used (or, with inactive, any that is not deleted)."""
    trust = await session.get(Trust, trust_id)
    if trust is None or trust.deleted_at is not None or (not inactive and not usable(trust)):
        raise not_found("trust", trust_id)
    return trust


async def roles_of(session: AsyncSession, trust: Trust) -> list[Role]:
    return await roles_by_id(session, trust.role_ids or [])


async def list_trusts(session: AsyncSession, *, trustor: str | None = None,
                      trustee: str | None = None, involving: str | None = None) -> list[Trust]:
    query = select(Trust).where(Trust.deleted_at.is_(None))
    if trustor is not None:
        query = query.where(Trust.trustor_user_id == trustor)
    if trustee is not None:
        query = query.where(Trust.trustee_user_id == trustee)
    if involving is not None:
        query = query.where(or_(Trust.trustor_user_id == involving,
                                Trust.trustee_user_id == involving))
    return list((await session.scalars(query.order_by(Trust.id))).all())


async def pedigree(session: AsyncSession, trust: Trust) -> list[Trust]:
    """The trust and the trusts it was redelegated from, the original one last."""
    chain = [trust]
    while chain[-1].redelegated_trust_id and len(chain) <= MAX_REDELEGATION + 1:
        parent = await session.get(Trust, chain[-1].redelegated_trust_id)
        if parent is None or parent.deleted_at is not None:
            raise Forbidden("One of the trust agents is disabled or deleted")
        chain.append(parent)
    return chain


# -- writing ----------------------------------------------------------------------------------
def _check_redelegation(parent: Trust, trust: Trust) -> None:
    depth = parent.redelegation_count or 0
    if not 0 < depth <= MAX_REDELEGATION:
        raise Forbidden(f"Remaining redelegation depth of {depth} out of allowed range of "
                        f"[0..{MAX_REDELEGATION}]")
    if trust.remaining_uses is not None:
        raise Forbidden(f"Field \"remaining_uses\" is set to {trust.remaining_uses} while it "
                        "must not be set in order to redelegate a trust")
    if trust.expires_at is not None:
        if parent.expires_at is not None and aware(parent.expires_at) < aware(trust.expires_at):
            raise Forbidden("Requested expiration time is more than redelegated trust can "
                            "provide")
    else:
        trust.expires_at = parent.expires_at
    if not set(trust.role_ids) <= set(parent.role_ids or []):
        raise Forbidden("Some of requested roles are not in redelegated trust")
    if trust.impersonation and not parent.impersonation:
        raise Forbidden("Impersonation is not allowed because redelegated trust does not "
                        f"specify impersonation. Redelegated trust id: {parent.id}")


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any],
                 source: Trust | None = None) -> tuple[Trust, list[Role]]:
    """data is the validated request; source is the trust of the caller's token, if any."""
    project_id = data.get("project_id") or None
    role_refs = data.get("roles") or []
    if project_id and not role_refs:
        raise Forbidden("At least one role should be specified")
    trustee = await session.get(User, data["trustee_user_id"])
    if trustee is None:
        raise not_found("user", data["trustee_user_id"])
    roles = await resolve_roles(session, role_refs)
    root = (await pedigree(session, source))[-1] if source is not None else None
    held: set[str] = set()
    if project_id:
        project = await session.get(Project, project_id)
        if project is None or project.is_domain:
            raise not_found("project", project_id)
        held_project = project
        if root is not None and root.project_id:
            held_project = await session.get(Project, root.project_id) or project
        trustor_id = root.trustor_user_id if root is not None else data["trustor_user_id"]
        held = await effective.project_role_ids(session, trustor_id, held_project)
    for role in roles:
        if role.id not in held:
            raise not_found("role", role.id)

    requested = data.get("redelegation_count")
    redelegatable = bool(data.get("allow_redelegation")) and requested != 0
    if not redelegatable:
        requested = 0
    else:
        if requested is not None and requested > MAX_REDELEGATION:
            raise Forbidden(f"Requested redelegation depth of {requested} is greater than "
                            f"allowed {MAX_REDELEGATION}")
        if data.get("remaining_uses") is not None:
            raise BadRequest("remaining_uses must not be set if redelegation is allowed")
    trust = Trust(id=new_id(), trustor_user_id=data["trustor_user_id"],
                  trustee_user_id=trustee.id, project_id=project_id,
                  impersonation=bool(data["impersonation"]),
                  expires_at=parse_expiry(data.get("expires_at")),
                  remaining_uses=data.get("remaining_uses"),
                  allow_redelegation=redelegatable, role_ids=[r.id for r in roles],
                  redelegation_count=requested, extra={})
    if source is not None:
        trust.redelegated_trust_id = source.id
        remaining = (source.redelegation_count or 0) - 1
        if redelegatable and requested and requested != remaining:
            raise Forbidden('Modifying "redelegation_count" upon redelegation is forbidden. '
                            'Omitting this parameter is advised.')
        if redelegatable:
            trust.redelegation_count = remaining
        for parent in await pedigree(session, source):
            _check_redelegation(parent, trust)
    elif redelegatable and requested is None:
        trust.redelegation_count = MAX_REDELEGATION
    trust.allow_redelegation = bool(trust.redelegation_count)
    session.add(trust)
    await session.flush()
    await svc.notify("identity.OS-TRUST:trust.created", trust.id)
    return trust, roles


async def delete(session: AsyncSession, svc: IdentityService, trust: Trust) -> None:
    """Soft-delete the trust and the trusts redelegated from it; revoke their tokens."""
    children = (await session.scalars(select(Trust).where(
        Trust.redelegated_trust_id == trust.id, Trust.deleted_at.is_(None)))).all()
    for child in children:
        await delete(session, svc, child)
    trust.deleted_at = utcnow()
    await svc.revoke(session, audit_chain_id=audit_chain(trust.id))
    await svc.notify("identity.OS-TRUST:trust.deleted", trust.id)


async def delete_for_user(session: AsyncSession, svc: IdentityService, user_id: str) -> None:
    """When a user is deleted, the trusts where they are trustor or trustee go too."""
    for trust in await list_trusts(session, involving=user_id):
        if trust.deleted_at is None:
            await delete(session, svc, trust)


# -- trust-scoped tokens ----------------------------------------------------------------------
async def scope_token(session: AsyncSession, data: TokenData, user: User,
                      ref: Any) -> tuple[TokenData, Trust]:
    """Scope an authenticated trustee's token to a trust; the caller then consumes a use."""
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str) or not ref["id"]:
        raise BadRequest("Invalid input for field 'scope.OS-TRUST:trust': it needs an id.")
    trust = await session.get(Trust, ref["id"])
    if trust is None or not usable(trust):
        raise Unauthorized(f"Could not find trust: {ref['id']}.")
    if user.id != trust.trustee_user_id:
        raise Forbidden("User is not a trustee.")
    chain = await pedigree(session, trust)
    trustor = await session.get(User, trust.trustor_user_id)
    trustor_domain = await session.get(Project, trustor.domain_id) if trustor else None
    if trustor is None or not trustor.enabled or trustor_domain is None or \
            not trustor_domain.enabled:
        raise Forbidden("Trustor is disabled.")
    data = replace(data, trust_id=trust.id, trustor_user_id=trustor.id,
                   trustee_user_id=trust.trustee_user_id,
                   trust_impersonation=trust.impersonation,
                   audit_ids=[data.audit_ids[0], audit_chain(trust.id)])
    if trust.expires_at is not None:
        data = replace(data, expires_at=min(data.expires_at, aware(trust.expires_at).timestamp()))
    if trust.impersonation:
        data = replace(data, user_id=trustor.id, user_name=trustor.name,
                       user_domain_id=trustor_domain.id, user_domain_name=trustor_domain.name,
                       password_expires_at=(aware(trustor.password_expires_at).timestamp()
                                            if trustor.password_expires_at else None))
    if not trust.project_id:
        return data, trust
    project = await session.get(Project, trust.project_id)
    domain = await session.get(Project, project.domain_id) if project else None
    if project is None or not project.enabled or domain is None or not domain.enabled:
        raise Unauthorized(f"Project {trust.project_id} is not enabled or not found.")
    # The trustor must still hold every delegated role; the token gets them and what they imply.
    current = await effective.project_role_ids(session, chain[-1].trustor_user_id, project)
    if not trust.role_ids or not set(trust.role_ids) <= current:
        raise Forbidden("Trustee has no delegated roles.")
    delegated = await effective.implied_closure(session, trust.role_ids) & current
    return replace(data, project_id=project.id, project_name=project.name,
                   project_domain_id=domain.id, project_domain_name=domain.name,
                   roles=await effective.role_pairs(session, delegated)), trust


async def consume_use(svc: IdentityService, trust: Trust) -> None:
    """Count one token against remaining_uses, atomically (the last use wins once)."""
    if trust.remaining_uses is None:
        return
    async with svc.db.transaction() as session:
        result: Any = await session.execute(
            update(Trust).where(Trust.id == trust.id, Trust.deleted_at.is_(None),
                                Trust.remaining_uses > 0)
            .values(remaining_uses=Trust.remaining_uses - 1))
        if not result.rowcount:
            raise Forbidden(f"No remaining uses for trust: {trust.id}.")

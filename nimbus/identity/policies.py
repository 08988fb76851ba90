"""Policy blobs (/v3/policies): opaque documents Keystone stores for other services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.errors import not_found
from nimbus.identity.models import Policy
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

CORE = {"id", "type", "blob", "links"}


def render(p: Policy, base: str) -> dict[str, Any]:
    return {**(p.extra or {}), "id": p.id, "type": p.type, "blob": p.blob,
            "links": {"self": f"{base}/v3/policies/{p.id}"}}


async def get(session: AsyncSession, policy_id: str) -> Policy:
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise not_found("policy", policy_id)
    return policy


async def list_policies(session: AsyncSession, type_: str | None) -> list[Policy]:
    query = select(Policy)
    if type_ is not None:
        query = query.where(Policy.type == type_)
    return list((await session.scalars(query.order_by(Policy.type, Policy.id))).all())


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any]) -> Policy:
    policy = Policy(id=new_id(), type=data["type"], blob=data["blob"],
                    extra={k: v for k, v in data.items() if k not in CORE})
    session.add(policy)
    await session.flush()
    await svc.notify("identity.policy.created", policy.id)
    return policy


async def update(session: AsyncSession, svc: IdentityService, policy: Policy,
                 data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != policy.id:
        raise BadRequest("Cannot change ID")
    for field in ("type", "blob"):
        if field in data:
            setattr(policy, field, data[field])
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        policy.extra = {**(policy.extra or {}), **extra}
    await svc.notify("identity.policy.updated", policy.id)


async def delete(session: AsyncSession, svc: IdentityService, policy: Policy) -> None:
    await session.delete(policy)
    await session.flush()
    await svc.notify("identity.policy.deleted", policy.id)

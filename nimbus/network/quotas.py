"""Per-project quotas: defaults, overrides, usage counted from the tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.network.errors import bad_request, conflict, over_quota
from nimbus.network.models import (
    FloatingIP,
    Network,
    Port,
    Quota,
    RBACPolicy,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)

DEFAULTS: dict[str, int] = {
    "network": 100, "subnet": 100, "subnetpool": -1, "port": 500, "router": 10,
    "floatingip": 50, "security_group": 10, "security_group_rule": 100, "rbac_policy": 10,
}
MODELS: dict[str, Any] = {
    "network": Network, "subnet": Subnet, "subnetpool": SubnetPool, "port": Port,
    "router": Router, "floatingip": FloatingIP, "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule, "rbac_policy": RBACPolicy,
}


async def limits(session: AsyncSession, project_id: str) -> dict[str, int]:
    out = dict(DEFAULTS)
    rows = (await session.scalars(select(Quota).where(Quota.project_id == project_id))).all()
    for row in rows:
        if row.resource in out:
            out[row.resource] = row.limit
    return out


async def usage(session: AsyncSession, project_id: str, resource: str) -> int:
    model = MODELS[resource]
    count = await session.scalar(select(func.count()).select_from(model).where(
        model.project_id == project_id))
    return int(count or 0)


async def limit_of(session: AsyncSession, project_id: str, resource: str) -> int:
    limit = await session.scalar(select(Quota.limit).where(
        Quota.project_id == project_id, Quota.resource == resource))
    return DEFAULTS[resource] if limit is None else int(limit)


async def check(session: AsyncSession, project_id: str, resource: str, wanted: int = 1,
                limit: int | None = None) -> None:
    """Refuse with 409 OverQuota when `wanted` more would pass the project's limit."""
    if not project_id:
        return
    if limit is None:
        limit = await limit_of(session, project_id, resource)
    if limit < 0:
        return
    if await usage(session, project_id, resource) + wanted > limit:
        raise over_quota(resource)


async def update(session: AsyncSession, project_id: str, data: Any) -> dict[str, int]:
    if not isinstance(data, dict) or not data:
        raise bad_request("Invalid input for quota: a mapping of resource to limit is "
                          "required.")
    for resource, value in data.items():
        if resource == "check_limit":
            continue
        if resource not in DEFAULTS:
            raise bad_request(f"Unrecognized attribute(s) '{resource}'")
        try:
            limit = int(value)
        except (TypeError, ValueError):
            raise bad_request(f"Invalid input for {resource}. Reason: '{value}' is not a "
                              "valid integer.") from None
        if isinstance(value, bool) or limit < -1:
            raise bad_request(f"Invalid input for {resource}. Reason: '{value}' is not a "
                              "valid quota value.")
        if data.get("check_limit") and limit >= 0:
            used = await usage(session, project_id, resource)
            if used > limit:
                raise conflict(f"Quota limit {limit} for {resource} must be greater than or "
                               f"equal to already used and reserved {used}.",
                               "InvalidQuotaValue")
        row = await session.get(Quota, (project_id, resource))
        if row is None:
            session.add(Quota(project_id=project_id, resource=resource, limit=limit))
        else:
            row.limit = limit
    await session.flush()
    return await limits(session, project_id)


async def reset(session: AsyncSession, project_id: str) -> None:
    await session.execute(delete(Quota).where(Quota.project_id == project_id))


async def projects_with_quotas(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(Quota.project_id).distinct())).all())


async def details(session: AsyncSession, project_id: str) -> dict[str, dict[str, int]]:
    out = {}
    for resource, limit in (await limits(session, project_id)).items():
        out[resource] = {"limit": limit, "used": await usage(session, project_id, resource),
                         "reserved": 0}
    return out

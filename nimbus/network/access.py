"""Who sees what: own resources, plus what is shared with the caller's project through RBAC
policies (or to everyone with the "*" target), plus external networks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.network.models import RBACPolicy


def is_admin(ctx: RequestContext) -> bool:
    return ctx.is_admin


def project_of(ctx: RequestContext) -> str:
    return ctx.project_id or ""


def granted(ctx: RequestContext, object_type: str, actions: tuple[str, ...]) -> Any:
    """Ids of objects of that type shared with the caller's project (or with everyone)."""
    return select(RBACPolicy.object_id).where(
        RBACPolicy.object_type == object_type, RBACPolicy.action.in_(actions),
        RBACPolicy.target_tenant.in_([project_of(ctx), "*"]))


def visible(ctx: RequestContext, model: Any, object_type: str | None = None,
            actions: tuple[str, ...] = ("access_as_shared",), *extra: Any) -> Any:
    """A WHERE clause for the rows of `model` the caller may see (None: everything)."""
    if is_admin(ctx):
        return None
    clauses = [model.project_id == project_of(ctx), *extra]
    if object_type is not None:
        clauses.append(model.id.in_(granted(ctx, object_type, actions)))
    return or_(*clauses)


def restrict(query: Any, clause: Any) -> Any:
    return query if clause is None else query.where(clause)


async def shared_with(session: AsyncSession, ctx: RequestContext, object_type: str,
                      object_id: str, action: str = "access_as_shared") -> bool:
    rows = await session.scalar(select(RBACPolicy.id).where(
        RBACPolicy.object_type == object_type, RBACPolicy.object_id == object_id,
        RBACPolicy.action == action, RBACPolicy.target_tenant.in_([project_of(ctx), "*"]))
        .limit(1))
    return rows is not None


def owns(ctx: RequestContext, row: Any) -> bool:
    return is_admin(ctx) or row.project_id == project_of(ctx)

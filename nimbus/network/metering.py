"""Metering labels and their rules: which traffic of a project's routers gets counted."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, invalid_input
from nimbus.network.models import MeteringLabel, MeteringLabelRule
from nimbus.web.errors import NotFound


def _direction(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in ("ingress", "egress"):
        raise invalid_input(f"'{value}' is not in ['ingress', 'egress']")
    return value


def _prefix(value: Any, field: str) -> str | None:
    return None if value is None else str(v.cidr(value, field, strict=False))


LABEL_SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "shared": v.Attr(v.boolean, put=False),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}
RULE_SPEC = {
    "metering_label_id": v.Attr(v.name255, put=False, required=True),
    "direction": v.Attr(_direction, put=False),
    "excluded": v.Attr(v.boolean),
    "remote_ip_prefix": v.Attr(_prefix, put=False),
    "source_ip_prefix": v.Attr(_prefix, put=False),
    "destination_ip_prefix": v.Attr(_prefix, put=False),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}
LABEL_COLUMNS: query.Columns = {
    "id": MeteringLabel.id, "name": MeteringLabel.name,
    "description": MeteringLabel.description, "project_id": MeteringLabel.project_id,
    "shared": MeteringLabel.shared,
}
RULE_COLUMNS: query.Columns = {
    "id": MeteringLabelRule.id, "metering_label_id": MeteringLabelRule.metering_label_id,
    "direction": MeteringLabelRule.direction, "excluded": MeteringLabelRule.excluded,
    "remote_ip_prefix": MeteringLabelRule.remote_ip_prefix,
    "source_ip_prefix": MeteringLabelRule.source_ip_prefix,
    "destination_ip_prefix": MeteringLabelRule.destination_ip_prefix,
}


def _visible(ctx: RequestContext) -> Any:
    return access.visible(ctx, MeteringLabel, None, (), MeteringLabel.shared)


async def get_label(session: AsyncSession, ctx: RequestContext, label_id: str) -> MeteringLabel:
    q = access.restrict(select(MeteringLabel).where(MeteringLabel.id == label_id),
                        _visible(ctx))
    row = (await session.scalars(q)).first()
    if row is None:
        raise NotFound(f"Metering label {label_id} does not exist",
                       error_type="MeteringLabelNotFound")
    return row


async def list_labels(session: AsyncSession, ctx: RequestContext,
                      params: query.ListParams) -> tuple[list[MeteringLabel], bool]:
    q = query.apply_filters(access.restrict(select(MeteringLabel), _visible(ctx)),
                            LABEL_COLUMNS, params)
    return await query.paginate(session, q, MeteringLabel, LABEL_COLUMNS, params)


async def create_label(session: AsyncSession, data: dict[str, Any],
                       project_id: str) -> MeteringLabel:
    row = MeteringLabel(id=new_uuid(), project_id=project_id, name=data.get("name", ""),
                        description=data.get("description", ""),
                        shared=data.get("shared", False))
    session.add(row)
    await session.flush()
    return row


def render_label(row: MeteringLabel) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description,
            "shared": row.shared, "project_id": row.project_id, "tenant_id": row.project_id}


async def get_rule(session: AsyncSession, ctx: RequestContext,
                   rule_id: str) -> MeteringLabelRule:
    rule = await session.get(MeteringLabelRule, rule_id)
    if rule is not None:
        await get_label(session, ctx, rule.metering_label_id)
        return rule
    raise NotFound(f"Metering label rule {rule_id} does not exist",
                   error_type="MeteringLabelRuleNotFound")


async def list_rules(session: AsyncSession, ctx: RequestContext,
                     params: query.ListParams) -> tuple[list[MeteringLabelRule], bool]:
    q = select(MeteringLabelRule)
    if not ctx.is_admin:
        q = q.where(MeteringLabelRule.metering_label_id.in_(
            select(MeteringLabel.id).where(_visible(ctx))))
    q = query.apply_filters(q, RULE_COLUMNS, params)
    return await query.paginate(session, q, MeteringLabelRule, RULE_COLUMNS, params)


async def create_rule(session: AsyncSession, ctx: RequestContext,
                      data: dict[str, Any]) -> MeteringLabelRule:
    label = await get_label(session, ctx, data["metering_label_id"])
    remote = data.get("remote_ip_prefix")
    source, dest = data.get("source_ip_prefix"), data.get("destination_ip_prefix")
    if remote and (source or dest):
        raise bad_request("Cannot use 'remote-ip-prefix' together with 'source-ip-prefix' "
                          "or 'destination-ip-prefix'.")
    if not (remote or source or dest):
        raise bad_request("You must define at least one of the following parameters "
                          "'remote_ip_prefix', or 'source_ip_prefix' or "
                          "'destination_ip_prefix'.")
    direction = data.get("direction", "ingress")
    if remote:
        net = ipaddress.ip_network(remote)
        for other in (await session.scalars(select(MeteringLabelRule).where(
                MeteringLabelRule.metering_label_id == label.id,
                MeteringLabelRule.direction == direction))).all():
            if other.remote_ip_prefix and ipaddress.ip_network(
                    other.remote_ip_prefix).overlaps(net):
                raise conflict(f"Metering label rule with remote_ip_prefix {remote} "
                               f"overlaps another", "MeteringLabelRuleOverlaps")
    rule = MeteringLabelRule(id=new_uuid(), metering_label_id=label.id, direction=direction,
                             excluded=data.get("excluded", False), remote_ip_prefix=remote,
                             source_ip_prefix=source, destination_ip_prefix=dest)
    session.add(rule)
    await session.flush()
    return rule


def render_rule(rule: MeteringLabelRule) -> dict[str, Any]:
    return {"id": rule.id, "metering_label_id": rule.metering_label_id,
            "direction": rule.direction, "excluded": rule.excluded,
            "remote_ip_prefix": rule.remote_ip_prefix,
            "source_ip_prefix": rule.source_ip_prefix,
            "destination_ip_prefix": rule.destination_ip_prefix}

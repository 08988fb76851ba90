"""Security groups and their rules; each project's `default` group, made on first use with
upstream's default rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, in_use, invalid_input, not_found
from nimbus.network.models import (
    DefaultSecurityGroup,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
             "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44,
             "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
             "udp": 17, "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "ipv6-icmp", "icmpv6", "1", "58"}

GROUP_SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "stateful": v.Attr(v.boolean),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}


def _direction(value: Any, field: str) -> str:
    if value not in ("ingress", "egress"):
        raise invalid_input(f"'{value}' is not in ['ingress', 'egress']")
    return str(value)


def _ethertype(value: Any, field: str) -> str:
    if not isinstance(value, str) or value.lower() not in ("ipv4", "ipv6"):
        raise bad_request(f"Security group rule for ethertype '{value}' not supported. "
                          "Allowed values are ['IPv4', 'IPv6'].",
                          "SecurityGroupRuleInvalidEtherType")
    return "IPv4" if value.lower() == "ipv4" else "IPv6"


def _protocol(value: Any, field: str) -> str | None:
    if value is None or value == "any":
        return None
    text = str(value).lower() if not isinstance(value, bool) else ""
    if text in PROTOCOLS:
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return str(int(text))
    raise bad_request(f"Security group rule protocol {value} not supported. Only protocol "
                      f"values {sorted(PROTOCOLS)} and integer representations [0 to 255] are "
                      "supported.", "SecurityGroupRuleInvalidProtocol")


def _port(value: Any, field: str) -> int | None:
    if value is None:
        return None
    return v.integer(value, field)


RULE_SPEC = {
    "security_group_id": v.Attr(v.name255, put=False, required=True),
    "direction": v.Attr(_direction, put=False, required=True),
    "ethertype": v.Attr(_ethertype, put=False),
    "protocol": v.Attr(_protocol, put=False),
    "port_range_min": v.Attr(_port, put=False), "port_range_max": v.Attr(_port, put=False),
    "remote_ip_prefix": v.Attr(v.nullable(lambda x, f: str(v.prefix(x))), put=False),
    "remote_group_id": v.Attr(v.nullable(v.name255), put=False),
    "remote_address_group_id": v.Attr(v.uuid_or_none, put=False),
    "description": v.Attr(v.name255),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
}

GROUP_COLUMNS: query.Columns = {
    "id": SecurityGroup.id, "name": SecurityGroup.name,
    "description": SecurityGroup.description, "project_id": SecurityGroup.project_id,
    "stateful": SecurityGroup.stateful, "revision_number": SecurityGroup.revision_number,
    "created_at": SecurityGroup.created_at, "updated_at": SecurityGroup.updated_at,
}
RULE_COLUMNS: query.Columns = {
    "id": SecurityGroupRule.id, "project_id": SecurityGroupRule.project_id,
    "security_group_id": SecurityGroupRule.security_group_id,
    "direction": SecurityGroupRule.direction, "ethertype": SecurityGroupRule.ethertype,
    "protocol": SecurityGroupRule.protocol,
    "port_range_min": SecurityGroupRule.port_range_min,
    "port_range_max": SecurityGroupRule.port_range_max,
    "remote_ip_prefix": SecurityGroupRule.remote_ip_prefix,
    "remote_group_id": SecurityGroupRule.remote_group_id,
    "remote_address_group_id": SecurityGroupRule.remote_address_group_id,
    "description": SecurityGroupRule.description,
    "revision_number": SecurityGroupRule.revision_number,
    "created_at": SecurityGroupRule.created_at, "updated_at": SecurityGroupRule.updated_at,
}


def visibility(ctx: RequestContext) -> Any:
    return access.visible(ctx, SecurityGroup, "security_group", ("access_as_shared",))


# -- the default group -------------------------------------------------------------------------
async def ensure_default(session: AsyncSession, svc: NetworkService, project_id: str) -> str:
    """The project's default group, created now if it does not exist yet."""
    known = svc.default_groups.get(project_id)
    if known is not None:
        return known
    sg_id = await session.scalar(select(DefaultSecurityGroup.security_group_id).where(
        DefaultSecurityGroup.project_id == project_id))
    if sg_id is not None:
        svc.default_groups[project_id] = sg_id  # committed by an earlier request
    else:
        sg_id = new_uuid()
        try:
            async with session.begin_nested():
                session.add(SecurityGroup(id=sg_id, project_id=project_id, name="default",
                                          description="Default security group", stateful=True,
                                          revision_number=0))
                await session.flush()
                session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=sg_id))
                await session.flush()
                for ethertype in ("IPv4", "IPv6"):
                    _add_rule(session, sg_id, project_id, "ingress", ethertype, remote=sg_id)
                    _add_rule(session, sg_id, project_id, "egress", ethertype)
                await session.flush()
        except IntegrityError:  # another request made it first
            sg_id = await session.scalar(select(DefaultSecurityGroup.security_group_id).where(
                DefaultSecurityGroup.project_id == project_id))
            assert sg_id is not None
        else:
            await svc.notify("security_group.create.end", {"security_group": {
                "id": sg_id, "name": "default", "project_id": project_id}})
    return sg_id


def _add_rule(session: AsyncSession, sg_id: str, project_id: str, direction: str,
              ethertype: str, remote: str | None = None) -> None:
    session.add(SecurityGroupRule(id=new_uuid(), project_id=project_id, security_group_id=sg_id,
                                  direction=direction, ethertype=ethertype,
                                  remote_group_id=remote, description="",
                                  revision_number=0))


async def visible_ids(session: AsyncSession, ctx: RequestContext, project_id: str,
                      ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    q = select(SecurityGroup.id).where(SecurityGroup.id.in_(list(ids)))
    if not ctx.is_admin:
        q = q.where((SecurityGroup.project_id == project_id) | SecurityGroup.id.in_(
            access.granted(ctx, "security_group", ("access_as_shared",))))
    return set((await session.scalars(q)).all())


# -- groups ------------------------------------------------------------------------------------
async def get(session: AsyncSession, ctx: RequestContext, sg_id: str) -> SecurityGroup:
    q = access.restrict(select(SecurityGroup).where(SecurityGroup.id == sg_id),
                        visibility(ctx))
    sg = (await session.scalars(q)).first()
    if sg is None:
        raise not_found("security_group", sg_id)
    return sg


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[SecurityGroup], bool]:
    q = access.restrict(select(SecurityGroup), visibility(ctx))
    q = query.apply_filters(q, GROUP_COLUMNS, params)
    q = query.apply_tags(q, SecurityGroup.id, params)
    return await query.paginate(session, q, SecurityGroup, GROUP_COLUMNS, params)


async def create(session: AsyncSession, svc: NetworkService, data: dict[str, Any],
                 project_id: str) -> SecurityGroup:
    if data.get("name") == "default":
        raise conflict("Default security group already exists.",
                       "SecurityGroupDefaultAlreadyExists")
    sg = SecurityGroup(id=new_uuid(), project_id=project_id, name=data.get("name", ""),
                       description=data.get("description", ""),
                       stateful=data.get("stateful", True), revision_number=0)
    session.add(sg)
    await session.flush()
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(session, sg.id, project_id, "egress", ethertype)
    if data.get("tags"):
        await standard.set_tags(session, sg.id, data["tags"])
    await session.flush()
    return sg


async def is_default(session: AsyncSession, sg: SecurityGroup) -> bool:
    return await session.scalar(select(DefaultSecurityGroup.project_id).where(
        DefaultSecurityGroup.security_group_id == sg.id)) is not None


async def update(session: AsyncSession, sg: SecurityGroup, data: dict[str, Any]) -> None:
    if "name" in data and data["name"] != sg.name:
        if await is_default(session, sg):
            raise conflict("Updating default security group not allowed.",
                           "SecurityGroupCannotUpdateDefault")
        if data["name"] == "default":
            raise conflict("Default security group already exists.",
                           "SecurityGroupDefaultAlreadyExists")
        sg.name = data["name"]
    if "description" in data:
        sg.description = data["description"] or ""
    if "stateful" in data and data["stateful"] != sg.stateful:
        if await _in_use(session, sg.id):
            raise in_use("security_group", sg.id)
        sg.stateful = data["stateful"]
    standard.bump(sg)


async def _in_use(session: AsyncSession, sg_id: str) -> bool:
    return bool(await session.scalar(select(func.count()).select_from(PortSecurityGroup).where(
        PortSecurityGroup.security_group_id == sg_id)))


async def delete_group(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                       sg: SecurityGroup) -> None:
    default = await is_default(session, sg)
    if default and not ctx.is_admin:
        raise conflict("Insufficient rights for removing default security group.",
                       "SecurityGroupCannotRemoveDefault")
    if await _in_use(session, sg.id):
        raise in_use("security_group", sg.id)
    await session.execute(delete(SecurityGroupRule).where(
        SecurityGroupRule.remote_group_id == sg.id))
    await session.execute(delete(DefaultSecurityGroup).where(
        DefaultSecurityGroup.security_group_id == sg.id))
    await standard.drop_tags(session, sg.id)
    await session.delete(sg)
    if default:
        svc.default_groups.pop(sg.project_id, None)


# -- rules -------------------------------------------------------------------------------------
def rule_visibility(ctx: RequestContext) -> Any:
    if ctx.is_admin:
        return None
    return (SecurityGroupRule.project_id == access.project_of(ctx)) | \
        SecurityGroupRule.security_group_id.in_(
            select(SecurityGroup.id).where(SecurityGroup.project_id == access.project_of(ctx)))


async def get_rule(session: AsyncSession, ctx: RequestContext,
                   rule_id: str) -> SecurityGroupRule:
    q = access.restrict(select(SecurityGroupRule).where(SecurityGroupRule.id == rule_id),
                        rule_visibility(ctx))
    rule = (await session.scalars(q)).first()
    if rule is None:
        raise not_found("security_group_rule", rule_id)
    return rule


async def list_rules(session: AsyncSession, ctx: RequestContext,
                     params: query.ListParams) -> tuple[list[SecurityGroupRule], bool]:
    q = access.restrict(select(SecurityGroupRule), rule_visibility(ctx))
    q = query.apply_filters(q, RULE_COLUMNS, params)
    return await query.paginate(session, q, SecurityGroupRule, RULE_COLUMNS, params)


def _check_ports(protocol: str | None, low: int | None, high: int | None) -> None:
    if protocol in PORT_PROTOCOLS:
        for value in (low, high):
            if value is not None and not 1 <= value <= 65535:
                raise bad_request(f"Invalid value for port {value}",
                                  "SecurityGroupInvalidPortValue")
        if (low is None) != (high is None):
            raise bad_request("For TCP/UDP protocols, port_range_min must be <= "
                              "port_range_max", "SecurityGroupInvalidPortRange")
        if low is not None and high is not None:
            if low == 0 or high == 0:
                raise bad_request("Invalid value for port 0", "SecurityGroupInvalidPortValue")
            if low > high:
                raise bad_request("For TCP/UDP protocols, port_range_min must be <= "
                                  "port_range_max", "SecurityGroupInvalidPortRange")
    elif protocol in ICMP_PROTOCOLS:
        for name, value in (("type", low), ("code", high)):
            if value is not None and not 0 <= value <= 255:
                raise bad_request(f"Invalid value for ICMP {name} (port_range_min, "
                                  f"port_range_max): {value} must be between 0 and 255",
                                  "SecurityGroupInvalidIcmpValue")
        if high is not None and low is None:
            raise bad_request(f"ICMP code (port-range-max) {high} is provided but ICMP type "
                              "(port-range-min) is missing.", "SecurityGroupMissingIcmpType")
    elif any(x is not None and not 0 <= x <= 65535 for x in (low, high)):
        raise bad_request(f"Invalid value for port {low if low is not None else high}",
                          "SecurityGroupInvalidPortValue")
    elif low is not None or high is not None:
        raise bad_request("Invalid protocol for port range, only supported for TCP, UDP, "
                          "UDPLITE, SCTP and DCCP", "SecurityGroupInvalidProtocolForPortRange")


async def create_rule(session: AsyncSession, ctx: RequestContext, data: dict[str, Any],
                      project_id: str) -> SecurityGroupRule:
    sg = await get(session, ctx, data["security_group_id"])
    ethertype = data.get("ethertype", "IPv4")
    protocol = data.get("protocol")
    if protocol in ("icmp",) and ethertype == "IPv6":
        protocol = "ipv6-icmp"
    if protocol in ("ipv6-icmp", "icmpv6", "58") and ethertype == "IPv4":
        raise bad_request(f"Ethertype IPv4 is not supported with protocol {protocol}.",
                          "SecurityGroupEthertypeConflictWithProtocol")
    low, high = data.get("port_range_min"), data.get("port_range_max")
    _check_ports(protocol, low, high)
    remote_ip = data.get("remote_ip_prefix")
    remote_group = data.get("remote_group_id")
    remote_ag = data.get("remote_address_group_id")
    if sum(x is not None for x in (remote_ip, remote_group, remote_ag)) > 1:
        raise bad_request("Only one of remote_ip_prefix, remote_group_id and "
                          "remote_address_group_id may be given.",
                          "SecurityGroupRemoteGroupAndRemoteIpPrefix")
    if remote_ip is not None:
        net = ipaddress.ip_network(remote_ip, strict=False)
        if (net.version == 4) != (ethertype == "IPv4"):
            raise bad_request(f"Conflicting value ethertype {ethertype} for CIDR {remote_ip}",
                              "SecurityGroupRuleParameterConflict")
        remote_ip = str(net)
    if remote_group is not None and remote_group != sg.id:
        await get(session, ctx, remote_group)
    if remote_ag is not None:
        from nimbus.network import address_groups

        await address_groups.get(session, ctx, remote_ag)
    rule = SecurityGroupRule(
        id=new_uuid(), project_id=project_id, security_group_id=sg.id,
        direction=data["direction"], ethertype=ethertype, protocol=protocol,
        port_range_min=low, port_range_max=high, remote_ip_prefix=remote_ip,
        remote_group_id=remote_group, remote_address_group_id=remote_ag,
        description=data.get("description", ""), revision_number=0)
    await _check_duplicate(session, rule)
    session.add(rule)
    standard.bump(sg)
    await session.flush()
    return rule


def _signature(rule: SecurityGroupRule) -> tuple[Any, ...]:
    prefix = rule.remote_ip_prefix
    if prefix in ("0.0.0.0/0", "::/0"):
        prefix = None
    proto = rule.protocol
    if proto is not None and proto in PROTOCOLS:
        proto = str(PROTOCOLS[proto])
    return (rule.direction, rule.ethertype, proto, rule.port_range_min, rule.port_range_max,
            prefix, rule.remote_group_id, rule.remote_address_group_id)


async def _check_duplicate(session: AsyncSession, rule: SecurityGroupRule) -> None:
    existing = (await session.scalars(select(SecurityGroupRule).where(
        SecurityGroupRule.security_group_id == rule.security_group_id,
        SecurityGroupRule.direction == rule.direction))).all()
    mine = _signature(rule)
    for other in existing:
        if _signature(other) == mine:
            raise conflict(f"Security group rule already exists. Rule id is {other.id}.",
                           "SecurityGroupRuleExists")


async def delete_rule(session: AsyncSession, rule: SecurityGroupRule) -> None:
    sg = await session.get(SecurityGroup, rule.security_group_id)
    if sg is not None:
        standard.bump(sg)
    await session.delete(rule)


async def rules_of(session: AsyncSession, sg_ids: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {i: [] for i in sg_ids}
    if not sg_ids:
        return out
    for rule in (await session.scalars(select(SecurityGroupRule).where(
            SecurityGroupRule.security_group_id.in_(list(sg_ids))))).all():
        out[rule.security_group_id].append(rule)
    return out


async def defaults_among(session: AsyncSession, sg_ids: Sequence[str]) -> set[str]:
    if not sg_ids:
        return set()
    return set((await session.scalars(select(DefaultSecurityGroup.security_group_id).where(
        DefaultSecurityGroup.security_group_id.in_(list(sg_ids))))).all())


def render_rule(rule: SecurityGroupRule, default_groups: set[str] = frozenset()  # type: ignore[assignment]
                ) -> dict[str, Any]:
    body = standard.standard(rule)
    body.pop("name", None)
    body.update({
        "security_group_id": rule.security_group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id,
        "normalized_cidr": rule.remote_ip_prefix,
        "belongs_to_default_sg": rule.security_group_id in default_groups,
    })
    return body


def render(sg: SecurityGroup, rules: list[SecurityGroupRule], tags: dict[str, list[str]],
           shared: bool, default_groups: set[str]) -> dict[str, Any]:
    body = standard.standard(sg)
    body.update({
        "name": sg.name,
        "stateful": sg.stateful,
        "shared": shared,
        "security_group_rules": [render_rule(r, default_groups) for r in rules],
        "tags": tags.get(sg.id, []),
    })
    return body

"""Networks: provider attributes, sharing and external access (as RBAC entries), MTU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, segments, standard
from nimbus.network import validators as v
from nimbus.network.errors import conflict, in_use, invalid_input, not_found
from nimbus.network.models import Network, Port, RBACPolicy, Subnet, SubnetPool

if TYPE_CHECKING:
    from nimbus.network.service import NetworkService

# Ports the network owns itself: they go away with it instead of blocking its deletion.
OWNED_PORTS = ("network:dhcp",)


def _az_hints(value: Any, field: str) -> list[str]:
    hints = v.string_list(value, field)
    for hint in hints:
        v.string(hint, field, 255)
    return hints


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "admin_state_up": v.Attr(v.boolean), "shared": v.Attr(v.boolean),
    "router:external": v.Attr(v.boolean), "is_default": v.Attr(v.boolean),
    "mtu": v.Attr(lambda x, f: v.integer(x, f, 68, 65535)),
    "port_security_enabled": v.Attr(v.boolean),
    "provider:network_type": v.Attr(v.name255),
    "provider:physical_network": v.Attr(v.nullable(v.name255)),
    "provider:segmentation_id": v.Attr(v.nullable(lambda x, f: v.integer(x, f, 0))),
    "segments": v.Attr(segments.parse_segments),
    "availability_zone_hints": v.Attr(_az_hints, put=False),
    "dns_domain": v.Attr(v.name255),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "qos_policy_id": v.Attr(v.uuid_or_none),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}

COLUMNS: query.Columns = {
    "id": Network.id, "name": Network.name, "description": Network.description,
    "project_id": Network.project_id, "admin_state_up": Network.admin_state_up,
    "status": Network.status, "shared": Network.shared, "router:external": Network.external,
    "is_default": Network.is_default, "mtu": Network.mtu,
    "port_security_enabled": Network.port_security_enabled,
    "provider:network_type": Network.network_type,
    "provider:physical_network": Network.physical_network,
    "provider:segmentation_id": Network.segmentation_id,
    "revision_number": Network.revision_number, "created_at": Network.created_at,
    "updated_at": Network.updated_at, "dns_domain": Network.dns_domain,
}


def visibility(ctx: RequestContext) -> Any:
    return access.visible(ctx, Network, "network", ("access_as_shared", "access_as_external"),
                          Network.shared, Network.external)


async def get(session: AsyncSession, ctx: RequestContext, network_id: str,
              *, lock: bool = False) -> Network:
    q = select(Network).where(Network.id == network_id)
    q = access.restrict(q, visibility(ctx))
    if lock:
        q = q.with_for_update()
    net = (await session.scalars(q)).first()
    if net is None:
        raise not_found("network", network_id)
    return net


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[Network], bool]:
    q = access.restrict(select(Network), visibility(ctx))
    q = query.apply_filters(q, COLUMNS, params, skip=("shared",))
    if "shared" in params.filters:
        wanted = {query.as_bool(x, "shared") for x in params.filters["shared"]}
        if wanted == {True}:
            q = q.where((Network.shared.is_(True)) | Network.id.in_(
                access.granted(ctx, "network", ("access_as_shared",))))
        elif wanted == {False}:
            q = q.where(Network.shared.is_(False), Network.id.not_in(
                access.granted(ctx, "network", ("access_as_shared",))))
    q = query.apply_tags(q, Network.id, params)
    return await query.paginate(session, q, Network, COLUMNS, params)


def project_for(ctx: RequestContext, data: dict[str, Any]) -> str:
    pid = data.pop("project_id", None)
    tid = data.pop("tenant_id", None)
    if pid and tid and pid != tid:
        raise invalid_input("tenant_id and project_id must be the same when both are given")
    return pid or tid or access.project_of(ctx)


async def create(session: AsyncSession, svc: NetworkService, ctx: RequestContext,
                 data: dict[str, Any], project_id: str) -> Network:
    settings = svc.settings
    chosen = await segments.allocate_network(session, settings, data)
    kind, physnet, seg = chosen[0]
    max_mtu = segments.max_mtu(settings, chosen)
    mtu = data.get("mtu", max_mtu)
    if mtu > max_mtu:
        raise invalid_input(f"Requested MTU is too big, maximum is {max_mtu}")
    if data.get("is_default") and not data.get("router:external"):
        raise invalid_input("is_default may only be set on an external network")
    net = Network(
        id=new_uuid(), project_id=project_id, name=data.get("name", ""),
        description=data.get("description", ""),
        admin_state_up=data.get("admin_state_up", True), status="ACTIVE",
        shared=data.get("shared", False), external=data.get("router:external", False),
        is_default=data.get("is_default", False), mtu=mtu,
        port_security_enabled=data.get("port_security_enabled", True),
        network_type=kind, physical_network=physnet, segmentation_id=seg,
        availability_zone_hints=data.get("availability_zone_hints", []),
        dns_domain=data.get("dns_domain", ""), revision_number=0)
    if net.is_default:
        await _clear_default(session)
    session.add(net)
    await session.flush()
    segments.add_rows(session, net.id, chosen)
    if net.shared:
        _wildcard(session, net, "access_as_shared")
    if net.external:
        _wildcard(session, net, "access_as_external")
    if data.get("tags"):
        await standard.set_tags(session, net.id, data["tags"])
    return net


def _wildcard(session: AsyncSession, net: Network, action: str) -> None:
    session.add(RBACPolicy(id=new_uuid(), project_id=net.project_id, object_type="network",
                           object_id=net.id, action=action, target_tenant="*"))


async def _drop_wildcard(session: AsyncSession, net: Network, action: str) -> None:
    await session.execute(delete(RBACPolicy).where(
        RBACPolicy.object_type == "network", RBACPolicy.object_id == net.id,
        RBACPolicy.action == action, RBACPolicy.target_tenant == "*"))


async def _clear_default(session: AsyncSession) -> None:
    for other in (await session.scalars(select(Network).where(
            Network.is_default.is_(True)))).all():
        other.is_default = False


async def update(session: AsyncSession, svc: NetworkService, net: Network,
                 data: dict[str, Any]) -> None:
    await _check_provider_update(session, net, data)
    for key in ("name", "description", "admin_state_up", "port_security_enabled",
                "dns_domain"):
        if key in data:
            setattr(net, key, data[key] if data[key] is not None else "")
    if "mtu" in data:
        max_mtu = segments.mtu_for(svc.settings, net.network_type)
        if data["mtu"] > max_mtu:
            raise invalid_input(f"Requested MTU is too big, maximum is {max_mtu}")
        net.mtu = data["mtu"]
    if "shared" in data and data["shared"] != net.shared:
        if not data["shared"]:
            await _check_unshare(session, net)
            await _drop_wildcard(session, net, "access_as_shared")
        else:
            _wildcard(session, net, "access_as_shared")
        net.shared = data["shared"]
    if "router:external" in data and data["router:external"] != net.external:
        if not data["router:external"]:
            foreign = await session.scalar(select(func.count()).select_from(Port).where(
                Port.network_id == net.id,
                Port.device_owner.in_(("network:router_gateway", "network:floatingip"))))
            if foreign:
                raise conflict(f"External network {net.id} cannot be updated to be "
                               "non-external: it has gateway ports or floating IPs.",
                               "ExternalNetworkInUse")
            await _drop_wildcard(session, net, "access_as_external")
            net.is_default = False
        else:
            _wildcard(session, net, "access_as_external")
        net.external = data["router:external"]
    if data.get("is_default"):
        if not net.external:
            raise invalid_input("is_default may only be set on an external network")
        await _clear_default(session)
        net.is_default = True
    elif "is_default" in data:
        net.is_default = False
    standard.bump(net)


async def _check_provider_update(session: AsyncSession, net: Network,
                                 data: dict[str, Any]) -> None:
    """Provider attributes and segments may be given on update only unchanged."""
    if not any(k in data for k in (*segments.PROVIDER_KEYS, "segments")):
        return
    current = (await segments.of_networks(session, [net.id])).get(net.id, [])
    views = [segments.provider_view(s) for s in current]
    for key in segments.PROVIDER_KEYS:
        if key in data and (len(views) != 1 or data[key] != views[0][key]):
            raise invalid_input("Plugin does not support updating provider attributes")
    if "segments" in data:
        wanted = [{k: seg.get(k) for k in segments.PROVIDER_KEYS} for seg in data["segments"]]
        if wanted != views:
            raise invalid_input("Plugin does not support updating provider attributes")


async def _check_unshare(session: AsyncSession, net: Network) -> None:
    others = await session.scalar(select(func.count()).select_from(Port).where(
        Port.network_id == net.id, Port.project_id != net.project_id,
        Port.device_owner.not_in(OWNED_PORTS + ("network:router_gateway",
                                                "network:floatingip"))))
    if others:
        raise conflict(f"Invalid input for operation: Unable to reconfigure sharing settings "
                       f"for network {net.id}. Multiple tenants are using it.",
                       "InvalidSharedSetting")


async def delete_network(session: AsyncSession, net: Network) -> list[str]:
    """Remove a network with no ports but its own; returns the ports removed with it."""
    ports = (await session.execute(select(Port.id, Port.device_owner).where(
        Port.network_id == net.id))).all()
    # Floating IPs of an external network go with it, as upstream's L3 plugin does.
    goes_along = OWNED_PORTS + (("network:floatingip",) if net.external else ())
    if any(owner not in goes_along for _, owner in ports):
        raise in_use("network", net.id)
    owned = [pid for pid, _ in ports]
    if net.external:
        from nimbus.network.models import FloatingIP

        fips = (await session.scalars(select(FloatingIP.id).where(
            FloatingIP.floating_network_id == net.id))).all()
        for fid in fips:
            await standard.drop_tags(session, fid)
        await session.execute(delete(FloatingIP).where(FloatingIP.floating_network_id == net.id))
    if owned:
        await session.execute(delete(Port).where(Port.id.in_(owned)))
    subnet_ids = (await session.scalars(select(Subnet.id).where(
        Subnet.network_id == net.id))).all()
    for sid in [*subnet_ids, net.id]:
        await standard.drop_tags(session, sid)
    await session.execute(delete(Subnet).where(Subnet.network_id == net.id))
    await session.execute(delete(RBACPolicy).where(
        RBACPolicy.object_type == "network", RBACPolicy.object_id == net.id))
    await standard.drop_tags(session, net.id)
    await segments.drop_network(session, net.id)
    await session.delete(net)
    return owned


# -- rendering ---------------------------------------------------------------------------------
class Extras:
    """What rendering a page of networks needs beyond the rows, fetched in a few queries."""

    def __init__(self) -> None:
        self.subnets: dict[str, list[str]] = {}
        self.scopes: dict[str, dict[int, str | None]] = {}
        self.tags: dict[str, list[str]] = {}
        self.shared_to_me: set[str] = set()
        # Only for networks of several segments (one segment shows as provider:*).
        self.segments: dict[str, list[dict[str, Any]]] = {}


async def extras(session: AsyncSession, ctx: RequestContext,
                 nets: Sequence[Network]) -> Extras:
    out = Extras()
    ids = [n.id for n in nets]
    if not ids:
        return out
    rows = (await session.execute(
        select(Subnet.network_id, Subnet.id, Subnet.ip_version, SubnetPool.address_scope_id)
        .outerjoin(SubnetPool, SubnetPool.id == Subnet.subnetpool_id)
        .where(Subnet.network_id.in_(ids)).order_by(Subnet.created_at))).all()
    for net_id, sid, version, scope in rows:
        out.subnets.setdefault(net_id, []).append(sid)
        if scope:
            out.scopes.setdefault(net_id, {})[version] = scope
    out.tags = await standard.tags_of(session, ids)
    for net_id, segs in (await segments.of_networks(session, ids)).items():
        if len(segs) > 1:
            out.segments[net_id] = [segments.provider_view(s) for s in segs]
    if not ctx.is_admin:
        out.shared_to_me = set((await session.scalars(select(RBACPolicy.object_id).where(
            RBACPolicy.object_type == "network", RBACPolicy.action == "access_as_shared",
            RBACPolicy.object_id.in_(ids),
            RBACPolicy.target_tenant == access.project_of(ctx)))).all())
    return out


def render(net: Network, ex: Extras, hidden: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    body = standard.standard(net)
    scopes = ex.scopes.get(net.id, {})
    body.update({
        "name": net.name,
        "admin_state_up": net.admin_state_up,
        "status": net.status,
        "subnets": ex.subnets.get(net.id, []),
        "shared": net.shared or net.id in ex.shared_to_me,
        "router:external": net.external,
        "is_default": net.is_default,
        "mtu": net.mtu,
        "port_security_enabled": net.port_security_enabled,
        "availability_zone_hints": list(net.availability_zone_hints or []),
        "availability_zones": ["nova"],
        "ipv4_address_scope": scopes.get(4),
        "ipv6_address_scope": scopes.get(6),
        "l2_adjacency": True,
        "dns_domain": net.dns_domain or "",
        "provider:network_type": net.network_type,
        "provider:physical_network": net.physical_network or None,
        "provider:segmentation_id": net.segmentation_id,
        "tags": ex.tags.get(net.id, []),
    })
    if net.id in ex.segments:
        # As upstream: a network of several segments shows them instead of provider:*.
        for key in segments.PROVIDER_KEYS:
            del body[key]
        body["segments"] = ex.segments[net.id]
    for key in hidden:
        body.pop(key, None)
    return body

"""Network segments: provider attributes (network type, physical network, segmentation id)
allocated from the configured ranges when not given, the MTU each type leaves to guests, the
multi-provider `segments` list of a network, and the segment extension's resource."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_uuid
from nimbus.common.settings import NetworkSettings
from nimbus.common.timeutils import isotime
from nimbus.network import query, standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, invalid_input
from nimbus.network.models import Network, NetworkSegment
from nimbus.web.errors import NotFound

# (network_type, physical_network, segmentation_id)
Segment = tuple[str, str, int | None]

TYPES = ("flat", "vlan", "vxlan", "local", "geneve", "gre")
SUPPORTED = ("flat", "vlan", "vxlan", "local")
OVERHEAD = {"vxlan": 50, "geneve": 58, "gre": 42}
# Free ids a new network picks from at random: wide enough that a burst of creates on separate
# database sessions rarely collides (a collision costs a retry of the whole transaction).
SPREAD = 64


def mtu_for(settings: NetworkSettings, network_type: str) -> int:
    return settings.global_mtu - OVERHEAD.get(network_type, 0)


def vni_ranges(settings: NetworkSettings) -> list[tuple[int, int]]:
    out = []
    for text in settings.vxlan_vni_ranges:
        low, _, high = text.partition(":")
        out.append((int(low), int(high or low)))
    return out


def vlan_ranges(settings: NetworkSettings) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for text in settings.vlan_ranges:
        parts = text.split(":")
        if len(parts) == 3:
            out.setdefault(parts[0], []).append((int(parts[1]), int(parts[2])))
        else:
            out.setdefault(parts[0], [])
    return out


def physnets(settings: NetworkSettings) -> set[str]:
    return set(settings.flat_networks) | set(vlan_ranges(settings))


async def allocate(session: AsyncSession, settings: NetworkSettings,
                   data: dict[str, Any], pending: Sequence[Segment] = ()) -> Segment:
    """Check or choose (network_type, physical_network, segmentation_id); `pending` are the
    segments already chosen in this request, not yet written."""
    kind = data.get("provider:network_type") or settings.tenant_network_type
    physnet = data.get("provider:physical_network") or ""
    seg = data.get("provider:segmentation_id")
    if kind not in TYPES:
        raise invalid_input(f"network_type value '{kind}' not supported")
    if kind not in SUPPORTED:
        raise bad_request(f"Invalid input for operation: network_type value '{kind}' not "
                          "supported.", "InvalidInput")
    if kind in ("vxlan", "local"):
        if physnet:
            raise invalid_input(f"provider:physical_network specified for {kind} network")
    if kind == "local" and seg is not None:
        raise invalid_input("segmentation_id specified for local network")
    if kind == "flat":
        if seg is not None:
            raise invalid_input("segmentation_id specified for flat network")
        if not physnet:
            raise invalid_input("physical_network required for flat provider network")
        if physnet not in settings.flat_networks:
            raise invalid_input(f"physical_network '{physnet}' unknown for flat provider "
                                "network")
        taken = await session.scalar(select(NetworkSegment.id).where(
            NetworkSegment.network_type == "flat",
            NetworkSegment.physical_network == physnet).limit(1))
        taken = taken or await session.scalar(select(Network.id).where(
            Network.network_type == "flat", Network.physical_network == physnet).limit(1))
        if taken or ("flat", physnet, None) in pending:
            raise conflict(f"Unable to create the flat network. Physical network {physnet} "
                           "is in use.", "FlatNetworkInUse")
        return kind, physnet, None
    if kind == "local":
        return kind, "", None
    if kind == "vlan":
        ranges = vlan_ranges(settings)
        if not physnet:
            candidates = [p for p, r in ranges.items() if r]
            if not candidates:
                raise conflict("Unable to create the network. No tenant network is "
                               "available for allocation.", "NoNetworkAvailable")
            physnet = candidates[0]
        elif physnet not in ranges:
            raise invalid_input(f"physical_network '{physnet}' unknown for VLAN provider "
                                "network")
        if seg is not None:
            if not 1 <= seg <= 4094:
                raise invalid_input("segmentation_id out of range (1 through 4094)")
            return await _claim(session, kind, physnet, seg, pending)
        return await _choose(session, kind, physnet, ranges.get(physnet, []), pending)
    # vxlan
    if seg is not None:
        if not 1 <= seg <= 16777215:
            raise invalid_input("segmentation_id out of range (1 through 16777215)")
        return await _claim(session, kind, "", seg, pending)
    return await _choose(session, kind, "", vni_ranges(settings), pending)


async def _used(session: AsyncSession, kind: str, physnet: str,
                pending: Sequence[Segment]) -> set[int]:
    used = {s for s in (await session.scalars(select(NetworkSegment.segmentation_id).where(
        NetworkSegment.network_type == kind,
        NetworkSegment.physical_network == physnet))).all() if s is not None}
    # The networks' own columns too (the first segment, written before segments had a table).
    used |= {s for s in (await session.scalars(select(Network.segmentation_id).where(
        Network.network_type == kind, Network.physical_network == physnet))).all()
        if s is not None}
    return used | {s for k, p, s in pending if k == kind and p == physnet and s is not None}


async def _claim(session: AsyncSession, kind: str, physnet: str, seg: int,
                 pending: Sequence[Segment]) -> Segment:
    if seg in await _used(session, kind, physnet, pending):
        where = f" on physical network {physnet}" if physnet else ""
        if kind == "vlan":
            raise conflict(f"Unable to create the network. The VLAN {seg} on physical "
                           f"network {physnet} is in use.", "VlanIdInUse")
        raise conflict(f"Unable to create the network. The tunnel ID {seg}{where} is in "
                       "use.", "TunnelIdInUse")
    return kind, physnet, seg


async def _choose(session: AsyncSession, kind: str, physnet: str,
                  ranges: list[tuple[int, int]], pending: Sequence[Segment]) -> Segment:
    used = await _used(session, kind, physnet, pending)
    free: list[int] = []
    for low, high in ranges:
        for seg in range(low, high + 1):
            if seg not in used:
                free.append(seg)
                if len(free) == SPREAD:
                    break
        if len(free) == SPREAD:
            break
    if free:
        # One of the lowest free ids, at random: requests racing on other database sessions
        # rarely pick the same one (the unique constraint and a retry settle it if they do).
        return kind, physnet, random.choice(free)
    raise conflict("Unable to create the network. No tenant network is available for "
                   "allocation.", "NoNetworkAvailable")


# -- a network's segments (multi-provider) -------------------------------------------------------
PROVIDER_KEYS = ("provider:network_type", "provider:physical_network",
                 "provider:segmentation_id")


def parse_segments(value: Any, field: str = "segments") -> list[dict[str, Any]]:
    """The multi-provider `segments` attribute: a list of provider attribute sets."""
    if not isinstance(value, list) or not all(isinstance(s, dict) for s in value):
        raise invalid_input(f"'{value}' is not a list of segments")
    out: list[dict[str, Any]] = []
    for seg in value:
        extra = sorted(set(seg) - set(PROVIDER_KEYS))
        if extra:
            raise invalid_input(f"Unrecognized attribute(s) '{', '.join(extra)}' in segment "
                                f"{seg}")
        clean: dict[str, Any] = {}
        for key in ("provider:network_type", "provider:physical_network"):
            if seg.get(key) is not None:
                clean[key] = v.name255(seg[key], key)
        if seg.get("provider:segmentation_id") is not None:
            clean["provider:segmentation_id"] = v.integer(seg["provider:segmentation_id"],
                                                          "provider:segmentation_id", 0)
        out.append(clean)
    _check_duplicates(out)
    return out


def _partial(seg: dict[str, Any]) -> bool:
    """A segment that leaves something to allocate (upstream's notion)."""
    kind = seg.get("provider:network_type")
    if kind == "flat":
        return not seg.get("provider:physical_network")
    if kind == "local":
        return False
    if kind == "vlan":
        return not (seg.get("provider:physical_network") and
                    seg.get("provider:segmentation_id") is not None)
    return seg.get("provider:segmentation_id") is None


def _check_duplicates(segs: list[dict[str, Any]]) -> None:
    full = [tuple(seg.get(k) for k in PROVIDER_KEYS) for seg in segs if not _partial(seg)]
    if len(set(full)) != len(full):
        raise bad_request("Invalid input for operation: Duplicate segment entry in request.",
                          "SegmentsContainDuplicateEntry")


async def allocate_network(session: AsyncSession, settings: NetworkSettings,
                           data: dict[str, Any]) -> list[Segment]:
    """The segments a new network asks for (`segments`, or provider:* for one), chosen."""
    segs = data.pop("segments", None)
    given = {k: data[k] for k in PROVIDER_KEYS if data.get(k) is not None}
    if segs and given:
        raise bad_request("Segments and provider values cannot both be set.",
                          "SegmentsSetInConjunctionWithProviders")
    chosen: list[Segment] = []
    for seg in segs or [given]:
        chosen.append(await allocate(session, settings, seg, chosen))
    return chosen


def max_mtu(settings: NetworkSettings, chosen: Sequence[Segment]) -> int:
    return min(mtu_for(settings, kind) for kind, _, _ in chosen)


def add_rows(session: AsyncSession, network_id: str, chosen: Sequence[Segment],
             first_index: int = 0) -> list[NetworkSegment]:
    rows = [NetworkSegment(id=new_uuid(), network_id=network_id, name="", description="",
                           network_type=kind, physical_network=physnet,
                           segmentation_id=seg, segment_index=first_index + i,
                           revision_number=0)
            for i, (kind, physnet, seg) in enumerate(chosen)]
    session.add_all(rows)
    return rows


async def of_networks(session: AsyncSession,
                      ids: Sequence[str]) -> dict[str, list[NetworkSegment]]:
    found: dict[str, list[NetworkSegment]] = {}
    if not ids:
        return found
    for row in (await session.scalars(select(NetworkSegment).where(
            NetworkSegment.network_id.in_(list(ids))).order_by(
            NetworkSegment.network_id, NetworkSegment.segment_index))).all():
        found.setdefault(row.network_id, []).append(row)
    return found


def provider_view(seg: NetworkSegment) -> dict[str, Any]:
    return {"provider:network_type": seg.network_type,
            "provider:physical_network": seg.physical_network or None,
            "provider:segmentation_id": seg.segmentation_id}


async def drop_network(session: AsyncSession, network_id: str) -> None:
    """Frees the network's segmentation ids (the rows would also go with the network)."""
    await session.execute(delete(NetworkSegment).where(NetworkSegment.network_id ==
                                                       network_id))


async def check_subnet_segment(session: AsyncSession, network_id: str,
                               segment_id: str | None) -> None:
    """A subnet's segment_id must name a segment of the subnet's network."""
    if segment_id is None:
        return
    row = await session.get(NetworkSegment, segment_id)
    if row is None:
        raise segment_not_found(segment_id)
    if row.network_id != network_id:
        raise bad_request(f"Network {network_id} does not contain segment {segment_id}.",
                          "NetworkIdsDontMatch")


# -- the segment extension's resource: /v2.0/segments -------------------------------------------
def _opt_name(value: Any, field: str) -> str:
    return v.name255(value, field) if value is not None else ""


RESOURCE_SPEC = {
    "network_id": v.Attr(v.check_uuid, put=False, required=True),
    "name": v.Attr(_opt_name), "description": v.Attr(_opt_name),
    "network_type": v.Attr(v.name255, put=False, required=True),
    "physical_network": v.Attr(v.nullable(v.name255), put=False),
    "segmentation_id": v.Attr(v.nullable(lambda x, f: v.integer(x, f, 0)), put=False),
}

COLUMNS: query.Columns = {
    "id": NetworkSegment.id, "network_id": NetworkSegment.network_id,
    "name": NetworkSegment.name, "description": NetworkSegment.description,
    "network_type": NetworkSegment.network_type,
    "physical_network": NetworkSegment.physical_network,
    "segmentation_id": NetworkSegment.segmentation_id,
    "revision_number": NetworkSegment.revision_number,
    "created_at": NetworkSegment.created_at, "updated_at": NetworkSegment.updated_at,
}


def segment_not_found(segment_id: str) -> NotFound:
    return NotFound(f"Segment {segment_id} could not be found.", error_type="SegmentNotFound")


async def get(session: AsyncSession, segment_id: str) -> NetworkSegment:
    row = await session.get(NetworkSegment, segment_id)
    if row is None:
        raise segment_not_found(segment_id)
    return row


async def listing(session: AsyncSession,
                  params: query.ListParams) -> tuple[list[NetworkSegment], bool]:
    q = query.apply_filters(select(NetworkSegment), COLUMNS, params)
    return await query.paginate(session, q, NetworkSegment, COLUMNS, params)


async def create(session: AsyncSession, settings: NetworkSettings, net: Network,
                 data: dict[str, Any]) -> NetworkSegment:
    """Another segment on an existing network."""
    chosen = await allocate(session, settings, {
        "provider:network_type": data["network_type"],
        "provider:physical_network": data.get("physical_network"),
        "provider:segmentation_id": data.get("segmentation_id")})
    last = await session.scalar(select(func.max(NetworkSegment.segment_index)).where(
        NetworkSegment.network_id == net.id))
    row = add_rows(session, net.id, [chosen], (last + 1) if last is not None else 0)[0]
    row.name, row.description = data.get("name", ""), data.get("description", "")
    if last is None:
        _mirror(net, row)
    net.mtu = min(net.mtu, mtu_for(settings, chosen[0]))
    standard.bump(net)
    await session.flush()
    return row


def update(row: NetworkSegment, data: dict[str, Any]) -> None:
    for key in ("name", "description"):
        if key in data:
            setattr(row, key, data[key])
    standard.bump(row)


async def delete_segment(session: AsyncSession, row: NetworkSegment) -> None:
    from nimbus.network.models import Subnet

    used = (await session.scalars(select(Subnet.id).where(
        Subnet.segment_id == row.id))).all()
    if used:
        raise conflict(f"Segment '{row.id}' cannot be deleted while it is in use by: "
                       f"subnets {', '.join(used)}.", "SegmentInUse")
    rest = [s for s in (await of_networks(session, [row.network_id])).get(row.network_id, [])
            if s.id != row.id]
    if not rest:
        raise conflict(f"Segment '{row.id}' is the last segment of network "
                       f"{row.network_id}: delete the network instead.", "SegmentInUse")
    await session.delete(row)
    await session.flush()
    net = await session.get(Network, row.network_id)
    if net is not None:
        _mirror(net, rest[0])
        standard.bump(net)


def _mirror(net: Network, seg: NetworkSegment) -> None:
    """The network's own provider columns show its first segment (what the data plane wires)."""
    net.network_type = seg.network_type
    net.physical_network = seg.physical_network
    net.segmentation_id = seg.segmentation_id


def render(row: NetworkSegment) -> dict[str, Any]:
    return {
        "id": row.id, "network_id": row.network_id, "name": row.name or None,
        "description": row.description or "", "network_type": row.network_type,
        "physical_network": row.physical_network or None,
        "segmentation_id": row.segmentation_id, "revision_number": row.revision_number,
        "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at),
    }

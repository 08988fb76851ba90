"""Provider attributes: network type, physical network and segmentation id, allocated from
the configured ranges when not given; and the MTU each type leaves to guests."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.settings import NetworkSettings
from nimbus.network.errors import bad_request, conflict, invalid_input
from nimbus.network.models import Network

TYPES = ("flat", "vlan", "vxlan", "local", "geneve", "gre")
SUPPORTED = ("flat", "vlan", "vxlan", "local")
OVERHEAD = {"vxlan": 50, "geneve": 58, "gre": 42}
SPREAD = 8


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
                   data: dict[str, Any]) -> tuple[str, str, int | None]:
    """Check or choose (network_type, physical_network, segmentation_id)."""
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
        taken = await session.scalar(select(Network.id).where(
            Network.network_type == "flat", Network.physical_network == physnet).limit(1))
        if taken:
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
            return await _claim(session, kind, physnet, seg)
        return await _choose(session, kind, physnet, ranges.get(physnet, []))
    # vxlan
    if seg is not None:
        if not 1 <= seg <= 16777215:
            raise invalid_input("segmentation_id out of range (1 through 16777215)")
        return await _claim(session, kind, "", seg)
    return await _choose(session, kind, "", vni_ranges(settings))


async def _used(session: AsyncSession, kind: str, physnet: str) -> set[int]:
    return {s for s in (await session.scalars(select(Network.segmentation_id).where(
        Network.network_type == kind, Network.physical_network == physnet))).all()
        if s is not None}


async def _claim(session: AsyncSession, kind: str, physnet: str,
                 seg: int) -> tuple[str, str, int | None]:
    if seg in await _used(session, kind, physnet):
        where = f" on physical network {physnet}" if physnet else ""
        if kind == "vlan":
            raise conflict(f"Unable to create the network. The VLAN {seg} on physical "
                           f"network {physnet} is in use.", "VlanIdInUse")
        raise conflict(f"Unable to create the network. The tunnel ID {seg}{where} is in "
                       "use.", "TunnelIdInUse")
    return kind, physnet, seg


async def _choose(session: AsyncSession, kind: str, physnet: str,
                  ranges: list[tuple[int, int]]) -> tuple[str, str, int | None]:
    used = await _used(session, kind, physnet)
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

"""Hosts as compute sees them: services (up or down from their heartbeats), compute nodes,
and the availability zone each host is in (from aggregates' availability_zone metadata)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import aware, utcnow
from nimbus.compute.models import AggregateHost, AggregateMetadata, ComputeNode, Service

if TYPE_CHECKING:
    from nimbus.common.settings import ComputeSettings

COMPUTE_BINARY = "nova-compute"


def is_up(service: Service, settings: ComputeSettings, now: datetime | None = None) -> bool:
    if service.forced_down:
        return False
    seen = service.last_seen_up or service.updated_at or service.created_at
    if seen is None:
        return False
    now = now or utcnow()
    return now - aware(seen) <= timedelta(seconds=settings.service_down_time)


async def host_zones(session: AsyncSession, default_zone: str,
                     hosts: list[str] | None = None) -> dict[str, str]:
    """host -> availability zone, for hosts in an aggregate with one (others: default)."""
    query = select(AggregateHost.host, AggregateMetadata.value).join(
        AggregateMetadata, AggregateMetadata.aggregate_id == AggregateHost.aggregate_id).where(
        AggregateMetadata.key == "availability_zone")
    if hosts is not None:
        query = query.where(AggregateHost.host.in_(hosts))
    zones: dict[str, list[str]] = {}
    for host, zone in (await session.execute(query)).all():
        zones.setdefault(host, []).append(zone)
    out = {host: ",".join(sorted(set(z))) for host, z in zones.items()}
    if hosts is not None:
        for host in hosts:
            out.setdefault(host, default_zone)
    return out


async def zone_of(session: AsyncSession, host: str, default_zone: str) -> str:
    return (await host_zones(session, default_zone, [host]))[host]


async def register_service(session: AsyncSession, host: str, binary: str,
                           topic: str) -> Service:
    """Create or revive the service row of (host, binary); it is up from now on."""
    now = utcnow()
    row = (await session.scalars(select(Service).where(
        Service.host == host, Service.binary == binary))).first()
    if row is None:
        row = Service(uuid=new_uuid(), host=host, binary=binary, topic=topic, report_count=0,
                      disabled=False, forced_down=False, last_seen_up=now, created_at=now,
                      updated_at=now)
        session.add(row)
        await session.flush()
    else:
        row.last_seen_up = now
        row.updated_at = now
    return row


async def heartbeat(session: AsyncSession, hosts: list[str], binary: str) -> None:
    now = utcnow()
    await session.execute(update(Service).where(
        Service.host.in_(hosts), Service.binary == binary).values(
        last_seen_up=now, report_count=Service.report_count + 1))


async def register_node(session: AsyncSession, service: Service,
                        resources: dict[str, Any]) -> ComputeNode:
    """The compute node of a host (one per host here), created or refreshed."""
    now = utcnow()
    node = (await session.scalars(select(ComputeNode).where(
        ComputeNode.hypervisor_hostname == resources["hypervisor_hostname"]))).first()
    if node is None:
        node = ComputeNode(uuid=resources.get("uuid") or new_uuid(), created_at=now,
                           hypervisor_hostname=resources["hypervisor_hostname"],
                           host=service.host, vcpus=0, memory_mb=0, local_gb=0,
                           hypervisor_type="fake")
        session.add(node)
    node.service_id = service.id
    node.host = service.host
    for key in ("hypervisor_type", "hypervisor_version", "host_ip", "vcpus", "memory_mb",
                "local_gb", "cpu_info"):
        if key in resources:
            setattr(node, key, resources[key])
    node.started_at = now
    node.updated_at = now
    await session.flush()
    return node


def service_view(service: Service, settings: ComputeSettings, zone: str,
                 uuid_ids: bool, forced_down_field: bool) -> dict[str, Any]:
    from nimbus.common.timeutils import isotime

    updated = service.last_seen_up or service.updated_at
    out: dict[str, Any] = {
        "id": service.uuid if uuid_ids else service.id,
        "binary": service.binary, "host": service.host, "zone": zone,
        "status": "disabled" if service.disabled else "enabled",
        "state": "up" if is_up(service, settings) else "down",
        "updated_at": (isotime(updated, micro=True) or "")[:-1] if updated else None,
        "disabled_reason": service.disabled_reason,
    }
    if forced_down_field:
        out["forced_down"] = service.forced_down
    return out

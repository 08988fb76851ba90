"""What the scheduler knows of each candidate host: placement's view of its resources, and
compute's (service up and enabled, zone, aggregates, instances on it)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from nimbus.common.timeutils import aware, utcnow
from nimbus.compute import states
from nimbus.compute.models import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    ComputeNode,
    Instance,
    Service,
)

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

IO_TASKS = (states.SPAWNING, states.NETWORKING, states.RESIZE_MIGRATING,
            states.REBUILDING, states.RESIZE_PREP, states.IMAGE_SNAPSHOT,
            states.IMAGE_BACKUP, states.RESCUING, states.UNSHELVING, states.SCHEDULING)
CACHE_SECONDS = 5.0


@dataclass
class NodeInfo:
    uuid: str
    host: str
    node: str
    hypervisor_type: str
    hypervisor_version: int
    arch: str
    service_disabled: bool
    service_up: bool
    zone: str
    aggregates: list[dict[str, Any]]


@dataclass
class HostState:
    host: str
    node: str
    node_uuid: str
    zone: str
    service_up: bool
    service_disabled: bool
    hypervisor_type: str
    hypervisor_version: int
    arch: str
    aggregates: list[dict[str, Any]]
    allocation: dict[str, Any]
    vcpus_total: float = 0
    vcpus_used: float = 0
    ram_total: float = 0
    ram_used: float = 0
    disk_total: float = 0
    disk_used: float = 0
    traits: list[str] = field(default_factory=list)
    num_instances: int = 0
    num_io_ops: int = 0
    failed_builds: int = 0
    # Instances placed here by this request (group and same-host rules see them).
    instances: set[str] = field(default_factory=set)

    @property
    def free_ram_mb(self) -> float:
        return self.ram_total - self.ram_used

    @property
    def free_vcpus(self) -> float:
        return self.vcpus_total - self.vcpus_used

    @property
    def free_disk_gb(self) -> float:
        return self.disk_total - self.disk_used

    def consume(self, resources: dict[str, int], instance_uuid: str | None) -> None:
        self.vcpus_used += resources.get("VCPU", 0)
        self.ram_used += resources.get("MEMORY_MB", 0)
        self.disk_used += resources.get("DISK_GB", 0)
        self.num_instances += 1
        self.num_io_ops += 1
        if instance_uuid:
            self.instances.add(instance_uuid)

    def metadata(self, key: str) -> set[str]:
        """Values of an aggregate metadata key across this host's aggregates."""
        return {a["metadata"][key] for a in self.aggregates if key in a["metadata"]}


class HostManager:
    """Reads compute's view of the hosts (cached for a second) and builds HostStates for
    placement's candidates."""

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self._nodes: dict[str, NodeInfo] = {}
        self._by_host: dict[str, str] = {}
        self._loaded_at = 0.0
        # Build failures per host, counted since the last success (the build-failure weigher).
        self.failed_builds: dict[str, int] = {}

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    async def nodes(self) -> dict[str, NodeInfo]:
        if time.monotonic() - self._loaded_at < CACHE_SECONDS:
            return self._nodes
        settings = self.svc.settings
        async with self.svc.db.session() as session:
            rows = (await session.execute(select(
                ComputeNode.uuid, ComputeNode.host, ComputeNode.hypervisor_hostname,
                ComputeNode.hypervisor_type, ComputeNode.hypervisor_version,
                ComputeNode.cpu_info, Service.disabled, Service.forced_down,
                Service.last_seen_up, Service.updated_at).join(
                Service, Service.id == ComputeNode.service_id))).all()
            aggs: dict[int, dict[str, Any]] = {}
            for agg_id, uuid, name in (await session.execute(select(
                    Aggregate.id, Aggregate.uuid, Aggregate.name))).all():
                aggs[agg_id] = {"id": agg_id, "uuid": uuid, "name": name, "metadata": {},
                                "hosts": []}
            for agg_id, key, value in (await session.execute(select(
                    AggregateMetadata.aggregate_id, AggregateMetadata.key,
                    AggregateMetadata.value))).all():
                aggs[agg_id]["metadata"][key] = value
            host_aggs: dict[str, list[dict[str, Any]]] = {}
            for agg_id, host in (await session.execute(select(
                    AggregateHost.aggregate_id, AggregateHost.host))).all():
                aggs[agg_id]["hosts"].append(host)
                host_aggs.setdefault(host, []).append(aggs[agg_id])
        nodes: dict[str, NodeInfo] = {}
        now = utcnow()
        down_after = timedelta(seconds=settings.service_down_time)
        for (uuid, host, node, hv_type, hv_version, cpu_info, disabled, forced_down, seen,
             updated) in rows:
            last = seen or updated
            up = not forced_down and last is not None and now - aware(last) <= down_after
            zones = sorted({a["metadata"]["availability_zone"] for a in host_aggs.get(host, [])
                            if "availability_zone" in a["metadata"]})
            nodes[uuid] = NodeInfo(
                uuid=uuid, host=host, node=node, hypervisor_type=hv_type,
                hypervisor_version=hv_version, arch=(cpu_info or {}).get("arch", "x86_64"),
                service_disabled=disabled, service_up=up,
                zone=",".join(zones) or settings.default_availability_zone,
                aggregates=host_aggs.get(host, []))
        self._nodes = nodes
        self._by_host = {n.host: u for u, n in nodes.items()}
        self._loaded_at = time.monotonic()
        return nodes

    async def node_of_host(self, host: str) -> NodeInfo | None:
        nodes = await self.nodes()
        uuid = self._by_host.get(host)
        return nodes.get(uuid) if uuid else None

    async def states(self, candidates: dict[str, Any],
                     counts: bool = True) -> list[HostState]:
        nodes = await self.nodes()
        summaries: dict[str, Any] = candidates.get("provider_summaries", {})
        out: list[HostState] = []
        seen: set[str] = set()
        for request in candidates.get("allocation_requests", []):
            allocations: dict[str, Any] = request["allocations"]
            root = next(iter(allocations))
            info = nodes.get(root)
            if info is None or root in seen:
                continue
            seen.add(root)
            summary = summaries.get(root, {})
            res = summary.get("resources", {})
            state = HostState(
                host=info.host, node=info.node, node_uuid=root, zone=info.zone,
                service_up=info.service_up, service_disabled=info.service_disabled,
                hypervisor_type=info.hypervisor_type,
                hypervisor_version=info.hypervisor_version, arch=info.arch,
                aggregates=info.aggregates, allocation=allocations,
                vcpus_total=res.get("VCPU", {}).get("capacity", 0),
                vcpus_used=res.get("VCPU", {}).get("used", 0),
                ram_total=res.get("MEMORY_MB", {}).get("capacity", 0),
                ram_used=res.get("MEMORY_MB", {}).get("used", 0),
                disk_total=res.get("DISK_GB", {}).get("capacity", 0),
                disk_used=res.get("DISK_GB", {}).get("used", 0),
                traits=list(summary.get("traits", [])),
                failed_builds=self.failed_builds.get(info.host, 0))
            out.append(state)
        if out and counts:
            await self._count_instances(out)
        return out

    async def _count_instances(self, host_states: list[HostState]) -> None:
        by_host = {s.host: s for s in host_states}
        async with self.svc.db.session() as session:
            for host, count, io_ops in (await session.execute(select(
                    Instance.host, func.count(),
                    func.sum(case((Instance.task_state.in_(IO_TASKS), 1), else_=0))).where(
                    Instance.deleted.is_(False), Instance.host.is_not(None)).group_by(
                    Instance.host))).all():
                state = by_host.get(host)
                if state is not None:
                    state.num_instances = int(count)
                    state.num_io_ops = int(io_ops or 0)

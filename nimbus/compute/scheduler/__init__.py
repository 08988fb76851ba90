"""The scheduler: placement's allocation candidates, then filters and weighers, then the
chosen hosts' resources claimed in placement (another host tried when a claim is refused).

The request spec (built by the conductor) holds: project_id, user_id, flavor, image_meta,
availability_zone, force_host/force_node, requested_host/requested_node, ignore_hosts,
scheduler_hints, group {uuid, policy, rules}, is_bfv.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.bus import Server
from nimbus.clients.base import RemoteApiError
from nimbus.clients.placement import ClaimConflict, PlacementClient
from nimbus.compute import rpc
from nimbus.compute.models import Instance, ServerGroup, ServerGroupMember
from nimbus.compute.scheduler import filters, weighers
from nimbus.compute.scheduler.host_state import HostManager, HostState

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)
NO_VALID_HOST = "No valid host was found. "


class NoValidHost(Exception):
    def __init__(self, reason: str = "There are not enough hosts available.") -> None:
        super().__init__(NO_VALID_HOST + reason)


def resources_for(flavor: dict[str, Any], is_bfv: bool = False) -> dict[str, int]:
    disk = (0 if is_bfv else int(flavor.get("root_gb") or 0)) + \
        int(flavor.get("ephemeral_gb") or 0) + math.ceil(int(flavor.get("swap") or 0) / 1024)
    res = {"VCPU": int(flavor.get("vcpus") or 0), "MEMORY_MB": int(flavor.get("memory_mb") or 0),
           "DISK_GB": disk}
    for key, value in (flavor.get("extra_specs") or {}).items():
        if key.startswith("resources:"):
            try:
                res[key.split(":", 1)[1]] = int(value)
            except ValueError:
                continue
    return {k: v for k, v in res.items() if v}


def required_traits(flavor: dict[str, Any], image_meta: dict[str, Any]) -> list[str]:
    out: list[str] = []
    specs = dict(image_meta.get("properties") or {})
    specs.update(flavor.get("extra_specs") or {})
    for key, value in specs.items():
        if key.startswith("trait:"):
            name = key.split(":", 1)[1]
            if value == "required":
                out.append(name)
            elif value == "forbidden":
                out.append("!" + name)
    return sorted(set(out))


def _fits(host: HostState, resources: dict[str, int]) -> bool:
    return (host.free_vcpus >= resources.get("VCPU", 0)
            and host.free_ram_mb >= resources.get("MEMORY_MB", 0)
            and host.free_disk_gb >= resources.get("DISK_GB", 0))


class _Ranking:
    """Hosts by weight for requests without per-instance rules: weights are normalised
    once per request, and only a host that took an instance is weighed again (a heap, so
    a hundred instances over a thousand hosts cost little)."""

    def __init__(self, weighers_: list[weighers.BaseWeigher], hosts: list[HostState],
                 spec: dict[str, Any], resources: dict[str, int], subset: int) -> None:
        self.weighers = weighers_
        self.spec = spec
        self.resources = resources
        self.subset = max(1, subset)
        self.bounds: list[tuple[float, float]] = []
        for w in weighers_:
            raw = [w.weight(h, spec) for h in hosts]
            low, high = (min(raw), max(raw)) if raw else (0.0, 0.0)
            self.bounds.append((low, high - low))
        self.heap: list[tuple[float, int, HostState]] = []
        self.seq = 0
        for h in hosts:
            self._push(h)

    def _weight(self, host: HostState) -> float:
        total = 0.0
        for w, (low, span) in zip(self.weighers, self.bounds, strict=True):
            if span:
                total += w.multiplier * (w.weight(host, self.spec) - low) / span
        return total

    def _push(self, host: HostState) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (-self._weight(host), self.seq, host))

    def take(self) -> HostState | None:
        candidates: list[HostState] = []
        while self.heap and len(candidates) < self.subset:
            _, _, host = heapq.heappop(self.heap)
            if _fits(host, self.resources):
                candidates.append(host)
        if not candidates:
            return None
        choice = random.choice(candidates)
        for host in candidates:
            if host is not choice:
                self._push(host)
        return choice

    def put_back(self, host: HostState) -> None:
        self._push(host)


class SchedulerEndpoint:
    version = "1.0"

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def select_destinations(self, context: dict[str, Any], spec: dict[str, Any],
                                  instance_uuids: list[str]) -> dict[str, Any]:
        try:
            return {"selections": await self.scheduler.select(spec, instance_uuids)}
        except NoValidHost as exc:
            return {"error": str(exc)}

    async def invalidate(self, context: dict[str, Any]) -> None:
        self.scheduler.hosts.invalidate()


class Scheduler:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.hosts = HostManager(svc)
        self.filters = filters.load(svc.settings.scheduler_filters)
        self.weighers = weighers.load(svc.settings.scheduler_weighers)
        # Instance and busy-instance counts per host cost a query: only when a rule uses them.
        self.filters_need_counts = any(getattr(f, "needs_counts", False) for f in self.filters)
        self.weighers_need_counts = any(getattr(w, "needs_counts", False)
                                        for w in self.weighers)

    async def serve(self) -> list[Server]:
        return [await self.svc.cloud.bus.serve(rpc.SCHEDULER, SchedulerEndpoint(self))]

    @property
    def placement(self) -> PlacementClient:
        return self.svc.cloud.clients.get(PlacementClient)

    async def _prepare(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Resolve what filters need from the database: group members' hosts and the hosts
        of servers named in same_host/different_host hints."""
        spec = dict(spec)
        hints = spec.get("scheduler_hints") or {}
        if not spec.get("group") and not hints.get("same_host") and \
                not hints.get("different_host"):
            return spec
        async with self.svc.db.session() as session:
            group = spec.get("group")
            if group:
                rows = (await session.execute(select(Instance.host).join(
                    ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid).join(
                    ServerGroup, ServerGroup.id == ServerGroupMember.group_id).where(
                    ServerGroup.uuid == group["uuid"], Instance.deleted.is_(False),
                    Instance.host.is_not(None)))).all()
                spec["group"] = {**group, "hosts": [r[0] for r in rows]}
            for hint, key in (("same_host", "same_host_hosts"),
                              ("different_host", "different_host_hosts")):
                uuids = hints.get(hint)
                if uuids:
                    uuids = [uuids] if isinstance(uuids, str) else list(uuids)
                    rows = (await session.execute(select(Instance.host).where(
                        Instance.uuid.in_(uuids), Instance.deleted.is_(False)))).all()
                    spec[key] = sorted({r[0] for r in rows if r[0]})
        return spec

    async def candidates(self, spec: dict[str, Any]) -> list[HostState]:
        flavor = spec["flavor"]
        resources = resources_for(flavor, spec.get("is_bfv", False))
        in_tree = None
        wanted_host = spec.get("force_host") or spec.get("requested_host")
        wanted_node = spec.get("force_node") or spec.get("requested_node")
        if wanted_host or wanted_node:
            nodes = await self.hosts.nodes()
            match = [n for n in nodes.values()
                     if (not wanted_host or n.host == wanted_host)
                     and (not wanted_node or n.node == wanted_node)]
            if not match:
                raise NoValidHost(f"Compute host {wanted_host or wanted_node} could not be "
                                  "found.")
            in_tree = match[0].uuid
        try:
            found = await self.placement.allocation_candidates(
                resources, required=required_traits(flavor, spec.get("image_meta") or {}),
                in_tree=in_tree, limit=self.svc.settings.max_placement_results)
        except RemoteApiError as exc:
            LOG.warning("placement allocation candidates failed: %s", exc)
            raise NoValidHost("Placement is unavailable.") from exc
        if not found.get("allocation_requests"):
            raise NoValidHost()
        several = len(found.get("provider_summaries") or {}) > 1
        return await self.hosts.states(found, counts=self.filters_need_counts or (
            several and self.weighers_need_counts))

    def _filter(self, hosts: list[HostState], spec: dict[str, Any], once: bool) -> list[HostState]:
        for f in self.filters:
            if f.run_once != once or not f.applies(spec):
                continue
            hosts = f.filter_all(hosts, spec)
            if not hosts:
                LOG.info("filter %s returned no hosts", f.name)
                break
        return hosts

    def _per_instance_rules(self, spec: dict[str, Any]) -> bool:
        """Whether each instance must be filtered and weighed afresh (group rules)."""
        group = spec.get("group") or {}
        return group.get("policy") in ("soft-affinity", "soft-anti-affinity") or any(
            not f.run_once and f.applies(spec) for f in self.filters)

    async def select(self, spec: dict[str, Any], instance_uuids: list[str]) -> list[dict[str, Any]]:
        spec = await self._prepare(spec)
        resources = resources_for(spec["flavor"], spec.get("is_bfv", False))
        all_hosts = await self.candidates(spec)
        ignore = set(spec.get("ignore_hosts") or [])
        forced = bool(spec.get("force_host") or spec.get("force_node"))
        hosts = [h for h in all_hosts if h.host not in ignore]
        if not forced:
            hosts = self._filter(hosts, spec, once=True)
        picks: list[tuple[str, HostState]] = []
        ranking = None if forced or self._per_instance_rules(spec) else _Ranking(
            self.weighers, hosts, spec, resources, self.svc.settings.host_subset_size)
        for uuid in instance_uuids:
            choice = ranking.take() if ranking is not None else \
                self._pick(hosts, spec, forced, resources)
            if choice is None:
                raise NoValidHost()
            self._consume(choice, spec, resources, uuid)
            if ranking is not None:
                ranking.put_back(choice)
            picks.append((uuid, choice))
        claimed = await self._claim(picks, spec, resources, hosts, forced)
        return [{"instance_uuid": uuid, "host": h.host, "node": h.node,
                 "node_uuid": h.node_uuid, "allocation": h.allocation,
                 "availability_zone": h.zone.split(",")[0]} for uuid, h in claimed]

    def _pick(self, hosts: list[HostState], spec: dict[str, Any], forced: bool,
              resources: dict[str, int]) -> HostState | None:
        usable = hosts if forced else self._filter(hosts, spec, once=False)
        usable = [h for h in usable if _fits(h, resources)]
        if not usable:
            return None
        ranked = weighers.weigh(self.weighers, usable, spec)
        subset = ranked[:max(1, self.svc.settings.host_subset_size)]
        return random.choice(subset)

    @staticmethod
    def _consume(host: HostState, spec: dict[str, Any], resources: dict[str, int],
                 uuid: str) -> None:
        host.consume(resources, uuid)
        group = spec.get("group")
        if group is not None:
            group["hosts"] = [*group.get("hosts", []), host.host]

    async def _claim(self, picks: list[tuple[str, HostState]], spec: dict[str, Any],
                     resources: dict[str, int], hosts: list[HostState],
                     forced: bool) -> list[tuple[str, HostState]]:
        project, user = spec["project_id"], spec["user_id"]
        if len(picks) > 1:
            body = {uuid: {"allocations": h.allocation, "project_id": project, "user_id": user,
                           "consumer_generation": None, "consumer_type": "INSTANCE"}
                    for uuid, h in picks}
            try:
                await self.placement.claim_many(body)
                return picks
            except ClaimConflict:
                LOG.info("batch claim refused; claiming one by one")
        done: list[tuple[str, HostState]] = []
        try:
            for uuid, host in picks:
                chosen: HostState | None = host
                tried: set[str] = set()
                while chosen is not None:
                    try:
                        await self.placement.claim(uuid, chosen.allocation, project_id=project,
                                                   user_id=user)
                        done.append((uuid, chosen))
                        break
                    except ClaimConflict:
                        tried.add(chosen.node_uuid)
                        chosen = self._pick([h for h in hosts if h.node_uuid not in tried],
                                            spec, forced, resources)
                        if chosen is not None:
                            self._consume(chosen, spec, resources, uuid)
                if chosen is None:
                    raise NoValidHost()
        except BaseException:
            for uuid, _ in done:
                try:
                    await self.placement.delete_allocations(uuid)
                except Exception:
                    LOG.warning("could not release the claim of %s", uuid, exc_info=True)
            raise
        return done

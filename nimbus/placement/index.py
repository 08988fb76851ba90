"""An in-memory index of what allocation candidates and provider filters need: trees,
inventories, usage, traits and aggregates of every provider.

The database stays the truth. The index is loaded from it at start and, after each committed
write, told the new state of the providers that write touched, together with the provider
generation that state belongs to. Every such write bumped that generation with a
compare-and-swap, so a state tagged with an older generation than the one the index already
holds is stale and is ignored: the index can only move forward, whatever order concurrent
requests finish in. A write that fails in an unexpected way marks the index stale, and the next
reader reloads it whole.

Every change of a provider's state is also logged in order (a bounded log), so answers kept
across requests (candidates.py) are brought up to date by looking again at only the providers
changed since they were computed.

Claims never trust the index: they check capacity in the database, inside their transaction.
The index follows the writes of its own process: the wirings run one placement process per
database (a second one would offer candidates from a stale view until it restarts, though its
claims would still never overcommit). Lifting that needs a change feed the database keeps for
every writer (a provider generation alone cannot say which providers changed without a scan).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.placement.models import (
    Aggregate,
    Allocation,
    Inventory,
    ProviderAggregate,
    ProviderTrait,
    ResourceClass,
    ResourceProvider,
    Trait,
)
from nimbus.placement.standard import SHARES_VIA_AGGREGATE

LOG = logging.getLogger(__name__)
LOG_LIMIT = 8192


@dataclass(slots=True)
class Inv:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    capacity: int = 0

    def __post_init__(self) -> None:
        self.capacity = int((self.total - self.reserved) * self.allocation_ratio)

    @classmethod
    def of(cls, row: Inventory) -> Inv:
        return cls(row.total, row.reserved, row.min_unit, row.max_unit, row.step_size,
                   row.allocation_ratio)

    def accepts(self, amount: int, used: int) -> bool:
        return (self.min_unit <= amount <= self.max_unit and amount % self.step_size == 0
                and used + amount <= self.capacity)


@dataclass(slots=True)
class Node:
    id: int
    uuid: str
    parent: int | None
    root: int
    generation: int = 0
    inv: dict[int, Inv] = field(default_factory=dict)
    used: dict[int, int] = field(default_factory=dict)
    traits: frozenset[int] = frozenset()
    aggs: frozenset[int] = frozenset()
    # Per class: (largest amount that still fits: free capacity capped by max_unit, min_unit,
    # step_size), kept with inv and used so the candidate scan does one lookup per class.
    fit: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    # The generation each facet was last learnt at.
    inv_gen: int = -1
    used_gen: int = -1
    traits_gen: int = -1
    aggs_gen: int = -1


def _refit(node: Node) -> None:
    used = node.used
    node.fit = {rc: (min(i.capacity - used.get(rc, 0), i.max_unit), i.min_unit, i.step_size)
                for rc, i in node.inv.items()}


class Index:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.by_uuid: dict[str, int] = {}
        self.by_class: dict[int, set[int]] = {}
        self.tree: dict[int, set[int]] = {}  # root id -> ids of the providers in its tree
        self.trait_members: dict[int, set[int]] = {}
        self.agg_members: dict[int, set[int]] = {}
        self.rc_ids: dict[str, int] = {}
        self.rc_names: dict[int, str] = {}
        self.trait_ids: dict[str, int] = {}
        self.trait_names: dict[int, str] = {}
        self.agg_ids: dict[str, int] = {}
        self.agg_uuids: dict[int, str] = {}
        # Sorted trait names per set of trait ids, and rendered provider summaries (by
        # response flavour, then provider: `"uuid":{...}` as JSON), for GET
        # /allocation_candidates.
        self.trait_lists: dict[frozenset[int], list[str]] = {}
        self.summaries: dict[int, dict[int, bytes]] = {}
        # Rendered single-provider allocation requests (JSON), by request shape then provider.
        self.areq_cache: dict[tuple[object, ...], dict[int, bytes]] = {}
        # Every change of a provider's state, in order: entry i is change number
        # log_base + i + 1, and `version` counts them all. Answers computed at one version are
        # brought up to date by looking again at the providers changed since.
        self.version = 0
        self.log: list[int] = []
        self.log_base = 0
        # Flat candidate answers: request key -> [version, sorted provider ids, their set].
        self.flat_answers: dict[tuple[object, ...], list[Any]] = {}
        self.stale = True
        self._lock = asyncio.Lock()

    # -- loading -------------------------------------------------------------------------------
    async def load(self, session: AsyncSession) -> None:
        fresh = Index()
        for rc_id, name in (await session.execute(
                select(ResourceClass.id, ResourceClass.name))).all():
            fresh.add_class(rc_id, name)
        for trait_id, name in (await session.execute(select(Trait.id, Trait.name))).all():
            fresh.add_trait(trait_id, name)
        for agg_id, agg_uuid in (await session.execute(
                select(Aggregate.id, Aggregate.uuid))).all():
            fresh.add_aggregate(agg_id, agg_uuid)
        rows = (await session.execute(select(
            ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.parent_provider_id,
            ResourceProvider.root_provider_id, ResourceProvider.generation))).all()
        for rp_id, rp_uuid, parent, root, gen in rows:
            fresh.put_provider(rp_id, rp_uuid, parent, root or rp_id, gen)
        invs: dict[int, dict[int, Inv]] = {}
        for row in (await session.scalars(select(Inventory))).all():
            invs.setdefault(row.resource_provider_id, {})[row.resource_class_id] = Inv.of(row)
        used: dict[int, dict[int, int]] = {}
        for rp_id, rc_id, total in (await session.execute(
                select(Allocation.resource_provider_id, Allocation.resource_class_id,
                       func.sum(Allocation.used))
                .group_by(Allocation.resource_provider_id,
                          Allocation.resource_class_id))).all():
            used.setdefault(rp_id, {})[rc_id] = int(total or 0)
        traits: dict[int, set[int]] = {}
        for rp_id, trait_id in (await session.execute(
                select(ProviderTrait.resource_provider_id, ProviderTrait.trait_id))).all():
            traits.setdefault(rp_id, set()).add(trait_id)
        aggs: dict[int, set[int]] = {}
        for rp_id, agg_id in (await session.execute(
                select(ProviderAggregate.resource_provider_id,
                       ProviderAggregate.aggregate_id))).all():
            aggs.setdefault(rp_id, set()).add(agg_id)
        for rp_id, node in fresh.nodes.items():
            gen = node.generation
            fresh.set_inventories(rp_id, gen, invs.get(rp_id, {}))
            fresh.set_usage(rp_id, gen, used.get(rp_id, {}))
            fresh.set_traits(rp_id, gen, traits.get(rp_id, ()))
            fresh.set_aggregates(rp_id, gen, aggs.get(rp_id, ()))
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "_lock"})
        self.stale = False
        LOG.debug("placement index loaded: %d providers", len(self.nodes))

    async def ensure_fresh(self, db: object) -> None:
        """Reload from the database when a write failed in a way that may have left the index
        behind (db is the service's Database)."""
        if not self.stale:
            return
        async with self._lock:
            if self.stale:
                async with db.session() as session:  # type: ignore[attr-defined]
                    await self.load(session)

    def invalidate(self) -> None:
        self.stale = True

    # -- names ---------------------------------------------------------------------------------
    def add_class(self, rc_id: int, name: str) -> None:
        self.rc_ids[name] = rc_id
        self.rc_names[rc_id] = name

    def remove_class(self, name: str) -> None:
        """Also on a rename (before 1.7): rendered answers name classes, so they go."""
        rc_id = self.rc_ids.pop(name, None)
        if rc_id is not None:
            self.rc_names.pop(rc_id, None)
        self.summaries.clear()
        self.areq_cache.clear()
        self.flat_answers.clear()

    def add_trait(self, trait_id: int, name: str) -> None:
        self.trait_ids[name] = trait_id
        self.trait_names[trait_id] = name

    def remove_trait(self, name: str) -> None:
        trait_id = self.trait_ids.pop(name, None)
        if trait_id is not None:
            self.trait_names.pop(trait_id, None)
        self.trait_lists.clear()
        self.summaries.clear()
        self.flat_answers.clear()

    def add_aggregate(self, agg_id: int, agg_uuid: str) -> None:
        self.agg_ids[agg_uuid] = agg_id
        self.agg_uuids[agg_id] = agg_uuid

    # -- providers -----------------------------------------------------------------------------
    def put_provider(self, rp_id: int, rp_uuid: str, parent: int | None, root: int,
                     generation: int) -> None:
        """A new provider, or a new place in the trees for a known one."""
        node = self.nodes.get(rp_id)
        if node is None:
            node = self.nodes[rp_id] = Node(rp_id, rp_uuid, parent, root, generation)
            self.by_uuid[rp_uuid] = rp_id
            self._forget(rp_id)
        else:
            self._leave_tree(node)
            node.parent, node.root = parent, root
            node.generation = max(node.generation, generation)
            self._forget(rp_id)
        self.tree.setdefault(root, set()).add(rp_id)

    def move_subtree(self, roots: dict[int, int], parents: dict[int, int | None]) -> None:
        """Re-parenting changes the root of a whole subtree: {provider id: new root}."""
        for rp_id, root in roots.items():
            node = self.nodes.get(rp_id)
            if node is None:
                continue
            self._leave_tree(node)
            node.root = root
            if rp_id in parents:
                node.parent = parents[rp_id]
            self._forget(rp_id)
            self.tree.setdefault(root, set()).add(rp_id)

    def _leave_tree(self, node: Node) -> None:
        members = self.tree.get(node.root)
        if members is not None:
            members.discard(node.id)
            if not members:
                del self.tree[node.root]

    def _forget(self, rp_id: int) -> None:
        """The provider's state changed: its rendered summaries go, and answers look again."""
        for flavour in self.summaries.values():
            flavour.pop(rp_id, None)
        self.version += 1
        self.log.append(rp_id)
        if len(self.log) > LOG_LIMIT:
            drop = len(self.log) // 2
            del self.log[:drop]
            self.log_base += drop

    def changed_since(self, version: int) -> list[int] | None:
        """The providers changed after that version (repeats possible); None when the log
        no longer reaches back that far."""
        if version < self.log_base:
            return None
        return self.log[version - self.log_base:]

    def remove_provider(self, rp_id: int) -> None:
        self._forget(rp_id)
        for shape in self.areq_cache.values():  # ids can be reused by a new provider
            shape.pop(rp_id, None)
        node = self.nodes.pop(rp_id, None)
        if node is None:
            return
        self.by_uuid.pop(node.uuid, None)
        self._leave_tree(node)
        for rc_id in node.inv:
            self.by_class.get(rc_id, set()).discard(rp_id)
        for trait_id in node.traits:
            self.trait_members.get(trait_id, set()).discard(rp_id)
        for agg_id in node.aggs:
            self.agg_members.get(agg_id, set()).discard(rp_id)

    def _bump(self, node: Node, generation: int) -> None:
        if generation > node.generation:
            node.generation = generation

    def set_inventories(self, rp_id: int, generation: int, inv: dict[int, Inv]) -> None:
        node = self.nodes.get(rp_id)
        if node is None or generation <= node.inv_gen:
            return
        for rc_id in node.inv:
            if rc_id not in inv:
                self.by_class.get(rc_id, set()).discard(rp_id)
        for rc_id in inv:
            self.by_class.setdefault(rc_id, set()).add(rp_id)
        node.inv = dict(inv)
        node.inv_gen = generation
        _refit(node)
        self._forget(rp_id)
        self._bump(node, generation)

    def set_usage(self, rp_id: int, generation: int, used: dict[int, int]) -> None:
        node = self.nodes.get(rp_id)
        if node is None or generation <= node.used_gen:
            return
        node.used = {rc: amount for rc, amount in used.items() if amount}
        node.used_gen = generation
        _refit(node)
        self._forget(rp_id)
        self._bump(node, generation)

    def set_traits(self, rp_id: int, generation: int, traits: Iterable[int]) -> None:
        node = self.nodes.get(rp_id)
        if node is None or generation <= node.traits_gen:
            return
        new = frozenset(traits)
        for trait_id in node.traits - new:
            self.trait_members.get(trait_id, set()).discard(rp_id)
        for trait_id in new - node.traits:
            self.trait_members.setdefault(trait_id, set()).add(rp_id)
        node.traits = new
        node.traits_gen = generation
        self._forget(rp_id)
        self._bump(node, generation)

    def set_aggregates(self, rp_id: int, generation: int, aggs: Iterable[int]) -> None:
        node = self.nodes.get(rp_id)
        if node is None or generation <= node.aggs_gen:
            return
        new = frozenset(aggs)
        for agg_id in node.aggs - new:
            self.agg_members.get(agg_id, set()).discard(rp_id)
        for agg_id in new - node.aggs:
            self.agg_members.setdefault(agg_id, set()).add(rp_id)
        node.aggs = new
        node.aggs_gen = generation
        self._forget(rp_id)
        self._bump(node, generation)

    def touch(self, rp_id: int, generation: int) -> None:
        node = self.nodes.get(rp_id)
        if node is not None:
            self._bump(node, generation)

    # -- questions -----------------------------------------------------------------------------
    @property
    def sharing(self) -> set[int]:
        trait_id = self.trait_ids.get(SHARES_VIA_AGGREGATE)
        if trait_id is None:
            return set()
        return self.trait_members.get(trait_id, set())

    def has_trees(self) -> bool:
        return len(self.tree) < len(self.nodes)

    def in_aggregates(self, rp_id: int, any_of: set[int]) -> bool:
        """An aggregate on the root spans the whole tree."""
        node = self.nodes[rp_id]
        if node.aggs & any_of:
            return True
        root = self.nodes.get(node.root)
        return root is not None and bool(root.aggs & any_of)

    def anchors(self, sharing_id: int) -> set[int]:
        """Roots of the trees a sharing provider shares with (its own included)."""
        node = self.nodes[sharing_id]
        roots = {node.root}
        for agg_id in node.aggs:
            for member in self.agg_members.get(agg_id, ()):
                roots.add(self.nodes[member].root)
        return roots

    def subtree(self, rp_id: int) -> set[int]:
        """The provider and all its descendants."""
        root = self.nodes[rp_id].root
        members = self.tree.get(root, set())
        out = {rp_id}
        changed = True
        while changed:
            changed = False
            for member in members:
                if member not in out and self.nodes[member].parent in out:
                    out.add(member)
                    changed = True
        return out

    def is_ancestor(self, ancestor: int, rp_id: int) -> bool:
        current: int | None = rp_id
        while current is not None:
            if current == ancestor:
                return True
            current = self.nodes[current].parent
        return False

"""Allocation candidates, computed over the in-memory index (no database round trip).

Semantics follow upstream placement: the unsuffixed group may be satisfied by several providers
of one tree (plus sharing providers that share an aggregate with it), each suffixed group by a
single provider; every allocation request is anchored at one root; `group_policy=isolate` keeps
suffixed groups on distinct providers; `same_subtree`, `root_required`, `in_tree`, `member_of`
(an aggregate on the root spans the tree) and forbidden traits and aggregates filter. Results
are produced lazily, so `limit` stops the search early.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from nimbus.placement.index import Index, Node


@dataclass
class Group:
    suffix: str
    resources: dict[int, int] = field(default_factory=dict)  # class id -> amount
    required: list[frozenset[int]] = field(default_factory=list)  # all of: any of the set
    forbidden: frozenset[int] = frozenset()
    member_of: list[frozenset[int]] = field(default_factory=list)  # all of: any of the set
    forbidden_aggs: frozenset[int] = frozenset()
    in_tree: str | None = None  # provider uuid

    @property
    def same_provider(self) -> bool:
        return self.suffix != ""


@dataclass
class Request:
    groups: list[Group]
    group_policy: str | None = None
    limit: int | None = None
    root_required: frozenset[int] = frozenset()
    root_forbidden: frozenset[int] = frozenset()
    same_subtrees: list[set[str]] = field(default_factory=list)
    nested_aware: bool = True


KEPT = 16  # flat answers kept up to date (see _kept_flat)

# One way to satisfy one group: ((provider, class, amount), ...) and the providers it maps.
Pieces = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Option:
    pieces: Pieces
    providers: tuple[int, ...]


@dataclass(slots=True)
class Candidate:
    anchor: int
    # provider -> class -> amount; the fast path shares one dict (the group's) among all.
    per_rp: dict[int, dict[int, int]]
    mappings: dict[str, list[int]]


class _Search:
    def __init__(self, index: Index, req: Request) -> None:
        self.index = index
        self.nodes = index.nodes
        self.req = req

    @functools.cached_property
    def allowed_roots(self) -> set[int] | None:
        req = self.req
        if not (req.root_required or req.root_forbidden):
            return None
        return {root for root in self.index.tree if self._root_ok(root)}

    def _root_ok(self, root: int) -> bool:
        node = self.nodes.get(root)
        return node is not None and self.req.root_required <= node.traits \
            and not (self.req.root_forbidden & node.traits)

    # -- filters -------------------------------------------------------------------------------
    def _tree_of(self, group: Group) -> int | None | bool:
        """The root in_tree asks for; None for any tree; False when the provider is unknown."""
        if group.in_tree is None:
            return None
        rp_id = self.index.by_uuid.get(group.in_tree)
        return False if rp_id is None else self.nodes[rp_id].root

    def _aggs_ok(self, node: Node, group: Group) -> bool:
        """For the unsuffixed group an aggregate on the root spans the whole tree."""
        if group.member_of or group.forbidden_aggs:
            aggs = node.aggs
            if not group.same_provider and node.root != node.id:
                root = self.nodes.get(node.root)
                if root is not None:
                    aggs = aggs | root.aggs
            for any_of in group.member_of:
                if not aggs & any_of:
                    return False
            if aggs & group.forbidden_aggs:
                return False
        return True

    def _traits_ok(self, traits: frozenset[int], group: Group) -> bool:
        if traits & group.forbidden:
            return False
        return all(traits & any_of for any_of in group.required)

    def _anchor_ok(self, root: int) -> bool:
        return self.allowed_roots is None or root in self.allowed_roots

    # -- one group -----------------------------------------------------------------------------
    def _smallest_class(self, group: Group) -> set[int]:
        best: set[int] | None = None
        for rc_id in group.resources:
            members = self.index.by_class.get(rc_id, set())
            if best is None or len(members) < len(best):
                best = members
        return best if best is not None else set(self.nodes)

    def _fits_all(self, node: Node, resources: dict[int, int]) -> bool:
        inv, used = node.inv, node.used
        for rc_id, amount in resources.items():
            i = inv.get(rc_id)
            if i is None or not i.accepts(amount, used.get(rc_id, 0)):
                return False
        return True

    def single_provider(self, group: Group) -> Iterator[tuple[int, Option]]:
        """(anchor root, option) for providers that satisfy the whole group alone."""
        tree = self._tree_of(group)
        if tree is False:
            return
        sharing = self.index.sharing
        resources = group.resources
        pairs = tuple(resources.items())
        for rp_id in sorted(self._smallest_class(group)):
            node = self.nodes[rp_id]
            if tree is not None and node.root != tree:
                continue
            if not self._fits_all(node, resources) or not self._traits_ok(node.traits, group) \
                    or not self._aggs_ok(node, group):
                continue
            option = Option(tuple((rp_id, rc, amount) for rc, amount in pairs), (rp_id,))
            if self._anchor_ok(node.root):
                yield node.root, option
            if rp_id in sharing and tree is None:
                for anchor in sorted(self.index.anchors(rp_id) - {node.root}):
                    if self._anchor_ok(anchor):
                        yield anchor, option

    def tree_providers(self, group: Group) -> Iterator[tuple[int, Option]]:
        """(anchor root, option) for the unsuffixed group: its classes may come from several
        providers of one tree, or from sharing providers."""
        tree = self._tree_of(group)
        if tree is False:
            return
        sharing = self.index.sharing
        per_root: dict[int, dict[int, list[int]]] = {}
        for rc_id, amount in group.resources.items():
            for rp_id in self.index.by_class.get(rc_id, ()):
                node = self.nodes[rp_id]
                if tree is not None and node.root != tree:
                    continue
                i = node.inv[rc_id]
                if not i.accepts(amount, node.used.get(rc_id, 0)):
                    continue
                if node.traits & group.forbidden or not self._aggs_ok(node, group):
                    continue
                roots = {node.root}
                if rp_id in sharing and tree is None:
                    roots |= self.index.anchors(rp_id)
                for root in roots:
                    if self._anchor_ok(root):
                        per_root.setdefault(root, {}).setdefault(rc_id, []).append(rp_id)
        classes = list(group.resources)
        for root in sorted(per_root):
            by_class = per_root[root]
            if len(by_class) != len(classes):
                continue
            seen: set[Pieces] = set()
            for choice in itertools.product(*(sorted(by_class[rc]) for rc in classes)):
                if group.required:
                    traits: frozenset[int] = frozenset()
                    for rp_id in set(choice):
                        traits = traits | self.nodes[rp_id].traits
                    if not all(traits & any_of for any_of in group.required):
                        continue
                pieces = tuple((rp_id, rc, group.resources[rc])
                               for rp_id, rc in zip(choice, classes, strict=True))
                if pieces in seen:
                    continue
                seen.add(pieces)
                yield root, Option(pieces, tuple(sorted(set(choice))))

    def options(self, group: Group) -> Iterator[tuple[int, Option]]:
        if group.same_provider or not group.resources:
            return self.single_provider(group)
        if not self.index.has_trees() and not self.index.sharing:
            return self.single_provider(group)
        return self.tree_providers(group)

    # -- all groups ----------------------------------------------------------------------------
    def flat(self, group: Group) -> Iterator[int]:
        """The common case, kept lean: one group, providers without trees or sharing. Set
        operations on the membership indexes narrow the scan before capacity is checked."""
        tree = self._tree_of(group)
        if tree is False:
            return
        index, nodes = self.index, self.nodes
        pool = self._smallest_class(group)
        if group.required or group.forbidden or group.member_of or group.forbidden_aggs:
            pool = set(pool)
            for any_of in group.required:
                pool &= set().union(*(index.trait_members.get(t, ()) for t in any_of))
            for trait_id in group.forbidden:
                pool -= index.trait_members.get(trait_id, set())
            if group.same_provider:  # an aggregate on the root spans only the unsuffixed
                for any_of in group.member_of:
                    pool &= set().union(*(index.agg_members.get(a, ()) for a in any_of))
                for agg_id in group.forbidden_aggs:
                    pool -= index.agg_members.get(agg_id, set())
        pairs = tuple(group.resources.items())
        check_aggs = not group.same_provider and bool(group.member_of or group.forbidden_aggs)
        allowed = self.allowed_roots
        for rp_id in sorted(pool):
            node = nodes[rp_id]
            fit = node.fit
            for rc_id, amount in pairs:
                f = fit.get(rc_id)
                if f is None or amount > f[0] or amount < f[1] or (
                        f[2] != 1 and amount % f[2]):
                    break
            else:
                if check_aggs and not self._aggs_ok(node, group):
                    continue
                root = node.root
                if tree is not None and root != tree:
                    continue
                if allowed is not None and root not in allowed:
                    continue
                yield rp_id

    def flat_accepts(self, node: Node, group: Group) -> bool:
        """flat()'s whole test, for one provider on its own."""
        fit = node.fit
        for rc_id, amount in group.resources.items():
            f = fit.get(rc_id)
            if f is None or amount > f[0] or amount < f[1] or (f[2] != 1 and amount % f[2]):
                return False
        if not self._traits_ok(node.traits, group) or not self._aggs_ok(node, group):
            return False
        tree = self._tree_of(group)
        if tree is False or (tree is not None and node.root != tree):
            return False
        req = self.req
        return not (req.root_required or req.root_forbidden) or self._root_ok(node.root)

    def is_flat(self) -> bool:
        groups = self.req.groups
        return len(groups) == 1 and not self.index.sharing and (
            groups[0].same_provider or not self.index.has_trees())

    def run(self) -> Iterator[Candidate]:
        groups = self.req.groups
        if len(groups) == 1:
            group = groups[0]
            for anchor, option in self.options(group):
                if self._acceptable([group], [option]):
                    yield self._candidate(anchor, [group], [option])
            return
        by_anchor: list[dict[int, list[Option]]] = []
        for group in groups:
            found: dict[int, list[Option]] = {}
            for anchor, option in self.options(group):
                found.setdefault(anchor, []).append(option)
            if not found:
                return
            by_anchor.append(found)
        anchors = set(by_anchor[0])
        for found in by_anchor[1:]:
            anchors &= set(found)
        seen: set[tuple[object, ...]] = set()
        for anchor in sorted(anchors):
            for combo in itertools.product(*(found[anchor] for found in by_anchor)):
                options = list(combo)
                if not self._acceptable(groups, options):
                    continue
                cand = self._candidate(anchor, groups, options)
                key = (tuple(sorted((rp, tuple(sorted(res.items())))
                                    for rp, res in cand.per_rp.items())),
                       tuple(sorted((k, tuple(v)) for k, v in cand.mappings.items())))
                if key in seen:
                    continue
                seen.add(key)
                yield cand

    def _acceptable(self, groups: list[Group], options: list[Option]) -> bool:
        req = self.req
        if req.group_policy == "isolate":
            granular = [o.providers[0] for g, o in zip(groups, options, strict=True)
                        if g.same_provider]
            if len(set(granular)) != len(granular):
                return False
        if req.same_subtrees:
            mapped = {g.suffix: o.providers for g, o in zip(groups, options, strict=True)}
            for suffixes in req.same_subtrees:
                members = {rp for s in suffixes for rp in mapped.get(s, ())}
                if not any(all(self.index.is_ancestor(top, rp) for rp in members)
                           for top in members):
                    return False
        if not req.nested_aware:
            roots = [self.nodes[rp].root for o in options for rp, _, _ in o.pieces]
            providers = {rp for o in options for rp, _, _ in o.pieces}
            if len(providers) != len(set(roots)):
                return False
        if len(options) > 1:
            total: dict[tuple[int, int], int] = {}
            for option in options:
                for rp_id, rc_id, amount in option.pieces:
                    total[(rp_id, rc_id)] = total.get((rp_id, rc_id), 0) + amount
            for (rp_id, rc_id), amount in total.items():
                node = self.nodes[rp_id]
                inv = node.inv[rc_id]
                if amount > inv.max_unit or node.used.get(rc_id, 0) + amount > inv.capacity:
                    return False
        return True

    @staticmethod
    def _candidate(anchor: int, groups: list[Group], options: list[Option]) -> Candidate:
        per_rp: dict[int, dict[int, int]] = {}
        mappings: dict[str, list[int]] = {}
        for group, option in zip(groups, options, strict=True):
            for rp_id, rc_id, amount in option.pieces:
                res = per_rp.setdefault(rp_id, {})
                res[rc_id] = res.get(rc_id, 0) + amount
            have = mappings.setdefault(group.suffix, [])
            have.extend(rp for rp in option.providers if rp not in have)
        return Candidate(anchor, per_rp, mappings)


@dataclass
class Found:
    """The answer: general candidates, or (the fast path) single providers that each take
    the one group's resources."""

    candidates: list[Candidate]
    flat: list[int] | None = None
    group: Group | None = None

    def __len__(self) -> int:
        return len(self.flat) if self.flat is not None else len(self.candidates)


def find(index: Index, req: Request) -> tuple[Found, list[int]]:
    """The candidates (at most req.limit) and the providers to summarise: every provider of
    every tree a candidate uses."""
    search = _Search(index, req)
    nodes, tree = index.nodes, index.tree
    roots: set[int] = set()
    if search.is_flat():
        group = req.groups[0]
        if group.in_tree is None and not index.has_trees():
            # Every provider is a root and summarises only itself.
            ids = _kept_flat(index, search, group, req)
            if req.limit is not None:
                ids = ids[:req.limit]
            return Found([], ids, group), ids
        ids = list(itertools.islice(search.flat(group), req.limit))
        found = Found([], ids, group)
        roots = {nodes[rp_id].root for rp_id in ids}
    else:
        results = list(itertools.islice(search.run(), req.limit))
        found = Found(results)
        for cand in results:
            for rp_id in cand.per_rp:
                roots.add(nodes[rp_id].root)
    summarised: list[int] = []
    for root in sorted(roots):
        members = tree.get(root, ())
        if len(members) == 1:
            summarised.extend(members)
        else:
            summarised.extend(sorted(members))
    return found, summarised


def _kept_flat(index: Index, search: _Search, group: Group, req: Request) -> list[int]:
    """The sorted providers that answer a flat request, for requests without trees. Kept per
    request (KEPT of them) and brought up to date from the index's change log: a scheduler
    asking for the same few flavours pays for what changed since it last asked, not for a scan
    of every provider. A request with a limit uses a kept answer but does not keep one (its
    scan stops early). The list is the kept one: read it, never change it."""
    key = (tuple(sorted(group.resources.items())), group.same_provider, tuple(group.required),
           group.forbidden, tuple(group.member_of), group.forbidden_aggs, req.root_required,
           req.root_forbidden)
    kept = index.flat_answers.get(key)
    if kept is not None:
        changes = index.changed_since(kept[0])
        if changes is not None and len(changes) <= len(index.nodes) // 4:
            ids, members = kept[1], kept[2]
            nodes = index.nodes
            for rp_id in set(changes):
                node = nodes.get(rp_id)
                ok = node is not None and search.flat_accepts(node, group)
                if ok and rp_id not in members:
                    bisect.insort(ids, rp_id)
                    members.add(rp_id)
                elif not ok and rp_id in members:
                    del ids[bisect.bisect_left(ids, rp_id)]
                    members.discard(rp_id)
            kept[0] = index.version
            return ids  # type: ignore[no-any-return]
        del index.flat_answers[key]
    if req.limit is not None:
        return list(itertools.islice(search.flat(group), req.limit))
    ids = list(search.flat(group))
    if len(index.flat_answers) >= KEPT:
        del index.flat_answers[next(iter(index.flat_answers))]
    index.flat_answers[key] = [index.version, ids, set(ids)]
    return ids


def filter_providers(index: Index, group: Group) -> set[int]:
    """GET /resource_providers: the providers that alone have the capacity, traits and
    aggregates asked for (in_tree: any provider of that tree)."""
    search = _Search(index, Request([group]))
    tree = search._tree_of(group)
    if tree is False:
        return set()
    out = set()
    candidates = search._smallest_class(group) if group.resources else set(index.nodes)
    for rp_id in candidates:
        node = index.nodes[rp_id]
        if tree is not None and node.root != tree:
            continue
        if search._fits_all(node, group.resources) and search._traits_ok(node.traits, group) \
                and search._aggs_ok(node, group):
            out.add(rp_id)
    return out

"""Flat candidate answers kept across requests (brought up to date from the index's change log)
always equal a fresh scan, whatever changed in between: usage, inventories, traits, aggregates,
providers created, moved into trees and back, deleted; also once the log has been cut."""

from __future__ import annotations

import bisect
import random

import pytest

from nimbus.placement import candidates
from nimbus.placement import index as index_module
from nimbus.placement.candidates import Group, Request, _Search, find
from nimbus.placement.index import Index, Inv

VCPU, MEM, DISK = 1, 2, 3
AVX, SSD, SHARED = 10, 11, 12
AGG_A, AGG_B = 20, 21


def build(count: int) -> Index:
    index = Index()
    for rc_id, name in ((VCPU, "VCPU"), (MEM, "MEMORY_MB"), (DISK, "DISK_GB")):
        index.add_class(rc_id, name)
    for trait_id, name in ((AVX, "HW_CPU_X86_AVX2"), (SSD, "STORAGE_DISK_SSD"),
                           (SHARED, "MISC_SHARES_VIA_AGGREGATE")):
        index.add_trait(trait_id, name)
    index.add_aggregate(AGG_A, "00000000-0000-0000-0000-0000000000aa")
    index.add_aggregate(AGG_B, "00000000-0000-0000-0000-0000000000bb")
    for rp_id in range(1, count + 1):
        index.put_provider(rp_id, f"rp-{rp_id}", None, rp_id, 0)
        index.set_inventories(rp_id, 1, {VCPU: Inv(8, 0, 1, 8, 1, 2.0),
                                         MEM: Inv(4096, 512, 1, 4096, 1, 1.0)})
    index.stale = False
    return index


REQUESTS = [
    Request([Group("", {VCPU: 2, MEM: 512})]),
    Request([Group("", {VCPU: 4})], limit=5),
    Request([Group("", {VCPU: 1}, required=[frozenset({AVX})], forbidden=frozenset({SSD}))]),
    Request([Group("", {VCPU: 1, DISK: 10})]),
    Request([Group("", {MEM: 1024}, member_of=[frozenset({AGG_A, AGG_B})])]),
    Request([Group("", {VCPU: 1}, forbidden_aggs=frozenset({AGG_B}))]),
    Request([Group("1", {VCPU: 3}, member_of=[frozenset({AGG_A})])]),
    Request([Group("", {VCPU: 1})], root_required=frozenset({SSD})),
    Request([Group("", {VCPU: 1})], root_forbidden=frozenset({AVX})),
]


def scan(index: Index, req: Request) -> list[int] | None:
    """What a search without kept answers finds (None when the request is not flat)."""
    search = _Search(index, req)
    if not search.is_flat():
        return None
    ids = list(search.flat(req.groups[0]))
    return ids[:req.limit] if req.limit is not None else ids


def check(index: Index) -> None:
    for req in REQUESTS:
        expected = scan(index, req)
        if expected is None:
            continue
        found, summarised = find(index, req)
        assert found.flat == expected, req
        if not index.has_trees():
            assert summarised == expected


def change(index: Index, rng: random.Random, step: int) -> None:
    ids = sorted(index.nodes)
    rp_id = rng.choice(ids)
    node = index.nodes[rp_id]
    gen = step + 10
    action = rng.choice(["use", "use", "use", "free", "inventory", "traits", "aggregates",
                         "create", "delete", "tree"])
    if action == "use":
        index.set_usage(rp_id, gen, {VCPU: rng.randint(0, 16), MEM: rng.randint(0, 3584)})
    elif action == "free":
        index.set_usage(rp_id, gen, {})
    elif action == "inventory":
        inv = {VCPU: Inv(rng.randint(1, 16), 0, 1, rng.randint(1, 8), rng.choice([1, 2]), 1.0)}
        if rng.random() < 0.5:
            inv[DISK] = Inv(100, 0, 1, 100, 1, 1.0)
        if rng.random() < 0.8:
            inv[MEM] = Inv(4096, 0, 1, 4096, 1, 1.0)
        index.set_inventories(rp_id, gen, inv)
    elif action == "traits":
        index.set_traits(rp_id, gen, rng.sample([AVX, SSD], rng.randint(0, 2)))
    elif action == "aggregates":
        index.set_aggregates(rp_id, gen, rng.sample([AGG_A, AGG_B], rng.randint(0, 2)))
    elif action == "create":
        new = max(ids) + 1
        index.put_provider(new, f"rp-{new}", None, new, 0)
        index.set_inventories(new, 1, {VCPU: Inv(4, 0, 1, 4, 1, 1.0)})
    elif action == "delete" and len(ids) > 5:
        index.remove_provider(rp_id)
    elif action == "tree" and node.parent is None and \
            not any(n.parent == rp_id for n in index.nodes.values()):
        # Into another's tree (answers are then searched afresh), and back out as a root.
        parent = rng.choice([i for i in ids if i != rp_id and index.nodes[i].parent is None])
        index.put_provider(rp_id, node.uuid, parent, parent, gen)
        check(index)
        index.put_provider(rp_id, node.uuid, None, rp_id, gen)


def test_kept_answers_equal_a_fresh_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    patched: list[int] = []
    original = bisect.insort

    def insort(ids: list[int], rp_id: int) -> None:
        patched.append(rp_id)
        original(ids, rp_id)

    monkeypatch.setattr(candidates.bisect, "insort", insort)
    rng = random.Random(11)
    index = build(60)
    check(index)
    for step in range(600):
        for _ in range(rng.choice([1, 1, 2, 5])):
            change(index, rng, step)
        check(index)
    assert index.flat_answers and len(patched) > 100, "answers were kept and brought up to date"


def test_kept_answers_survive_a_cut_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "LOG_LIMIT", 16)
    rng = random.Random(5)
    index = build(40)
    check(index)
    for step in range(200):
        for _ in range(rng.choice([1, 3, 20])):
            change(index, rng, step)
        check(index)
    assert index.log_base > 0

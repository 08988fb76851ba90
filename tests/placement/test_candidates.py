"""GET /allocation_candidates: filters, nested trees, sharing providers, granular groups,
limits and the shapes of each microversion. Each test asks for a resource class of its own,
so providers made by other tests never match."""

from __future__ import annotations

from typing import Any

from tests.placement.conftest import Placement, error, new_uuid


def custom(placement: Placement, name: str, tag: str = "") -> str:
    rc = f"CUSTOM_{name.upper().replace('-', '_')}{tag}"
    assert placement.put(f"/resource_classes/{rc}").status_code in (201, 204)
    return rc


def providers_of(body: dict[str, Any]) -> list[set[str]]:
    return [set(areq["allocations"]) for areq in body["allocation_requests"]]


def test_filters_traits_aggregates_limit(placement: Placement, name: str) -> None:
    rc = custom(placement, name)
    agg = new_uuid()
    a = placement.provider(f"{name}-a", **{rc: 8}, VCPU=4)
    b = placement.provider(f"{name}-b", **{rc: 8}, VCPU=4)
    c = placement.provider(f"{name}-c", **{rc: 2}, VCPU=4)
    placement.traits(a, "HW_CPU_X86_AVX2")
    placement.traits(b, "HW_CPU_X86_AVX2", "STORAGE_DISK_SSD")
    placement.aggregates(b, agg)

    body = placement.candidates(f"resources={rc}:4,VCPU:1")
    assert providers_of(body) == [{a}, {b}]
    assert body["allocation_requests"][0] == {
        "allocations": {a: {"resources": {rc: 4, "VCPU": 1}}}, "mappings": {"": [a]}}
    summary = body["provider_summaries"][b]
    assert summary == {"resources": {rc: {"capacity": 8, "used": 0},
                                     "VCPU": {"capacity": 4, "used": 0}},
                       "traits": ["HW_CPU_X86_AVX2", "STORAGE_DISK_SSD"],
                       "parent_provider_uuid": None, "root_provider_uuid": b}
    assert providers_of(placement.candidates(f"resources={rc}:1&required=STORAGE_DISK_SSD")) \
        == [{b}]
    assert providers_of(placement.candidates(
        f"resources={rc}:1&required=HW_CPU_X86_AVX2,!STORAGE_DISK_SSD")) == [{a}]
    assert providers_of(placement.candidates(
        f"resources={rc}:1&required=in:STORAGE_DISK_SSD,HW_CPU_X86_SSE42")) == [{b}]
    assert providers_of(placement.candidates(
        f"resources={rc}:1&required=HW_CPU_X86_AVX2&required=!STORAGE_DISK_SSD")) == [{a}]
    assert providers_of(placement.candidates(f"resources={rc}:1&member_of={agg}")) == [{b}]
    assert providers_of(placement.candidates(f"resources={rc}:1&member_of=!{agg}")) == \
        [{a}, {c}]
    assert providers_of(placement.candidates(
        f"resources={rc}:1&member_of=in:{agg},{new_uuid()}")) == [{b}]
    assert providers_of(placement.candidates(f"resources={rc}:1&member_of={new_uuid()}")) \
        == []
    assert len(placement.candidates(f"resources={rc}:1&limit=2")["allocation_requests"]) == 2
    assert providers_of(placement.candidates(f"resources={rc}:1&in_tree={c}")) == [{c}]
    # Capacity counts what is used.
    vm = new_uuid()
    assert placement.claim(vm, {a: {rc: 6}}).status_code == 204
    assert providers_of(placement.candidates(f"resources={rc}:4")) == [{b}]
    used = placement.candidates(f"resources={rc}:1&in_tree={a}")["provider_summaries"][a]
    assert used["resources"][rc] == {"capacity": 8, "used": 6}
    assert placement.delete(f"/allocations/{vm}").status_code == 204
    assert providers_of(placement.candidates(f"resources={rc}:4")) == [{a}, {b}]

    # Shapes of older versions.
    old = placement.candidates(f"resources={rc}:4", version="1.10")
    assert old["allocation_requests"][0] == {"allocations": [
        {"resource_provider": {"uuid": a}, "resources": {rc: 4}}]}
    assert old["provider_summaries"][a] == {"resources": {rc: {"capacity": 8, "used": 0}}}
    assert "mappings" not in placement.candidates(f"resources={rc}:4", "1.33")[
        "allocation_requests"][0]
    assert "traits" in placement.candidates(f"resources={rc}:4", "1.17")["provider_summaries"][a]


def test_bad_requests(placement: Placement, name: str) -> None:
    rc = custom(placement, name)

    def bad(query: str, version: str = "latest") -> str:
        resp = placement.at(version).get(f"/allocation_candidates?{query}")
        assert resp.status_code == 400, (query, resp.text)
        return str(error(resp)["detail"])

    assert placement.at("1.9").get(f"/allocation_candidates?resources={rc}:1"
                                   ).status_code == 404
    assert "Invalid resource class" in bad("resources=NOPE:1")
    assert "No such trait(s): CUSTOM_NOPE" in bad(f"resources={rc}:1&required=CUSTOM_NOPE")
    assert "amount >= 1" in bad(f"resources={rc}:0")
    assert "Badly formed" in bad(f"resources={rc}")
    assert "group_policy" in bad(f"resources1={rc}:1&resources2={rc}:1")
    assert "Conflicting required and forbidden" in bad(
        f"resources={rc}:1&required=HW_CPU_X86_AVX2,!HW_CPU_X86_AVX2")
    assert "Additional properties" in bad(f"resources={rc}:1&color=red")
    assert "Additional properties" in bad(f"resources={rc}:1&limit=1", "1.15")
    assert "1.39" in bad(f"resources={rc}:1&required=in:HW_CPU_X86_AVX2", "1.38")
    assert "Forbidden member_of" in bad(f"resources={rc}:1&member_of=!{new_uuid()}", "1.31")
    assert "in_tree" in bad(f"resources={rc}:1&in_tree=nope")
    assert "at least one resources" in bad("required=HW_CPU_X86_AVX2")
    assert "same_subtree" in bad(f"resources={rc}:1&required_X=HW_CPU_X86_AVX2")
    assert "does not match" in bad(f"resources={rc}:1&limit=0")
    assert "isolate" in bad(f"resources={rc}:1&group_policy=bogus")


def test_nested_trees_and_granular_groups(placement: Placement, name: str) -> None:
    vf = custom(placement, name, "_VF")
    host = placement.provider(f"{name}-host", VCPU=8, MEMORY_MB=4096)
    pf1 = placement.provider(f"{name}-pf1", parent=host, **{vf: 4})
    pf2 = placement.provider(f"{name}-pf2", parent=host, **{vf: 2})
    placement.traits(pf2, "HW_NIC_OFFLOAD_GENEVE")

    # The unsuffixed group may take its classes from several providers of one tree.
    body = placement.candidates(f"resources=VCPU:1,{vf}:1&in_tree={host}")
    assert providers_of(body) == [{host, pf1}, {host, pf2}]
    assert set(body["provider_summaries"]) == {host, pf1, pf2}
    assert body["provider_summaries"][pf1]["parent_provider_uuid"] == host
    assert body["provider_summaries"][pf1]["root_provider_uuid"] == host
    # Required traits of the unsuffixed group: anywhere among the providers used.
    assert providers_of(placement.candidates(
        f"resources=VCPU:1,{vf}:1&required=HW_NIC_OFFLOAD_GENEVE")) == [{host, pf2}]
    # Before 1.29 a candidate may not span two providers of one tree.
    assert providers_of(placement.candidates(f"resources=VCPU:1,{vf}:1", "1.28")) == []

    # Granular groups: each on one provider; isolate keeps them apart.
    iso = placement.candidates(
        f"resources=VCPU:1&resources1={vf}:2&resources2={vf}:1&group_policy=isolate")
    assert [areq["mappings"] for areq in iso["allocation_requests"]] == [
        {"": [host], "1": [pf1], "2": [pf2]}, {"": [host], "1": [pf2], "2": [pf1]}]
    none = placement.candidates(
        f"resources1={vf}:2&resources2={vf}:1&group_policy=none&in_tree1={host}")
    amounts = [{rp: r["resources"][vf] for rp, r in areq["allocations"].items()}
               for areq in none["allocation_requests"]]
    assert {pf1: 3} in amounts and {pf1: 2, pf2: 1} in amounts and {pf1: 1, pf2: 2} in amounts
    assert {pf2: 3} not in amounts  # pf2 has only 2
    named = placement.candidates(f"resources_NET={vf}:1&required_NET=HW_NIC_OFFLOAD_GENEVE")
    assert [a["mappings"] for a in named["allocation_requests"]] == [{"_NET": [pf2]}]
    # same_subtree: the providers of the named groups share an ancestor among them.
    subtree = placement.candidates(
        f"resources_A={vf}:1&resources_B=VCPU:1&same_subtree=_A,_B&group_policy=none")
    assert [a["mappings"] for a in subtree["allocation_requests"]] == [
        {"_A": [pf1], "_B": [host]}, {"_A": [pf2], "_B": [host]}]
    placement.traits(host, "CUSTOM_GOLD_ROOT")
    assert len(placement.candidates(
        f"resources={vf}:1&root_required=CUSTOM_GOLD_ROOT")["allocation_requests"]) == 2
    assert placement.candidates(
        f"resources={vf}:1&root_required=!CUSTOM_GOLD_ROOT")["allocation_requests"] == []


def test_sharing_provider(placement: Placement, name: str) -> None:
    disk = custom(placement, name, "_DISK")
    cpu = custom(placement, name, "_CPU")
    agg = new_uuid()
    host = placement.provider(f"{name}-host", **{cpu: 4})
    shared = placement.provider(f"{name}-nfs", **{disk: 100})
    placement.traits(shared, "MISC_SHARES_VIA_AGGREGATE")
    placement.aggregates(host, agg)
    placement.aggregates(shared, agg)
    body = placement.candidates(f"resources={cpu}:1,{disk}:10")
    assert providers_of(body) == [{host, shared}]
    assert set(body["provider_summaries"]) == {host, shared}
    vm = new_uuid()
    areq = body["allocation_requests"][0]
    claim = placement.put(f"/allocations/{vm}", json={
        **areq, "project_id": "p", "user_id": "u", "consumer_generation": None,
        "consumer_type": "INSTANCE"})
    assert claim.status_code == 204, claim.text
    assert placement.get(f"/resource_providers/{shared}/usages").json()["usages"] == {disk: 10}
    assert placement.delete(f"/allocations/{vm}").status_code == 204

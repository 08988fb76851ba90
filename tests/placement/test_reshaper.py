"""POST /reshaper: inventory and the allocations against it move to a child provider in one
step, or not at all."""

from __future__ import annotations

from tests.placement.conftest import Placement, error, new_uuid


def test_reshape_moves_inventory_and_allocations(placement: Placement, name: str) -> None:
    host = placement.provider(f"{name}-host")
    placement.inventory(host, VCPU={"total": 8}, VGPU={"total": 4})
    vm = new_uuid()
    assert placement.claim(vm, {host: {"VCPU": 2, "VGPU": 1}}).status_code == 204
    gpu = placement.provider(f"{name}-gpu", parent=host)
    host_gen, gpu_gen = placement.generation(host), placement.generation(gpu)
    body = {
        "inventories": {
            host: {"resource_provider_generation": host_gen,
                   "inventories": {"VCPU": {"total": 8}}},
            gpu: {"resource_provider_generation": gpu_gen,
                  "inventories": {"VGPU": {"total": 4}}}},
        "allocations": {vm: {
            "allocations": {host: {"resources": {"VCPU": 2}}, gpu: {"resources": {"VGPU": 1}}},
            "project_id": "proj", "user_id": "user", "consumer_generation": 1,
            "consumer_type": "INSTANCE"}}}
    assert placement.at("1.29").post("/reshaper", json=body).status_code == 404
    stale = placement.post("/reshaper", json={**body, "inventories": {
        **body["inventories"], host: {**body["inventories"][host],
                                      "resource_provider_generation": host_gen - 1}}})
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    assert placement.get(f"/allocations/{vm}").json()["allocations"][host]["resources"] == {
        "VCPU": 2, "VGPU": 1}

    done = placement.post("/reshaper", json=body)
    assert done.status_code == 204, done.text
    allocs = placement.get(f"/allocations/{vm}").json()
    assert allocs["allocations"][host]["resources"] == {"VCPU": 2}
    assert allocs["allocations"][gpu]["resources"] == {"VGPU": 1}
    assert allocs["consumer_generation"] == 2
    assert placement.get(f"/resource_providers/{host}/usages").json()["usages"] == {"VCPU": 2}
    assert placement.get(f"/resource_providers/{gpu}/inventories").json()["inventories"][
        "VGPU"]["total"] == 4
    found = placement.candidates(f"resources=VGPU:3&in_tree={host}")
    assert [set(a["allocations"]) for a in found["allocation_requests"]] == [{gpu}]
    assert found["provider_summaries"][gpu]["resources"]["VGPU"]["used"] == 1
    assert placement.delete(f"/allocations/{vm}").status_code == 204

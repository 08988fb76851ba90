"""Inventories, resource classes and traits over HTTP."""

from __future__ import annotations

from tests.placement.conftest import Placement, error, new_uuid


def test_inventory_lifecycle(placement: Placement, name: str) -> None:
    rp = placement.provider(name)
    base = f"/resource_providers/{rp}/inventories"
    put = placement.put(base, json={"resource_provider_generation": 0, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 4.0, "max_unit": 8},
        "MEMORY_MB": {"total": 4096, "reserved": 512}}})
    assert put.status_code == 200, put.text
    assert put.json()["resource_provider_generation"] == 1
    assert put.json()["inventories"]["MEMORY_MB"] == {
        "total": 4096, "reserved": 512, "min_unit": 1, "max_unit": 2147483647,
        "step_size": 1, "allocation_ratio": 1.0}
    stale = placement.put(base, json={"resource_provider_generation": 0,
                                      "inventories": {"VCPU": {"total": 1}}})
    assert stale.status_code == 409
    assert error(stale)["code"] == "placement.concurrent_update"

    created = placement.post(base, json={"resource_class": "DISK_GB", "total": 100,
                                         "step_size": 10})
    assert created.status_code == 201
    assert created.headers["location"].endswith(f"{base}/DISK_GB")
    assert created.json()["resource_provider_generation"] == 2
    again = placement.post(base, json={"resource_class": "DISK_GB", "total": 100})
    assert again.status_code == 409
    one = placement.get(f"{base}/DISK_GB").json()
    assert one["step_size"] == 10 and one["resource_provider_generation"] == 2

    updated = placement.put(f"{base}/DISK_GB", json={"resource_provider_generation": 2,
                                                     "total": 200})
    assert updated.status_code == 200 and updated.json()["total"] == 200
    assert updated.json()["step_size"] == 1  # a PUT replaces the record
    missing = placement.put(f"{base}/PCI_DEVICE", json={"resource_provider_generation": 3,
                                                        "total": 2})
    assert missing.status_code == 400
    assert placement.get(f"{base}/PCI_DEVICE").status_code == 404

    unknown = placement.put(base, json={"resource_provider_generation": 3,
                                        "inventories": {"CUSTOM_NOT_THERE": {"total": 1}}})
    assert unknown.status_code == 400 and "Unknown resource class" in error(unknown)["detail"]
    too_reserved = placement.put(f"{base}/DISK_GB", json={
        "resource_provider_generation": 3, "total": 10, "reserved": 11})
    assert too_reserved.status_code == 400
    # reserved == total: refused before 1.26, accepted from it.
    equal = {"resource_provider_generation": 3, "total": 10, "reserved": 10}
    assert placement.at("1.25").put(f"{base}/DISK_GB", json=equal).status_code == 400
    assert placement.at("1.26").put(f"{base}/DISK_GB", json=equal).status_code == 200
    assert placement.put(f"{base}/DISK_GB", json={
        "resource_provider_generation": 4, "total": 0}).status_code == 400

    # In use: neither the class nor the whole set can go.
    consumer = new_uuid()
    assert placement.claim(consumer, {rp: {"VCPU": 2}}).status_code == 204
    gen = placement.generation(rp)
    busy = placement.put(base, json={"resource_provider_generation": gen,
                                     "inventories": {"MEMORY_MB": {"total": 1024}}})
    assert busy.status_code == 409 and error(busy)["code"] == "placement.inventory.inuse"
    assert placement.delete(f"{base}/VCPU").status_code == 409
    assert placement.delete(base).status_code == 409
    assert placement.delete(f"/allocations/{consumer}").status_code == 204

    assert placement.delete(f"{base}/DISK_GB").status_code == 204
    assert placement.delete(f"{base}/DISK_GB").status_code == 404
    assert placement.at("1.4").delete(base).status_code == 405
    assert placement.delete(base).status_code == 204
    assert placement.get(base).json()["inventories"] == {}


def test_resource_classes(placement: Placement, name: str) -> None:
    rc = f"CUSTOM_{name.upper().replace('-', '_')}"
    listed = placement.get("/resource_classes").json()["resource_classes"]
    names = {r["name"] for r in listed}
    assert {"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_CORE",
            "IPV4_ADDRESS", "VGPU", "PCPU"} <= names
    assert placement.at("1.1").get("/resource_classes").status_code == 404
    made = placement.at("1.2").post("/resource_classes", json={"name": rc})
    assert made.status_code == 201
    assert placement.post("/resource_classes", json={"name": rc}).status_code == 409
    assert placement.post("/resource_classes", json={"name": "NOT_CUSTOM"}).status_code == 400
    assert placement.put(f"/resource_classes/{rc}").status_code == 204
    assert placement.put(f"/resource_classes/{rc}_B").status_code == 201
    assert placement.put("/resource_classes/lower").status_code == 400
    assert placement.get(f"/resource_classes/{rc}").json()["name"] == rc
    # Before 1.7 PUT renames.
    renamed = placement.at("1.6").put(f"/resource_classes/{rc}_B", json={"name": f"{rc}_C"})
    assert renamed.status_code == 200 and renamed.json()["name"] == f"{rc}_C"
    assert placement.delete("/resource_classes/VCPU").status_code == 400
    rp = placement.provider(name, **{rc: 3})
    in_use = placement.delete(f"/resource_classes/{rc}")
    assert in_use.status_code == 409
    assert placement.delete(f"/resource_providers/{rp}").status_code == 204
    assert placement.delete(f"/resource_classes/{rc}").status_code == 204
    assert placement.get(f"/resource_classes/{rc}").status_code == 404


def test_traits(placement: Placement, name: str) -> None:
    trait = f"CUSTOM_{name.upper().replace('-', '_')}"
    assert placement.at("1.5").get("/traits").status_code == 404
    every = placement.get("/traits").json()["traits"]
    assert {"COMPUTE_STATUS_DISABLED", "HW_CPU_X86_AVX2", "STORAGE_DISK_SSD",
            "MISC_SHARES_VIA_AGGREGATE", "COMPUTE_VOLUME_MULTI_ATTACH"} <= set(every)
    assert placement.put(f"/traits/{trait}").status_code == 201
    assert placement.put(f"/traits/{trait}").status_code == 204
    assert placement.put("/traits/NOT_CUSTOM").status_code == 400
    assert placement.get(f"/traits/{trait}").status_code == 204
    assert placement.get(f"/traits/{trait}_NO").status_code == 404
    assert placement.get(f"/traits?name=in:{trait},HW_CPU_X86_AVX2").json()["traits"] == [
        trait, "HW_CPU_X86_AVX2"]
    assert placement.get(f"/traits?name=startswith:{trait}").json()["traits"] == [trait]
    assert placement.get("/traits?name=HW").status_code == 400

    rp = placement.provider(name)
    base = f"/resource_providers/{rp}/traits"
    stale = placement.put(base, json={"traits": [trait], "resource_provider_generation": 5})
    assert stale.status_code == 409 and error(stale)["code"] == "placement.concurrent_update"
    unknown = placement.put(base, json={"traits": ["CUSTOM_NEVER_MADE"],
                                        "resource_provider_generation": 0})
    assert unknown.status_code == 400 and "CUSTOM_NEVER_MADE" in error(unknown)["detail"]
    done = placement.put(base, json={"traits": [trait, "HW_CPU_X86_AVX2"],
                                     "resource_provider_generation": 0})
    assert done.status_code == 200
    assert done.json() == {"traits": sorted([trait, "HW_CPU_X86_AVX2"]),
                           "resource_provider_generation": 1}
    assert placement.get(base).json()["traits"] == sorted([trait, "HW_CPU_X86_AVX2"])
    assert trait in placement.get("/traits?associated=true").json()["traits"]
    assert trait not in placement.get("/traits?associated=false").json()["traits"]
    assert placement.delete(f"/traits/{trait}").status_code == 409
    assert placement.delete("/traits/HW_CPU_X86_AVX2").status_code == 400
    assert placement.delete(base).status_code == 204
    assert placement.get(base).json() == {"traits": [], "resource_provider_generation": 2}
    assert placement.delete(f"/traits/{trait}").status_code == 204


def test_aggregates(placement: Placement, name: str) -> None:
    rp = placement.provider(name)
    base = f"/resource_providers/{rp}/aggregates"
    a, b = sorted([new_uuid(), new_uuid()])
    old = placement.at("1.1").put(base, json=[a])
    assert old.status_code == 200 and old.json() == {"aggregates": [a]}
    assert placement.at("1.0").get(base).status_code == 404
    shown = placement.get(base).json()
    assert shown == {"aggregates": [a], "resource_provider_generation": 1}
    stale = placement.put(base, json={"aggregates": [a, b], "resource_provider_generation": 0})
    assert stale.status_code == 409
    assert placement.put(base, json={"aggregates": [a, a],
                                     "resource_provider_generation": 1}).status_code == 400
    assert placement.put(base, json={"aggregates": ["nope"],
                                     "resource_provider_generation": 1}).status_code == 400
    done = placement.put(base, json={"aggregates": [b, a], "resource_provider_generation": 1})
    assert done.json() == {"aggregates": [a, b], "resource_provider_generation": 2}

"""The unmodified `openstack` CLI with osc-placement (each call costs 1.5-3 s, so they are few
and each does a lot)."""

from __future__ import annotations

from tests.placement.conftest import new_uuid
from tests.support.cloud import RunningCloud


def test_cli_placement_workflow(pcloud: RunningCloud, name: str) -> None:
    rc = f"CUSTOM_{name.upper().replace('-', '_')}"
    trait = f"{rc}_FAST"
    host = pcloud.cli("resource", "provider", "create", f"{name}-host", "-f", "json")
    assert host["name"] == f"{name}-host" and host["generation"] == 0
    child = pcloud.cli("resource", "provider", "create", f"{name}-gpu", "--parent-provider",
                       host["uuid"], "-f", "json")
    assert child["root_provider_uuid"] == host["uuid"]
    pcloud.cli("resource", "class", "create", rc)
    pcloud.cli("trait", "create", trait)
    inventory = pcloud.cli("resource", "provider", "inventory", "set", host["uuid"],
                           "--resource", "VCPU=8", "--resource", "VCPU:allocation_ratio=2.0",
                           "--resource", "MEMORY_MB=4096", "--resource", f"{rc}=2",
                           "-f", "json")
    by_class = {row["resource_class"]: row for row in inventory}
    assert by_class["VCPU"]["total"] == 8 and by_class["VCPU"]["allocation_ratio"] == 2.0
    traits = pcloud.cli("resource", "provider", "trait", "set", host["uuid"], "--trait", trait,
                        "--trait", "HW_CPU_X86_AVX2", "-f", "json")
    assert {t["name"] for t in traits} == {trait, "HW_CPU_X86_AVX2"}

    candidates = pcloud.cli("allocation", "candidate", "list", "--resource", "VCPU=2",
                            "--resource", f"{rc}=1", "--required", trait, "-f", "json")
    assert len(candidates) == 1
    assert candidates[0]["resource provider"] == host["uuid"]

    consumer = new_uuid()
    allocated = pcloud.cli("--os-placement-api-version", "1.38", "resource", "provider",
                           "allocation", "set", consumer, "--allocation",
                           f"rp={host['uuid']},VCPU=2,MEMORY_MB=512", "--project-id", "p1",
                           "--user-id", "u1", "--consumer-type", "INSTANCE", "-f", "json")
    assert allocated[0]["resources"] == {"VCPU": 2, "MEMORY_MB": 512}
    usage = pcloud.cli("resource", "provider", "usage", "show", host["uuid"], "-f", "json")
    assert {u["resource_class"]: u["usage"] for u in usage} == {
        "VCPU": 2, "MEMORY_MB": 512, rc: 0}
    shown = pcloud.cli("resource", "provider", "show", host["uuid"], "--allocations",
                       "-f", "json")
    assert shown["allocations"][consumer]["resources"] == {"VCPU": 2, "MEMORY_MB": 512}
    listed = pcloud.cli("resource", "provider", "list", "--in-tree", host["uuid"],
                        "--resource", "VCPU=1", "-f", "json")
    assert [p["uuid"] for p in listed] == [host["uuid"]]

    pcloud.cli("resource", "provider", "allocation", "delete", consumer)
    pcloud.cli("resource", "provider", "delete", child["uuid"])
    busy = pcloud.cli("resource", "class", "delete", rc, check=False)
    assert busy.returncode != 0 and "in use" in busy.stderr

"""Allocations and usages over HTTP: consumer generations, capacity, constraints, several
consumers at once, the formats of older microversions."""

from __future__ import annotations

from tests.placement.conftest import Placement, error, new_uuid


def test_claim_lifecycle(placement: Placement, name: str) -> None:
    rp = placement.provider(name)
    placement.inventory(rp, VCPU={"total": 4, "allocation_ratio": 2.0},
                        MEMORY_MB={"total": 2048, "reserved": 512},
                        DISK_GB={"total": 100, "step_size": 10, "max_unit": 50})
    vm = new_uuid()
    assert placement.claim(vm, {rp: {"VCPU": 6, "MEMORY_MB": 1024}}).status_code == 204
    shown = placement.get(f"/allocations/{vm}").json()
    assert shown == {"allocations": {rp: {"generation": 2, "resources": {
        "VCPU": 6, "MEMORY_MB": 1024}}}, "project_id": "proj", "user_id": "user",
        "consumer_generation": 1, "consumer_type": "INSTANCE"}
    assert placement.at("1.37").get(f"/allocations/{vm}").json().get("consumer_type") is None
    assert "consumer_generation" not in placement.at("1.27").get(f"/allocations/{vm}").json()

    # Generations: null means "new consumer"; a stale one is refused.
    again = placement.claim(vm, {rp: {"VCPU": 1}}, generation=None)
    assert again.status_code == 409 and error(again)["code"] == "placement.concurrent_update"
    assert "expected 1 but got None" in error(again)["detail"]
    assert placement.claim(vm, {rp: {"VCPU": 1}}, generation=7).status_code == 409
    assert placement.claim(new_uuid(), {rp: {"VCPU": 1}}, generation=3).status_code == 409

    # Capacity: (4 - 0) * 2.0 = 8 VCPU, (2048 - 512) MEMORY_MB.
    over = placement.claim(new_uuid(), {rp: {"VCPU": 3}})
    assert over.status_code == 409 and "exceed the capacity" in error(over)["detail"]
    assert placement.claim(new_uuid(), {rp: {"MEMORY_MB": 513}}).status_code == 409
    step = placement.claim(new_uuid(), {rp: {"DISK_GB": 15}})
    assert step.status_code == 409 and "violate inventory constraints" in error(step)["detail"]
    assert placement.claim(new_uuid(), {rp: {"DISK_GB": 60}}).status_code == 409
    no_inv = placement.claim(new_uuid(), {rp: {"PCI_DEVICE": 1}})
    assert no_inv.status_code == 409 and "invalid" in error(no_inv)["detail"]
    ghost = placement.claim(new_uuid(), {new_uuid(): {"VCPU": 1}})
    assert ghost.status_code == 400 and "does not exist" in error(ghost)["detail"]
    assert placement.claim("not-a-uuid", {rp: {"VCPU": 1}}).status_code == 400
    assert placement.claim(new_uuid(), {rp: {"VCPU": 0}}).status_code == 400
    missing_type = placement.put(f"/allocations/{new_uuid()}", json={
        "allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u",
        "consumer_generation": None})
    assert missing_type.status_code == 400
    assert "'consumer_type' is a required property" in error(missing_type)["detail"]

    # Resizing in place: the consumer's own old usage does not count against it.
    assert placement.claim(vm, {rp: {"VCPU": 8, "DISK_GB": 50}}, generation=1).status_code \
        == 204
    usage = placement.get(f"/resource_providers/{rp}/usages").json()
    assert usage["usages"] == {"VCPU": 8, "MEMORY_MB": 0, "DISK_GB": 50}
    by_rp = placement.get(f"/resource_providers/{rp}/allocations").json()
    assert by_rp["allocations"] == {vm: {"resources": {"VCPU": 8, "DISK_GB": 50},
                                         "consumer_generation": 2}}
    # An empty allocation with the right generation is the safe delete; the consumer goes.
    emptied = placement.put(f"/allocations/{vm}", json={
        "allocations": {}, "project_id": "proj", "user_id": "user",
        "consumer_generation": 2, "consumer_type": "INSTANCE"})
    assert emptied.status_code == 204
    assert placement.get(f"/allocations/{vm}").json() == {"allocations": {}}
    assert placement.claim(vm, {rp: {"VCPU": 1}}, generation=None).status_code == 204
    assert placement.delete(f"/allocations/{vm}").status_code == 204
    assert placement.delete(f"/allocations/{vm}").status_code == 404
    gone = placement.delete(f"/resource_providers/{rp}")
    assert gone.status_code == 204


def test_provider_with_allocations_cannot_go(placement: Placement, name: str) -> None:
    rp = placement.provider(name, VCPU=2)
    vm = new_uuid()
    assert placement.claim(vm, {rp: {"VCPU": 1}}).status_code == 204
    busy = placement.delete(f"/resource_providers/{rp}")
    assert busy.status_code == 409
    assert error(busy)["code"] == "placement.resource_provider.inuse"
    placement.delete(f"/allocations/{vm}")


def test_old_formats_and_post_many(placement: Placement, name: str) -> None:
    rp = placement.provider(name, VCPU=8, MEMORY_MB=1024)
    one = new_uuid()
    old = placement.at("1.0").put(f"/allocations/{one}", json={"allocations": [
        {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]})
    assert old.status_code == 204
    assert placement.at("1.0").get(f"/allocations/{one}").json() == {
        "allocations": {rp: {"generation": 2, "resources": {"VCPU": 1}}}}
    needs_owner = placement.at("1.8").put(f"/allocations/{one}", json={"allocations": [
        {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]})
    assert needs_owner.status_code == 400
    dict_form = placement.at("1.12").put(f"/allocations/{one}", json={
        "allocations": {rp: {"resources": {"VCPU": 2}}}, "project_id": "p1",
        "user_id": "u1"})
    assert dict_form.status_code == 204

    two, three = new_uuid(), new_uuid()
    gen = placement.get(f"/allocations/{one}").json()["consumer_generation"]
    many = placement.post("/allocations", json={
        one: {"allocations": {}, "project_id": "p1", "user_id": "u1",
              "consumer_generation": gen, "consumer_type": "INSTANCE"},
        two: {"allocations": {rp: {"resources": {"VCPU": 4}}}, "project_id": "p1",
              "user_id": "u1", "consumer_generation": None, "consumer_type": "MIGRATION"},
        three: {"allocations": {rp: {"resources": {"VCPU": 4, "MEMORY_MB": 512}}},
                "project_id": "p1", "user_id": "u2", "consumer_generation": None,
                "consumer_type": "INSTANCE"}})
    assert many.status_code == 204, many.text
    assert placement.get(f"/allocations/{one}").json() == {"allocations": {}}
    # All or nothing: one consumer over capacity fails the whole request.
    four = new_uuid()
    failed = placement.post("/allocations", json={
        four: {"allocations": {rp: {"resources": {"MEMORY_MB": 256}}}, "project_id": "p1",
               "user_id": "u1", "consumer_generation": None, "consumer_type": "INSTANCE"},
        two: {"allocations": {rp: {"resources": {"VCPU": 5}}}, "project_id": "p1",
              "user_id": "u1", "consumer_generation": 1, "consumer_type": "MIGRATION"}})
    assert failed.status_code == 409
    assert placement.get(f"/allocations/{four}").json() == {"allocations": {}}
    assert placement.at("1.12").post("/allocations", json={}).status_code == 405

    usages = placement.get("/usages?project_id=p1").json()["usages"]
    assert usages == {"MIGRATION": {"VCPU": 4, "consumer_count": 1},
                      "INSTANCE": {"VCPU": 4, "MEMORY_MB": 512, "consumer_count": 1}}
    assert placement.get("/usages?project_id=p1&user_id=u2&consumer_type=INSTANCE").json()[
        "usages"] == {"INSTANCE": {"VCPU": 4, "MEMORY_MB": 512, "consumer_count": 1}}
    assert placement.get("/usages?project_id=p1&consumer_type=all").json()["usages"] == {
        "all": {"VCPU": 8, "MEMORY_MB": 512, "consumer_count": 2}}
    assert placement.at("1.37").get("/usages?project_id=p1").json()["usages"] == {
        "VCPU": 8, "MEMORY_MB": 512}
    assert placement.get("/usages").status_code == 400
    assert placement.at("1.37").get("/usages?project_id=p1&consumer_type=X").status_code \
        == 400
    for consumer in (two, three):
        assert placement.delete(f"/allocations/{consumer}").status_code == 204

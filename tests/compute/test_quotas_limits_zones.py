"""Quota sets and classes, limits, availability zones."""

from __future__ import annotations

from tests.compute.conftest import Api, Tenant, fault, make_tenant
from tests.support.cloud import RunningCloud

UPSTREAM_DEFAULTS = {"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128,
                     "key_pairs": 100, "server_groups": 10, "server_group_members": 10}


def test_defaults_are_upstreams(api: Api, alice: Tenant) -> None:
    quota = alice.api.get(f"/os-quota-sets/{alice.api.project_id}").json()["quota_set"]
    assert quota["id"] == alice.api.project_id
    for key, value in UPSTREAM_DEFAULTS.items():
        assert quota[key] == value, key
    assert quota["injected_files"] == 5 and quota["security_groups"] == 10
    newer = alice.api.get(f"/os-quota-sets/{alice.api.project_id}", mv="2.57").json()
    assert "injected_files" not in newer["quota_set"]
    assert "security_groups" not in newer["quota_set"]
    defaults = alice.api.get(f"/os-quota-sets/{alice.api.project_id}/defaults").json()
    assert defaults["quota_set"]["instances"] == 10
    assert api.get("/os-quota-sets/not-a-project").status_code == 400


def test_admin_updates_and_resets(api: Api, ccloud: RunningCloud) -> None:
    tenant = make_tenant(ccloud, api)
    pid = tenant.api.project_id
    assert tenant.api.put(f"/os-quota-sets/{pid}", {"quota_set": {"instances": 3}}
                          ).status_code == 403
    resp = api.put(f"/os-quota-sets/{pid}", {"quota_set": {"instances": 3, "cores": 4}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota_set"]["instances"] == 3
    assert "id" not in resp.json()["quota_set"]
    detail = tenant.api.get(f"/os-quota-sets/{pid}/detail").json()["quota_set"]
    assert detail["instances"] == {"limit": 3, "in_use": 0, "reserved": 0}
    assert api.put(f"/os-quota-sets/{pid}", {"quota_set": {"instances": "x"}}
                   ).status_code == 400
    assert api.put(f"/os-quota-sets/{pid}", {"quota_set": {"bogus": 1}}).status_code == 400
    limits = tenant.api.get("/limits").json()["limits"]["absolute"]
    assert limits["maxTotalInstances"] == 3 and limits["maxTotalCores"] == 4
    assert api.delete(f"/os-quota-sets/{pid}").status_code == 202
    assert tenant.api.get(f"/os-quota-sets/{pid}").json()["quota_set"]["instances"] == 10


def test_quota_classes(api: Api, alice: Tenant) -> None:
    shown = api.get("/os-quota-class-sets/default").json()["quota_class_set"]
    assert shown["id"] == "default" and shown["instances"] == 10
    assert "server_groups" not in shown  # only from 2.50
    assert "server_groups" in api.get("/os-quota-class-sets/default",
                                      mv="2.50").json()["quota_class_set"]
    assert alice.api.get("/os-quota-class-sets/default").status_code == 403
    resp = api.put("/os-quota-class-sets/default", {"quota_class_set": {"key_pairs": 101}})
    assert resp.status_code == 200, resp.text
    assert alice.api.get(f"/os-quota-sets/{alice.api.project_id}").json()[
        "quota_set"]["key_pairs"] == 101
    api.put("/os-quota-class-sets/default", {"quota_class_set": {"key_pairs": 100}})


def test_limits_by_microversion(alice: Tenant, api: Api) -> None:
    old = alice.api.get("/limits").json()["limits"]
    assert old["rate"] == []
    assert old["absolute"]["maxImageMeta"] == 128
    assert old["absolute"]["maxPersonality"] == 5
    assert old["absolute"]["totalInstancesUsed"] == 0
    new = alice.api.get("/limits", mv="2.57").json()["limits"]["absolute"]
    for gone in ("maxImageMeta", "maxPersonality", "maxSecurityGroups", "maxTotalFloatingIps"):
        assert gone not in new
    other = alice.api.get("/limits", params={"tenant_id": api.project_id})
    assert other.status_code == 403
    assert api.get("/limits", params={"tenant_id": alice.api.project_id}).status_code == 200


def test_availability_zones(api: Api, alice: Tenant) -> None:
    zones = alice.api.get("/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    assert alice.api.get("/os-availability-zone/detail").status_code == 403
    detail = {z["zoneName"]: z for z in api.get("/os-availability-zone/detail").json()[
        "availabilityZoneInfo"]}
    assert set(detail["nova"]["hosts"]) >= {"host-a", "host-b", "host-c"}
    service = detail["nova"]["hosts"]["host-a"]["nova-compute"]
    assert service["available"] is True and service["active"] is True
    internal = next(iter(detail["internal"]["hosts"].values()))
    assert {"nova-conductor", "nova-scheduler"} <= set(internal)
    assert fault(alice.api.get("/os-availability-zone/detail"))[0] == "forbidden"

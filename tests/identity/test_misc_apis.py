"""The smaller identity APIs: policies, domain configs, unified limits, OAuth1 consumers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cloud import RunningCloud


def base(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="module")
def api(cloud: RunningCloud) -> Iterator[httpx.Client]:
    token = cloud.connect().auth_token or ""
    with httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": token},
                      timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def member_api(cloud: RunningCloud, admin: Any) -> Iterator[httpx.Client]:
    import uuid

    from tests.identity.test_credentials import make_user

    name = f"t-{uuid.uuid4().hex[:10]}"
    make_user(cloud, admin, name)
    token = cloud.connect(user=name, password=f"pw-{name}", project=name).auth_token or ""
    with httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": token},
                      timeout=30) as client:
        yield client


# -- policies ----------------------------------------------------------------------------------
def test_policy_crud(api: httpx.Client, member_api: httpx.Client, name: str) -> None:
    created = api.post("/policies", json={"policy": {"blob": '{"a": 1}', "type": name,
                                                     "owner": "me"}})
    assert created.status_code == 201
    policy = created.json()["policy"]
    assert policy == {"id": policy["id"], "blob": '{"a": 1}', "type": name, "owner": "me",
                      "links": {"self": f"{base(api)}/policies/{policy['id']}"}}
    other = api.post("/policies", json={"policy": {"blob": "x", "type": f"{name}-2"}}
                     ).json()["policy"]
    listed = {p["id"] for p in api.get("/policies").json()["policies"]}
    assert {policy["id"], other["id"]} <= listed
    assert [p["id"] for p in api.get("/policies", params={"type": name}).json()["policies"]] \
        == [policy["id"]]
    updated = api.patch(f"/policies/{policy['id']}", json={"policy": {"type": f"{name}-u"}})
    assert updated.status_code == 200 and updated.json()["policy"]["type"] == f"{name}-u"
    shown = api.get(f"/policies/{policy['id']}").json()["policy"]
    assert shown["blob"] == policy["blob"] and shown["type"] == f"{name}-u"

    for bad in ({"type": "t"}, {"blob": "b"}, {"blob": 1, "type": "t"},
                {"blob": "b", "type": "t" * 256}):
        assert api.post("/policies", json={"policy": bad}).status_code == 400, bad
    assert api.patch(f"/policies/{policy['id']}", json={"policy": {}}).status_code == 400
    assert member_api.post("/policies", json={"policy": {"blob": "b", "type": "t"}}
                           ).status_code == 403
    assert member_api.get("/policies").status_code == 403

    for pid in (policy["id"], other["id"]):
        assert api.delete(f"/policies/{pid}").status_code == 204
    missing = api.get(f"/policies/{policy['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Could not find policy: {policy['id']}."


# -- domain configs ----------------------------------------------------------------------------
CUSTOM = {"identity": {"driver": "ldap"},
          "ldap": {"url": "ldap://myldap.com:389/",
                   "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"}}


@pytest.fixture
def domain(api: httpx.Client, name: str) -> Iterator[str]:
    created = api.post("/domains", json={"domain": {"name": name}}).json()["domain"]
    yield created["id"]
    api.patch(f"/domains/{created['id']}", json={"domain": {"enabled": False}})
    api.delete(f"/domains/{created['id']}")


def test_default_domain_config(api: httpx.Client) -> None:
    config = api.get("/domains/config/default").json()["config"]
    assert set(config) == {"identity", "ldap"}
    assert config["identity"] == {"driver": "sql", "list_limit": None}
    identity = api.get("/domains/config/identity/default").json()["config"]
    assert identity == {"identity": {"driver": "sql", "list_limit": None}}
    for option in ("driver", "list_limit"):
        shown = api.get(f"/domains/config/identity/{option}/default").json()["config"]
        assert shown == {option: config["identity"][option]}
    ldap = api.get("/domains/config/ldap/default").json()["config"]["ldap"]
    assert ldap["url"] == "ldap://localhost" and "password" not in ldap
    for option in ldap:
        assert option in api.get(f"/domains/config/ldap/{option}/default").json()["config"]
    assert api.get("/domains/config/nope/default").status_code == 403
    assert api.get("/domains/config/ldap/password/default").status_code == 403
    assert api.get("/domains/config/ldap/nope/default").status_code == 403


def test_domain_config_lifecycle(api: httpx.Client, member_api: httpx.Client,
                                 domain: str) -> None:
    url = f"/domains/{domain}/config"
    assert api.get(url).status_code == 404
    created = api.put(url, json={"config": {**CUSTOM, "ldap": {**CUSTOM["ldap"],
                                                               "password": "hidden"}}})
    assert created.status_code == 201
    assert created.json()["config"] == CUSTOM  # the sensitive password is never shown
    assert api.put(url, json={"config": CUSTOM}).status_code == 200  # replaces: 200
    assert api.get(url).json()["config"] == CUSTOM
    assert api.head(url).status_code == 200
    for group, options in CUSTOM.items():
        assert api.get(f"{url}/{group}").json()["config"] == {group: options}
        for option, value in options.items():
            assert api.get(f"{url}/{group}/{option}").json()["config"] == {option: value}

    new = {**CUSTOM, "ldap": {**CUSTOM["ldap"], "url": "ldap://other.test/"}}
    assert api.patch(url, json={"config": new}).json()["config"] == new
    assert api.get(url).json()["config"] == new

    updated = api.patch(f"{url}/identity", json={"config": {"identity": {
        "driver": "sql2", "list_limit": 42}}}).json()["config"]
    assert updated["identity"] == {"driver": "sql2", "list_limit": 42}
    updated = api.patch(f"{url}/identity/driver", json={"config": {"driver": "x"}})
    assert updated.json()["config"]["identity"]["driver"] == "x"

    # Unsupported groups and options are 403 (Keystone's InvalidDomainConfig), missing 404.
    assert api.put(url, json={"config": {"nope": {"a": 1}}}).status_code == 403
    assert api.put(url, json={"config": {"ldap": {"nope": 1}}}).status_code == 403
    assert api.put(url, json={"config": {}}).status_code == 403
    assert api.patch(f"{url}/identity", json={"config": {"ldap": {"url": "x"}}}
                     ).status_code == 403
    assert api.patch(f"{url}/identity/driver", json={"config": {"list_limit": 1}}
                     ).status_code == 403
    assert api.get(f"{url}/nope").status_code == 403
    assert api.get(f"{url}/ldap/password").status_code == 404  # sensitive: never shown

    assert api.delete(f"{url}/identity/driver").status_code == 204
    assert api.get(f"{url}/identity/driver").status_code == 404
    assert api.delete(f"{url}/identity/driver").status_code == 404
    assert api.patch(f"{url}/identity/driver", json={"config": {"driver": "x"}}
                     ).status_code == 404
    assert api.delete(f"{url}/identity").status_code == 204
    assert api.get(f"{url}/identity").status_code == 404
    assert member_api.get(url).status_code == 403
    assert member_api.delete(url).status_code == 403
    assert api.delete(url).status_code == 204
    missing = api.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == (
        f"Could not find any options in domain configuration for domain {domain}.")
    assert api.get("/domains/nope/config").status_code == 404
    assert api.put("/domains/nope/config", json={"config": CUSTOM}).status_code == 404


def test_security_compliance_config(api: httpx.Client, member_api: httpx.Client) -> None:
    shown = member_api.get("/domains/default/config/security_compliance")
    assert shown.status_code == 200
    assert set(shown.json()["config"]["security_compliance"]) == {
        "password_regex", "password_regex_description"}
    assert "password_regex" in member_api.get(
        "/domains/default/config/security_compliance/password_regex").json()["config"]
    assert member_api.get("/domains/default/config/security_compliance/lockout_duration"
                          ).status_code == 403


# -- unified limits ----------------------------------------------------------------------------
def test_registered_limits_and_limits(api: httpx.Client, member_api: httpx.Client, admin: Any,
                                      name: str) -> None:
    assert api.get("/limits/model").json() == {"model": {
        "name": "flat", "description": "Limit enforcement and validation does not take "
                                       "project hierarchy into consideration."}}
    service = api.post("/services", json={"service": {"type": name}}).json()["service"]
    project = admin.identity.create_project(name=name, domain_id="default")
    reg = api.post("/registered_limits", json={"registered_limits": [
        {"service_id": service["id"], "resource_name": "cores", "default_limit": 10,
         "region_id": "RegionOne", "description": "cores"},
        {"service_id": service["id"], "resource_name": "ram", "default_limit": -1}]})
    assert reg.status_code == 201, reg.text
    cores, ram = reg.json()["registered_limits"]
    assert cores == {"id": cores["id"], "service_id": service["id"], "region_id": "RegionOne",
                     "resource_name": "cores", "default_limit": 10, "description": "cores",
                     "links": {"self": f"{base(api)}/registered_limits/{cores['id']}"}}
    assert ram["region_id"] is None and ram["description"] is None
    dup = api.post("/registered_limits", json={"registered_limits": [
        {"service_id": service["id"], "resource_name": "ram", "default_limit": 1}]})
    assert dup.status_code == 409
    for bad in ({"service_id": "nope", "resource_name": "x", "default_limit": 1},
                {"service_id": service["id"], "resource_name": "x", "default_limit": 1,
                 "region_id": "nope"},
                {"service_id": service["id"], "resource_name": "x", "default_limit": -2},
                {"service_id": service["id"], "resource_name": "x", "default_limit": "1"},
                {"service_id": service["id"], "resource_name": "x", "default_limit": 1,
                 "extra": 1}):
        resp = api.post("/registered_limits", json={"registered_limits": [bad]})
        assert resp.status_code == 400, bad
    listed = api.get("/registered_limits", params={"service_id": service["id"]}).json()
    assert {r["id"] for r in listed["registered_limits"]} == {cores["id"], ram["id"]}
    assert api.patch(f"/registered_limits/{ram['id']}", json={"registered_limit": {
        "default_limit": 2048}}).json()["registered_limit"]["default_limit"] == 2048

    created = api.post("/limits", json={"limits": [
        {"service_id": service["id"], "resource_name": "cores", "region_id": "RegionOne",
         "resource_limit": 20, "project_id": project.id},
        {"service_id": service["id"], "resource_name": "ram", "resource_limit": 4096,
         "domain_id": "default"}]})
    assert created.status_code == 201, created.text
    plimit, dlimit = created.json()["limits"]
    assert plimit == {"id": plimit["id"], "project_id": project.id, "domain_id": None,
                      "service_id": service["id"], "region_id": "RegionOne",
                      "resource_name": "cores", "resource_limit": 20, "description": None,
                      "links": {"self": f"{base(api)}/limits/{plimit['id']}"}}
    assert dlimit["domain_id"] == "default" and dlimit["project_id"] is None
    no_reg = api.post("/limits", json={"limits": [
        {"service_id": service["id"], "resource_name": "disk", "resource_limit": 1,
         "project_id": project.id}]})
    assert no_reg.status_code == 403
    assert api.post("/limits", json={"limits": [
        {"service_id": service["id"], "resource_name": "cores", "region_id": "RegionOne",
         "resource_limit": 5, "project_id": project.id}]}).status_code == 409
    for bad in ({"service_id": service["id"], "resource_name": "ram", "resource_limit": 1},
                {"service_id": service["id"], "resource_name": "ram", "resource_limit": 1,
                 "project_id": project.id, "domain_id": "default"},
                {"service_id": service["id"], "resource_name": "ram", "resource_limit": 1,
                 "project_id": "nope"}):
        assert api.post("/limits", json={"limits": [bad]}).status_code == 400, bad
    assert api.post("/limits", json={"limits": []}).status_code == 400

    ids = {r["id"] for r in api.get("/limits", params={"service_id": service["id"]}).json()[
        "limits"]}
    assert ids == {plimit["id"], dlimit["id"]}
    assert [r["id"] for r in api.get("/limits", params={"project_id": project.id}).json()[
        "limits"]] == [plimit["id"]]
    assert member_api.get("/limits", params={"service_id": service["id"]}).json()[
        "limits"] == []  # a project-scoped caller sees only its own project's limits
    updated = api.patch(f"/limits/{plimit['id']}", json={"limit": {
        "resource_limit": 30, "description": "more"}}).json()["limit"]
    assert (updated["resource_limit"], updated["description"]) == (30, "more")
    assert api.patch(f"/limits/{plimit['id']}", json={"limit": {"project_id": "x"}}
                     ).status_code == 400
    assert api.get(f"/limits/{plimit['id']}").json()["limit"] == updated

    # A registered limit that limits refer to can be neither changed nor deleted.
    assert api.delete(f"/registered_limits/{cores['id']}").status_code == 403
    assert api.patch(f"/registered_limits/{cores['id']}", json={"registered_limit": {
        "default_limit": 1}}).status_code == 403
    assert member_api.post("/registered_limits", json={"registered_limits": [
        {"service_id": service["id"], "resource_name": "x", "default_limit": 1}]}
        ).status_code == 403
    for lid in (plimit["id"], dlimit["id"]):
        assert api.delete(f"/limits/{lid}").status_code == 204
    assert api.get(f"/limits/{plimit['id']}").status_code == 404
    for rid in (cores["id"], ram["id"]):
        assert api.delete(f"/registered_limits/{rid}").status_code == 204
    assert api.get(f"/registered_limits/{cores['id']}").status_code == 404
    api.delete(f"/services/{service['id']}")
    admin.identity.delete_project(project.id)


# -- OS-OAUTH1 consumers -----------------------------------------------------------------------
def test_oauth1_consumers(api: httpx.Client, member_api: httpx.Client, name: str) -> None:
    url = "/OS-OAUTH1/consumers"
    created = api.post(url, json={"consumer": {"description": name, "color": "blue"}})
    assert created.status_code == 201
    consumer = created.json()["consumer"]
    assert len(consumer["secret"]) >= 32  # shown once, at creation
    shown = api.get(f"{url}/{consumer['id']}").json()["consumer"]
    assert "secret" not in shown
    assert {k: shown[k] for k in ("id", "description", "links", "color")} == {
        k: consumer[k] for k in ("id", "description", "links", "color")}
    assert shown["links"]["self"] == f"{base(api)}{url}/{consumer['id']}"
    second = api.post(url, json={"consumer": {}}).json()["consumer"]
    assert second["description"] is None
    listed = api.get(url).json()["consumers"]
    assert {consumer["id"], second["id"]} <= {c["id"] for c in listed}
    assert all("secret" not in c for c in listed)

    updated = api.patch(f"{url}/{consumer['id']}", json={"consumer": {"description": "new"}})
    assert updated.status_code == 200 and updated.json()["consumer"]["description"] == "new"
    assert api.get(f"{url}/{consumer['id']}").json()["consumer"]["description"] == "new"
    assert api.patch(f"{url}/{consumer['id']}", json={"consumer": {"secret": "x"}}
                     ).status_code == 400
    assert api.patch(f"{url}/{consumer['id']}", json={"consumer": {}}).status_code == 400
    assert member_api.post(url, json={"consumer": {}}).status_code == 403

    for cid in (consumer["id"], second["id"]):
        assert api.delete(f"{url}/{cid}").status_code == 204
    assert api.get(f"{url}/{consumer['id']}").status_code == 404
    assert api.delete(f"{url}/{consumer['id']}").status_code == 404

"""Roles and implied roles, through raw HTTP, openstacksdk and the openstack CLI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openstack import exceptions as sdk_exc

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

PASSWORD = "r0les-Passw0rd"


class Api:
    """Raw HTTP against identity with one token."""

    def __init__(self, cloud: RunningCloud, token: str) -> None:
        self.base = cloud.auth_url
        self.headers = {"X-Auth-Token": token}

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers=self.headers, **kw)


def issue(cloud: RunningCloud, user: str, password: str,
          scope: dict[str, Any] | None = None) -> httpx.Response:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    auth["scope"] = scope or "unscoped"
    return httpx.post(f"{cloud.auth_url}/auth/tokens", json={"auth": auth},
                      params={"nocatalog": "1"})


@pytest.fixture(scope="module")
def api(cloud: RunningCloud) -> Api:
    resp = issue(cloud, "admin", ADMIN_PASSWORD,
                 {"project": {"name": "admin", "domain": {"id": "default"}}})
    assert resp.status_code == 201, resp.text
    return Api(cloud, resp.headers["X-Subject-Token"])


def role_id(api: Api, name: str) -> str:
    roles = api("GET", "/roles", params={"name": name}).json()["roles"]
    assert len(roles) == 1, roles
    return str(roles[0]["id"])


def test_bootstrap_roles_and_implications(admin: Any, api: Api) -> None:
    names = {r.name for r in admin.identity.roles()}
    assert {"admin", "manager", "member", "reader", "service", "ResellerAdmin"} <= names
    rules = api("GET", "/role_inferences").json()["role_inferences"]
    pairs = {(r["prior_role"]["name"], i["name"]) for r in rules for i in r["implies"]}
    assert {("admin", "manager"), ("manager", "member"), ("member", "reader")} <= pairs
    admin_role = role_id(api, "admin")
    one = api("GET", f"/roles/{admin_role}/implies").json()["role_inference"]
    assert one["prior_role"]["name"] == "admin"
    assert one["prior_role"]["links"]["self"].endswith(f"/v3/roles/{admin_role}")
    assert [r["name"] for r in one["implies"]] == ["manager"]


def test_role_crud_and_shape(api: Api, name: str) -> None:
    resp = api("POST", "/roles", json={"role": {"name": name, "description": "d"}})
    assert resp.status_code == 201, resp.text
    role = resp.json()["role"]
    assert role["name"] == name and role["domain_id"] is None and role["description"] == "d"
    assert role["options"] == {} and role["links"]["self"].endswith(f"/v3/roles/{role['id']}")
    assert api("POST", "/roles", json={"role": {"name": name}}).status_code == 409
    assert api("GET", f"/roles/{role['id']}").json()["role"] == role
    assert api("HEAD", f"/roles/{role['id']}").status_code == 200
    listed = api("GET", "/roles", params={"name": name}).json()
    assert [r["id"] for r in listed["roles"]] == [role["id"]] and "links" in listed
    # a domain-specific role may share the name; global listings don't show it
    dom = api("POST", "/roles", json={"role": {"name": name, "domain_id": "default"}})
    assert dom.status_code == 201 and dom.json()["role"]["domain_id"] == "default"
    dom_id = dom.json()["role"]["id"]
    assert [r["id"] for r in api("GET", "/roles", params={"name": name}).json()["roles"]] == [
        role["id"]]
    in_domain = api("GET", "/roles", params={"domain_id": "default"}).json()["roles"]
    assert dom_id in {r["id"] for r in in_domain} and role["id"] not in {
        r["id"] for r in in_domain}
    renamed = api("PATCH", f"/roles/{role['id']}", json={"role": {"name": name + "-x"}})
    assert renamed.status_code == 200 and renamed.json()["role"]["name"] == name + "-x"
    assert api("PATCH", f"/roles/{dom_id}",
               json={"role": {"domain_id": None}}).status_code == 400
    for bad in ({"role": {"name": ""}}, {"role": {"name": 5}}, {"role": {}},
                {"role": {"name": "x", "options": {"nope": True}}}, {"nope": {}}):
        assert api("POST", "/roles", json=bad).status_code == 400, bad
    assert api("POST", "/roles", json={"role": {"name": name + "-d",
                                                "domain_id": "missing"}}).status_code == 400
    for rid in (role["id"], dom_id):
        assert api("DELETE", f"/roles/{rid}").status_code == 204
        assert api("GET", f"/roles/{rid}").status_code == 404
    missing = api("DELETE", f"/roles/{role['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"Could not find role: {role['id']}."


def test_immutable_role_cannot_change_until_unlocked(api: Api, name: str) -> None:
    resp = api("POST", "/roles", json={"role": {"name": name, "options": {"immutable": True}}})
    rid = resp.json()["role"]["id"]
    assert resp.json()["role"]["options"] == {"immutable": True}
    assert api("PATCH", f"/roles/{rid}", json={"role": {"name": "other"}}).status_code == 403
    both = {"role": {"name": "other", "options": {"immutable": False}}}
    assert api("PATCH", f"/roles/{rid}", json=both).status_code == 403
    deleted = api("DELETE", f"/roles/{rid}")
    assert deleted.status_code == 403 and "immutable" in deleted.json()["error"]["message"]
    unlock = api("PATCH", f"/roles/{rid}", json={"role": {"options": {"immutable": False}}})
    assert unlock.status_code == 200 and unlock.json()["role"]["options"] == {
        "immutable": False}
    assert api("DELETE", f"/roles/{rid}").status_code == 204


def test_implied_roles(api: Api, name: str) -> None:
    ids = [api("POST", "/roles", json={"role": {"name": f"{name}-{i}"}}).json()["role"]["id"]
           for i in range(3)]
    a, b, c = ids
    put = api("PUT", f"/roles/{a}/implies/{b}")
    assert put.status_code == 201, put.text
    body = put.json()
    assert body["role_inference"]["prior_role"]["id"] == a
    assert body["role_inference"]["implies"]["id"] == b
    assert body["role_inference"]["implies"]["name"] == f"{name}-1"
    assert body["links"]["self"].endswith(f"/v3/roles/{a}/implies/{b}")
    assert api("PUT", f"/roles/{a}/implies/{b}").status_code == 409
    assert api("GET", f"/roles/{a}/implies/{b}").json() == body
    assert api("HEAD", f"/roles/{a}/implies/{b}").status_code == 204
    assert api("GET", f"/roles/{b}/implies/{a}").status_code == 404
    assert api("HEAD", f"/roles/{b}/implies/{a}").status_code == 404
    assert api("PUT", f"/roles/{a}/implies/missing").status_code == 404
    # Cycles are accepted, as in Keystone; expansion stops where they loop.
    assert api("PUT", f"/roles/{b}/implies/{c}").status_code == 201
    assert api("PUT", f"/roles/{c}/implies/{a}").status_code == 201
    listed = api("GET", f"/roles/{a}/implies").json()["role_inference"]
    assert [r["id"] for r in listed["implies"]] == [b]
    rules = {r["prior_role"]["id"]: [i["id"] for i in r["implies"]]
             for r in api("GET", "/role_inferences").json()["role_inferences"]}
    assert rules[a] == [b] and rules[b] == [c] and rules[c] == [a]
    # Nothing may imply admin; a global role may not imply a domain-specific one.
    denied = api("PUT", f"/roles/{a}/implies/{role_id(api, 'admin')}")
    assert denied.status_code == 403
    dom = api("POST", "/roles", json={"role": {"name": name, "domain_id": "default"}})
    dom_id = dom.json()["role"]["id"]
    assert api("PUT", f"/roles/{a}/implies/{dom_id}").status_code == 403
    assert api("PUT", f"/roles/{dom_id}/implies/{a}").status_code == 201
    assert api("DELETE", f"/roles/{a}/implies/{b}").status_code == 204
    assert api("DELETE", f"/roles/{a}/implies/{b}").status_code == 404
    # Deleting a role takes its rules with it.
    assert api("DELETE", f"/roles/{c}").status_code == 204
    rules = {r["prior_role"]["id"]: [i["id"] for i in r["implies"]]
             for r in api("GET", "/role_inferences").json()["role_inferences"]}
    assert b not in rules and c not in rules and rules[dom_id] == [a]
    for rid in (a, b, dom_id):
        api("DELETE", f"/roles/{rid}")


def test_member_cannot_manage_roles(admin: Any, cloud: RunningCloud, name: str) -> None:
    project = admin.identity.create_project(name=name, domain_id="default")
    user = admin.identity.create_user(name=name, password=PASSWORD, domain_id="default")
    member = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member)
    resp = issue(cloud, name, PASSWORD, {"project": {"id": project.id}})
    assert resp.status_code == 201, resp.text
    api = Api(cloud, resp.headers["X-Subject-Token"])
    assert api("POST", "/roles", json={"role": {"name": name}}).status_code == 403
    assert api("DELETE", f"/roles/{member.id}").status_code == 403
    assert api("PUT", f"/roles/{member.id}/implies/{member.id}").status_code == 403
    assert api("GET", "/roles").status_code == 403


def test_sdk_role_lifecycle(admin: Any, name: str) -> None:
    role = admin.identity.create_role(name=name, description="from sdk")
    assert admin.identity.find_role(name).id == role.id
    admin.identity.update_role(role, name=name + "-2")
    assert admin.identity.get_role(role.id).name == name + "-2"
    with pytest.raises(sdk_exc.ConflictException):
        admin.identity.create_role(name=name + "-2")
    admin.identity.delete_role(role)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_role(role.id)


def test_cli_roles_and_implied_roles(cloud: RunningCloud, api: Api, name: str) -> None:
    created = cloud.cli("role", "create", "--description", "cli role", name, "-f", "json")
    assert created["name"] == name and created["domain_id"] is None
    dom = cloud.cli("role", "create", "--domain", "default", name + "-dom", "-f", "json")
    assert dom["domain_id"] == "default"
    listed = cloud.cli("role", "list", "-f", "json")
    assert name in {r["Name"] for r in listed} and name + "-dom" not in {
        r["Name"] for r in listed}
    cloud.cli("role", "set", "--name", name + "-new", name)
    shown = cloud.cli("role", "show", name + "-new", "-f", "json")
    assert shown["id"] == created["id"] and shown["description"] == "cli role"
    rule = cloud.cli("implied", "role", "create", "--implied-role", "reader", name + "-new",
                     "-f", "json")
    assert rule == {"prior_role": created["id"], "implies": role_id(api, "reader")}
    rules = cloud.cli("implied", "role", "list", "-f", "json")
    assert {"Prior Role Name": name + "-new", "Implied Role Name": "reader"}.items() <= next(
        r for r in rules if r["Prior Role Name"] == name + "-new").items()
    cloud.cli("implied", "role", "delete", "--implied-role", "reader", name + "-new")
    cloud.cli("role", "delete", name + "-new", dom["id"])
    gone = cloud.cli("role", "show", name + "-new", check=False)
    assert gone.returncode != 0

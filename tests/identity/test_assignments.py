"""Grants (project, domain, system, OS-INHERIT), role assignment listings, and what they do
to tokens: through raw HTTP, openstacksdk and the openstack CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.identity.test_roles import Api, issue
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

PASSWORD = "gr4nts-Passw0rd"


@pytest.fixture(scope="module")
def api(cloud: RunningCloud) -> Api:
    resp = issue(cloud, "admin", ADMIN_PASSWORD,
                 {"project": {"name": "admin", "domain": {"id": "default"}}})
    assert resp.status_code == 201, resp.text
    return Api(cloud, resp.headers["X-Subject-Token"])


@pytest.fixture(scope="module")
def role_ids(api: Api) -> dict[str, str]:
    return {r["name"]: r["id"] for r in api("GET", "/roles").json()["roles"]}


@dataclass
class World:
    """A user, a group holding that user, and a project under a parent project."""

    user: str
    user_name: str
    group: str
    parent: str
    project: str


@pytest.fixture
def world(api: Api, name: str) -> World:
    def post(path: str, key: str, body: dict[str, Any]) -> str:
        resp = api("POST", path, json={key: body})
        assert resp.status_code == 201, resp.text
        return str(resp.json()[key]["id"])

    user = post("/users", "user", {"name": name, "password": PASSWORD, "domain_id": "default"})
    group = post("/groups", "group", {"name": name, "domain_id": "default"})
    assert api("PUT", f"/groups/{group}/users/{user}").status_code == 204
    parent = post("/projects", "project", {"name": name + "-parent", "domain_id": "default"})
    project = post("/projects", "project", {"name": name, "parent_id": parent})
    return World(user, name, group, parent, project)


def user_token(cloud: RunningCloud, w: World, scope: dict[str, Any]) -> httpx.Response:
    return issue(cloud, w.user_name, PASSWORD, scope)


def token_roles(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 201, resp.text
    return {r["name"] for r in resp.json()["token"]["roles"]}


def works(cloud: RunningCloud, token: str) -> int:
    return httpx.get(f"{cloud.auth_url}/auth/projects",
                     headers={"X-Auth-Token": token}).status_code


def test_project_user_grant_lifecycle(api: Api, world: World, role_ids: dict[str, str]) -> None:
    member = role_ids["member"]
    url = f"/projects/{world.project}/users/{world.user}/roles"
    assert api("HEAD", f"{url}/{member}").status_code == 404
    assert api("PUT", f"{url}/{member}").status_code == 204
    assert api("PUT", f"{url}/{member}").status_code == 204  # idempotent
    assert api("HEAD", f"{url}/{member}").status_code == 204
    assert api("GET", f"{url}/{member}").status_code == 204
    listed = api("GET", url).json()
    assert [r["name"] for r in listed["roles"]] == ["member"] and "links" in listed
    assert listed["roles"][0]["links"]["self"].endswith(f"/v3/roles/{member}")
    for path in (f"/projects/{world.project}/users/nobody/roles/{member}",
                 f"/projects/nowhere/users/{world.user}/roles/{member}",
                 f"{url}/no-such-role", f"/domains/nowhere/users/{world.user}/roles/{member}",
                 f"/projects/{world.project}/groups/nobody/roles/{member}"):
        resp = api("PUT", path)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["message"].startswith("Could not find")
    assert api("DELETE", f"{url}/{member}").status_code == 204
    gone = api("DELETE", f"{url}/{member}")
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == (
        f"Could not find role assignment with role: {member}, user or group: {world.user}, "
        f"project, domain, or system: {world.project}.")
    assert api("GET", url).json()["roles"] == []


def test_grant_reaches_next_token_and_removal_revokes(
        cloud: RunningCloud, api: Api, world: World, role_ids: dict[str, str]) -> None:
    scope = {"project": {"id": world.project}}
    assert user_token(cloud, world, scope).status_code == 401
    url = f"/projects/{world.project}/users/{world.user}/roles/{role_ids['member']}"
    assert api("PUT", url).status_code == 204
    first = user_token(cloud, world, scope)
    assert token_roles(first) == {"member", "reader"}  # reader implied by member
    old = first.headers["X-Subject-Token"]
    assert works(cloud, old) == 200
    assert api("DELETE", url).status_code == 204
    assert works(cloud, old) == 401
    assert user_token(cloud, world, scope).status_code == 401
    # granted again: a new token works at once (the revocation is not in its way)
    assert api("PUT", url).status_code == 204
    again = user_token(cloud, world, scope)
    assert works(cloud, again.headers["X-Subject-Token"]) == 200


def test_group_grant_effective_listing_and_revocation(
        cloud: RunningCloud, api: Api, world: World, role_ids: dict[str, str]) -> None:
    reader = role_ids["reader"]
    url = f"/projects/{world.project}/groups/{world.group}/roles/{reader}"
    assert api("PUT", url).status_code == 204
    assert [r["name"] for r in api(
        "GET", f"/projects/{world.project}/groups/{world.group}/roles").json()["roles"]] == [
        "reader"]
    token = user_token(cloud, world, {"project": {"id": world.project}})
    assert token_roles(token) == {"reader"}
    direct = api("GET", "/role_assignments",
                 params={"group.id": world.group}).json()["role_assignments"]
    assert direct == [{
        "scope": {"project": {"id": world.project}}, "group": {"id": world.group},
        "role": {"id": reader},
        "links": {"assignment": f"{api.base}/projects/{world.project}/groups/{world.group}"
                                f"/roles/{reader}"}}]
    # a bare ?effective counts as true, as in Keystone
    effective = api("GET", f"/role_assignments?effective&scope.project.id={world.project}"
                    ).json()["role_assignments"]
    assert effective == [{
        "scope": {"project": {"id": world.project}}, "user": {"id": world.user},
        "role": {"id": reader},
        "links": {"assignment": f"{api.base}/projects/{world.project}/groups/{world.group}"
                                f"/roles/{reader}",
                  "membership": f"{api.base}/groups/{world.group}/users/{world.user}"}}]
    assert api("GET", "/role_assignments", params={
        "effective": "1", "group.id": world.group}).status_code == 400
    assert api("DELETE", url).status_code == 204
    assert works(cloud, token.headers["X-Subject-Token"]) == 401


def test_inherited_grants_reach_projects_below(
        cloud: RunningCloud, api: Api, world: World, role_ids: dict[str, str]) -> None:
    member, reader = role_ids["member"], role_ids["reader"]
    inherit = (f"/OS-INHERIT/projects/{world.parent}/users/{world.user}/roles/{member}"
               "/inherited_to_projects")
    assert api("PUT", inherit).status_code == 204
    assert api("HEAD", inherit).status_code == 204
    # inherited: the child gets it, the parent itself does not
    assert token_roles(user_token(cloud, world, {"project": {"id": world.project}})) == {
        "member", "reader"}
    assert user_token(cloud, world, {"project": {"id": world.parent}}).status_code == 401
    plain = f"/projects/{world.parent}/users/{world.user}/roles"
    assert api("GET", plain).json()["roles"] == []
    assert api("HEAD", f"{plain}/{member}").status_code == 404
    effective = api("GET", "/role_assignments", params={
        "effective": "true", "user.id": world.user}).json()["role_assignments"]
    pairs = {(a["scope"]["project"]["id"], a["role"]["id"]) for a in effective}
    assert pairs == {(world.project, member), (world.project, reader)}
    via = next(a for a in effective if a["role"]["id"] == member)
    assert via["scope"]["OS-INHERIT:inherited_to"] == "projects"
    assert via["links"]["assignment"] == api.base + inherit
    implied = next(a for a in effective if a["role"]["id"] == reader)
    assert implied["links"]["prior_role"] == f"{api.base}/prior_role/{reader}/implies/{member}"
    # the direct listing shows the grant itself, on the parent
    direct = api("GET", "/role_assignments", params={
        "user.id": world.user, "scope.OS-INHERIT:inherited_to": "projects"}).json()
    assert [(a["scope"]["project"]["id"], a["scope"]["OS-INHERIT:inherited_to"])
            for a in direct["role_assignments"]] == [(world.parent, "projects")]
    token = user_token(cloud, world, {"project": {"id": world.project}})
    assert api("DELETE", inherit).status_code == 204
    assert works(cloud, token.headers["X-Subject-Token"]) == 401
    # a group's domain grant inherited to projects reaches every project of the domain
    dom = (f"/OS-INHERIT/domains/default/groups/{world.group}/roles/{reader}"
           "/inherited_to_projects")
    assert api("PUT", dom).status_code == 204
    listed = api("GET", f"/OS-INHERIT/domains/default/groups/{world.group}/roles"
                        "/inherited_to_projects").json()["roles"]
    assert [r["id"] for r in listed] == [reader]
    for pid in (world.project, world.parent):
        assert token_roles(user_token(cloud, world, {"project": {"id": pid}})) == {"reader"}
    assert user_token(cloud, world, {"domain": {"id": "default"}}).status_code == 401
    subtree = api("GET", "/role_assignments", params={
        "scope.project.id": world.parent, "include_subtree": "1", "effective": "1",
        "user.id": world.user}).json()["role_assignments"]
    assert {a["scope"]["project"]["id"] for a in subtree} == {world.parent, world.project}
    assert api("GET", "/role_assignments?include_subtree=1").status_code == 400
    assert api("DELETE", dom).status_code == 204


def test_domain_and_system_grants(cloud: RunningCloud, api: Api, world: World,
                                  role_ids: dict[str, str], name: str) -> None:
    reader = role_ids["reader"]
    assert api("PUT", f"/domains/default/users/{world.user}/roles/{reader}").status_code == 204
    assert token_roles(user_token(cloud, world, {"domain": {"id": "default"}})) == {"reader"}
    assert [r["id"] for r in api(
        "GET", f"/domains/default/users/{world.user}/roles").json()["roles"]] == [reader]
    system = f"/system/users/{world.user}/roles/{reader}"
    assert api("HEAD", system).status_code == 404
    assert api("PUT", system).status_code == 204
    assert api("GET", system).status_code == 204
    assert [r["name"] for r in api(
        "GET", f"/system/users/{world.user}/roles").json()["roles"]] == ["reader"]
    sys_token = user_token(cloud, world, {"system": {"all": True}})
    assert token_roles(sys_token) == {"reader"}
    listed = api("GET", "/role_assignments", params={
        "scope.system": "all", "user.id": world.user}).json()["role_assignments"]
    assert listed == [{"scope": {"system": {"all": True}}, "user": {"id": world.user},
                       "role": {"id": reader},
                       "links": {"assignment": f"{api.base}/system/users/{world.user}"
                                              f"/roles/{reader}"}}]
    everything = api("GET", "/role_assignments", params={"user.id": world.user}).json()
    assert {next(iter(a["scope"])) for a in everything["role_assignments"]} == {
        "domain", "system"}
    dom_role = api("POST", "/roles", json={"role": {"name": name, "domain_id": "default"}})
    dom_role_id = dom_role.json()["role"]["id"]
    assert api("PUT", f"/system/users/{world.user}/roles/{dom_role_id}").status_code == 400
    assert api("DELETE", system).status_code == 204
    assert works(cloud, sys_token.headers["X-Subject-Token"]) == 401
    group_system = f"/system/groups/{world.group}/roles/{reader}"
    assert api("PUT", group_system).status_code == 204
    sys_token = user_token(cloud, world, {"system": {"all": True}})
    assert token_roles(sys_token) == {"reader"}
    assert api("DELETE", group_system).status_code == 204
    assert works(cloud, sys_token.headers["X-Subject-Token"]) == 401
    assert api("DELETE", f"/domains/default/users/{world.user}/roles/{reader}").status_code == 204
    assert api("DELETE", f"/roles/{dom_role_id}").status_code == 204


def test_domain_specific_roles_imply_but_never_reach_tokens(
        cloud: RunningCloud, api: Api, world: World, role_ids: dict[str, str],
        name: str) -> None:
    dom_role = api("POST", "/roles", json={"role": {"name": name, "domain_id": "default"}})
    rid = dom_role.json()["role"]["id"]
    assert api("PUT", f"/roles/{rid}/implies/{role_ids['member']}").status_code == 201
    assert api("PUT", f"/projects/{world.project}/users/{world.user}/roles/{rid}"
               ).status_code == 204
    assert token_roles(user_token(cloud, world, {"project": {"id": world.project}})) == {
        "member", "reader"}
    effective = api("GET", "/role_assignments", params={
        "effective": "", "user.id": world.user, "include_names": "1"}).json()
    assert {a["role"]["name"] for a in effective["role_assignments"]} == {"member", "reader"}
    named = api("GET", "/role_assignments", params={
        "user.id": world.user, "include_names": "1"}).json()["role_assignments"]
    assert named == [{
        "scope": {"project": {"id": world.project, "name": world.user_name,
                              "domain": {"id": "default", "name": "Default"}}},
        "user": {"id": world.user, "name": world.user_name,
                 "domain": {"id": "default", "name": "Default"}},
        "role": {"id": rid, "name": name, "domain": {"id": "default", "name": "Default"}},
        "links": {"assignment": f"{api.base}/projects/{world.project}/users/{world.user}"
                                f"/roles/{rid}"}}]
    other = api("POST", "/domains", json={"domain": {"name": name}}).json()["domain"]["id"]
    elsewhere = api("POST", "/projects", json={"project": {"name": name, "domain_id": other}})
    pid = elsewhere.json()["project"]["id"]
    assert api("PUT", f"/projects/{pid}/users/{world.user}/roles/{rid}").status_code == 403
    # deleting the role drops its grants and revokes the tokens that carried what it implied
    token = user_token(cloud, world, {"project": {"id": world.project}})
    assert works(cloud, token.headers["X-Subject-Token"]) == 200
    assert api("DELETE", f"/roles/{rid}").status_code == 204
    assert works(cloud, token.headers["X-Subject-Token"]) == 401
    assert api("GET", "/role_assignments", params={"role.id": rid}).json()[
        "role_assignments"] == []


def test_role_assignment_filters_are_validated(api: Api) -> None:
    for params in ({"scope.project.id": "a", "scope.domain.id": "b"},
                   {"scope.system": "all", "scope.domain.id": "b"},
                   {"scope.system": "all", "scope.project.id": "a"},
                   {"user.id": "a", "group.id": "b"},
                   {"effective": "1", "scope.domain.id": "b",
                    "scope.OS-INHERIT:inherited_to": "projects"}):
        resp = api("GET", "/role_assignments", params=params)
        assert resp.status_code == 400, params
    assert api("GET", "/role_assignments", params={"role.id": "none"}).json() == {
        "role_assignments": [], "links": {"self": f"{api.base}/role_assignments?role.id=none",
                                          "previous": None, "next": None}}


def test_role_deletion_revokes_tokens(cloud: RunningCloud, api: Api, world: World,
                                      name: str) -> None:
    rid = api("POST", "/roles", json={"role": {"name": name}}).json()["role"]["id"]
    assert api("PUT", f"/projects/{world.project}/users/{world.user}/roles/{rid}"
               ).status_code == 204
    token = user_token(cloud, world, {"project": {"id": world.project}})
    assert token_roles(token) == {name}
    assert api("DELETE", f"/roles/{rid}").status_code == 204
    assert works(cloud, token.headers["X-Subject-Token"]) == 401
    assert api("GET", f"/projects/{world.project}/users/{world.user}/roles").json()[
        "roles"] == []


def test_members_and_domain_managers_are_limited(
        cloud: RunningCloud, api: Api, world: World, role_ids: dict[str, str],
        name: str) -> None:
    member, manager = role_ids["member"], role_ids["manager"]
    assert api("PUT", f"/projects/{world.project}/users/{world.user}/roles/{member}"
               ).status_code == 204
    resp = user_token(cloud, world, {"project": {"id": world.project}})
    as_member = Api(cloud, resp.headers["X-Subject-Token"])
    grant = f"/projects/{world.project}/users/{world.user}/roles/{manager}"
    assert as_member("PUT", grant).status_code == 403
    assert as_member("DELETE", f"/system/users/{world.user}/roles/{member}").status_code == 403
    assert as_member("GET", "/role_assignments").status_code == 403
    assert as_member("GET", "/role_assignments",
                     params={"user.id": world.user}).status_code == 403
    # A domain manager grants within the domain, but never admin.
    other = api("POST", "/users", json={"user": {"name": name + "-o", "password": PASSWORD}})
    other_id = other.json()["user"]["id"]
    assert api("PUT", f"/domains/default/users/{world.user}/roles/{manager}").status_code == 204
    dm = Api(cloud, user_token(cloud, world, {"domain": {"id": "default"}}).headers[
        "X-Subject-Token"])
    assert dm("PUT", f"/projects/{world.project}/users/{other_id}/roles/{member}"
              ).status_code == 204
    assert dm("PUT", f"/projects/{world.project}/users/{other_id}/roles/"
                     f"{role_ids['admin']}").status_code == 403
    seen = dm("GET", "/role_assignments").json()["role_assignments"]
    assert seen and all(a["scope"].get("domain", {}).get("id") == "default"
                        or "project" in a["scope"] for a in seen)
    assert dm("DELETE", f"/projects/{world.project}/users/{other_id}/roles/{member}"
              ).status_code == 204
    assert api("DELETE", f"/domains/default/users/{world.user}/roles/{manager}"
               ).status_code == 204


def test_sdk_grants(admin: Any, world: World) -> None:
    ident = admin.identity
    project, user, group = (ident.get_project(world.project), ident.get_user(world.user),
                            ident.get_group(world.group))
    reader = ident.find_role("reader")
    ident.assign_project_role_to_user(project, user, reader)
    assert ident.validate_user_has_project_role(project, user, reader)
    ident.assign_project_role_to_group(project, group, reader)
    assert ident.validate_group_has_project_role(project, group, reader)
    found = list(ident.role_assignments(user_id=world.user))
    assert [(a.scope["project"]["id"], a.role["id"]) for a in found] == [
        (world.project, reader.id)]
    ident.unassign_project_role_from_user(project, user, reader)
    ident.unassign_project_role_from_group(project, group, reader)
    assert not ident.validate_user_has_project_role(project, user, reader)
    assert list(ident.role_assignments(scope_project_id=world.project)) == []


def test_cli_grants_and_assignment_listing(cloud: RunningCloud, world: World,
                                           name: str) -> None:
    cloud.cli("role", "add", "--project", world.project, "--user", world.user, "member")
    cloud.cli("role", "add", "--domain", "default", "--group", world.group, "--inherited",
              "reader")
    cloud.cli("role", "add", "--system", "all", "--user", world.user, "reader")
    rows = cloud.cli("role", "assignment", "list", "--effective", "--names", "--user",
                     world.user, "-f", "json")
    got = {(r["Role"], r["Project"], r["System"], r["Inherited"]) for r in rows}
    assert got >= {("member", f"{world.user_name}@Default", "", False),
                   ("reader", f"{world.user_name}@Default", "", False),
                   ("reader", f"{world.user_name}@Default", "", True),
                   ("reader", "", "all", False)}
    assert {r["User"] for r in rows} == {f"{world.user_name}@Default"}
    by_project = cloud.cli("role", "assignment", "list", "--names", "--project",
                           world.project, "-f", "json")
    assert [(r["Role"], r["User"]) for r in by_project] == [
        ("member", f"{world.user_name}@Default")]
    system = cloud.cli("role", "assignment", "list", "--system", "all", "--names", "-f",
                       "json")
    assert ("reader", f"{world.user_name}@Default") in {(r["Role"], r["User"]) for r in system}
    assert ("admin", "admin@Default") in {(r["Role"], r["User"]) for r in system}
    cloud.cli("role", "remove", "--project", world.project, "--user", world.user, "member")
    cloud.cli("role", "remove", "--domain", "default", "--group", world.group, "--inherited",
              "reader")
    cloud.cli("role", "remove", "--system", "all", "--user", world.user, "reader")
    left = cloud.cli("role", "assignment", "list", "--user", world.user, "--names", "-f",
                     "json")
    assert left == []

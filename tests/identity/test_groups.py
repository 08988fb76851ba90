"""Groups and membership through the openstack CLI, openstacksdk and raw HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openstack import exceptions as sdk_exc

from tests.identity.test_users import (  # noqa: F401  (admin_headers is a fixture)
    PASSWORD,
    admin_headers,
    assignments_of,
    grant,
    issue,
    make_project,
    make_user,
    member_of_new_project,
    token,
)
from tests.support.cloud import RunningCloud


def make_group(cloud: RunningCloud, headers: dict[str, str], name: str,
               **attrs: Any) -> dict[str, Any]:
    resp = httpx.post(f"{cloud.auth_url}/groups", json={"group": {"name": name, **attrs}},
                      headers=headers)
    assert resp.status_code == 201, resp.text
    group: dict[str, Any] = resp.json()["group"]
    return group


def test_cli_group_lifecycle_and_membership(cloud: RunningCloud, admin: Any,
                                            admin_headers: dict[str, str],  # noqa: F811
                                            name: str) -> None:
    user = make_user(cloud, admin_headers, f"{name}-u")
    created = cloud.cli("group", "create", "--domain", "default", "--description", "testers",
                        name, "-f", "json")
    assert created["name"] == name and created["domain_id"] == "default"
    assert created["description"] == "testers"

    listed = cloud.cli("group", "list", "--domain", "default", "-f", "json")
    assert {"ID": created["id"], "Name": name} in [
        {"ID": r["ID"], "Name": r["Name"]} for r in listed]

    renamed = f"{name}-r"
    cloud.cli("group", "set", "--name", renamed, "--description", "renamed", name)
    shown = admin.identity.get_group(created["id"])
    assert shown.name == renamed and shown.description == "renamed"

    cloud.cli("group", "add", "user", renamed, user["name"])
    contains = cloud.cli("group", "contains", "user", renamed, user["name"])
    assert f"{user['name']} in group {renamed}" in contains.stdout

    mine = cloud.cli("group", "list", "--user", user["name"], "-f", "json")
    assert [r["Name"] for r in mine] == [renamed]

    cloud.cli("group", "remove", "user", renamed, user["name"])
    assert list(admin.identity.group_users(created["id"])) == []

    cloud.cli("group", "delete", renamed)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_group(created["id"])


def test_response_shape_and_extra_attributes(cloud: RunningCloud,
                                             admin_headers: dict[str, str],  # noqa: F811
                                             name: str) -> None:
    group = make_group(cloud, admin_headers, name, color="blue")
    assert group["links"]["self"] == f"{cloud.auth_url}/groups/{group['id']}"
    assert group["color"] == "blue" and group["description"] == ""
    assert group["domain_id"] == "default"
    resp = httpx.patch(group["links"]["self"], headers=admin_headers,
                       json={"group": {"description": "d", "color": "red"}})
    assert resp.status_code == 200
    assert resp.json()["group"] == {**group, "description": "d", "color": "red"}
    shown = httpx.get(group["links"]["self"], headers=admin_headers).json()["group"]
    assert shown == resp.json()["group"]


def test_sdk_crud_and_filters(cloud: RunningCloud, admin: Any, name: str) -> None:
    domain = admin.identity.create_domain(name=f"{name}-d")
    here = admin.identity.create_group(name=name, domain_id="default", description="x")
    there = admin.identity.create_group(name=name, domain_id=domain.id)
    assert [g.id for g in admin.identity.groups(name=name, domain_id="default")] == [here.id]
    assert [g.id for g in admin.identity.groups(domain_id=domain.id)] == [there.id]
    assert {g.id for g in admin.identity.groups(name=name)} == {here.id, there.id}
    assert admin.identity.update_group(here, name=f"{name}-2").name == f"{name}-2"
    admin.identity.delete_group(here)
    assert admin.identity.find_group(f"{name}-2") is None


def test_errors(cloud: RunningCloud, admin_headers: dict[str, str],  # noqa: F811
                name: str) -> None:
    url = f"{cloud.auth_url}/groups"
    group = make_group(cloud, admin_headers, name)
    user = make_user(cloud, admin_headers, f"{name}-u")
    dup = httpx.post(url, json={"group": {"name": name}}, headers=admin_headers)
    assert dup.status_code == 409
    other = make_group(cloud, admin_headers, f"{name}-2")
    assert httpx.patch(other["links"]["self"], json={"group": {"name": name}},
                       headers=admin_headers).status_code == 409
    for body, field in (({}, "group"), ({"group": {}}, "group.name"),
                        ({"group": {"name": 3}}, "group.name"),
                        ({"group": {"name": "x", "description": []}}, "group.description")):
        resp = httpx.post(url, json=body, headers=admin_headers)
        assert resp.status_code == 400, body
        assert f"'{field}'" in resp.json()["error"]["message"]
    assert httpx.post(url, json={"group": {"name": name, "domain_id": "nodomain"}},
                      headers=admin_headers).status_code == 404
    assert httpx.patch(group["links"]["self"], json={"group": {"domain_id": "x"}},
                       headers=admin_headers).status_code == 400
    for method in ("GET", "DELETE"):
        resp = httpx.request(method, f"{url}/nope", headers=admin_headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["message"] == "Could not find group: nope."

    members = f"{group['links']['self']}/users"
    assert httpx.put(f"{members}/nope", headers=admin_headers).status_code == 404
    assert httpx.put(f"{url}/nope/users/{user['id']}", headers=admin_headers).status_code == 404
    # Not a member: HEAD and DELETE say so.
    assert httpx.head(f"{members}/{user['id']}", headers=admin_headers).status_code == 404
    resp = httpx.delete(f"{members}/{user['id']}", headers=admin_headers)
    assert resp.status_code == 404 and "not a member" in resp.json()["error"]["message"]
    # Adding twice is fine.
    for _ in range(2):
        assert httpx.put(f"{members}/{user['id']}", headers=admin_headers).status_code == 204
    assert httpx.head(f"{members}/{user['id']}", headers=admin_headers).status_code == 204
    assert httpx.get(f"{members}/{user['id']}", headers=admin_headers).status_code == 204


def test_group_users_listing_and_filters(cloud: RunningCloud,
                                         admin_headers: dict[str, str],  # noqa: F811
                                         name: str) -> None:
    group = make_group(cloud, admin_headers, name)
    members = [make_user(cloud, admin_headers, f"{name}-{i}") for i in range(2)]
    make_user(cloud, admin_headers, f"{name}-outside")
    for user in members:
        httpx.put(f"{group['links']['self']}/users/{user['id']}",
                  headers=admin_headers).raise_for_status()
    url = f"{group['links']['self']}/users"
    listed = httpx.get(url, headers=admin_headers).json()["users"]
    assert [u["id"] for u in listed] == [u["id"] for u in members]
    assert listed[0] == members[0]
    one = httpx.get(url, params={"name": f"{name}-1"}, headers=admin_headers).json()["users"]
    assert [u["id"] for u in one] == [members[1]["id"]]
    later = httpx.get(url, params={"password_expires_at": "gt:2000-01-01T00:00:00Z"},
                      headers=admin_headers)
    assert later.status_code == 200 and later.json()["users"] == []
    bad = httpx.get(url, params={"password_expires_at": "gt:yesterday"}, headers=admin_headers)
    assert bad.status_code == 400


def test_removal_from_group_takes_the_roles_and_the_tokens(
        cloud: RunningCloud, admin: Any, admin_headers: dict[str, str],  # noqa: F811
        name: str) -> None:
    project = make_project(admin, f"{name}-p")
    user = make_user(cloud, admin_headers, name)
    bystander = make_user(cloud, admin_headers, f"{name}-b")
    group = make_group(cloud, admin_headers, name)
    grant(cloud, group["id"], project.id, kind="GroupProject")
    for member in (user, bystander):
        httpx.put(f"{group['links']['self']}/users/{member['id']}",
                  headers=admin_headers).raise_for_status()
    scoped = token(cloud, name, PASSWORD, project=project.id)
    other = token(cloud, f"{name}-b", PASSWORD, project=project.id)
    me = f"{cloud.auth_url}/users/{user['id']}"
    assert httpx.get(me, headers=scoped).status_code == 200

    resp = httpx.delete(f"{group['links']['self']}/users/{user['id']}", headers=admin_headers)
    assert resp.status_code == 204
    assert httpx.get(me, headers=scoped).status_code == 401
    assert issue(cloud, name, PASSWORD, project=project.id).status_code == 401  # no role left
    assert issue(cloud, name, PASSWORD).status_code == 201  # but still a user
    assert httpx.get(f"{cloud.auth_url}/users/{bystander['id']}",
                     headers=other).status_code == 200


def test_delete_group_removes_grants_and_revokes_members(
        cloud: RunningCloud, admin: Any, admin_headers: dict[str, str],  # noqa: F811
        name: str) -> None:
    project = make_project(admin, f"{name}-p")
    user = make_user(cloud, admin_headers, name)
    group = make_group(cloud, admin_headers, name)
    grant(cloud, group["id"], project.id, kind="GroupProject")
    httpx.put(f"{group['links']['self']}/users/{user['id']}",
              headers=admin_headers).raise_for_status()
    scoped = token(cloud, name, PASSWORD, project=project.id)

    assert httpx.delete(group["links"]["self"], headers=admin_headers).status_code == 204
    assert assignments_of(cloud, group["id"]) == []
    assert httpx.get(f"{cloud.auth_url}/users/{user['id']}", headers=scoped).status_code == 401
    groups = httpx.get(f"{cloud.auth_url}/users/{user['id']}/groups", headers=admin_headers)
    assert groups.status_code == 200 and groups.json()["groups"] == []
    # The same name can be used again.
    make_group(cloud, admin_headers, name)


def test_member_cannot_manage_groups(cloud: RunningCloud, admin: Any,
                                     admin_headers: dict[str, str],  # noqa: F811
                                     name: str) -> None:
    user, _, headers = member_of_new_project(cloud, admin, admin_headers, name)
    group = make_group(cloud, admin_headers, name)
    url = f"{cloud.auth_url}/groups"
    assert httpx.get(url, headers=headers).status_code == 403
    assert httpx.get(group["links"]["self"], headers=headers).status_code == 403
    assert httpx.post(url, json={"group": {"name": f"{name}-x"}},
                      headers=headers).status_code == 403
    membership = f"{group['links']['self']}/users/{user['id']}"
    assert httpx.put(membership, headers=headers).status_code == 403
    assert httpx.get(f"{group['links']['self']}/users", headers=headers).status_code == 403
    # Their own groups they may list.
    httpx.put(membership, headers=admin_headers).raise_for_status()
    mine = httpx.get(f"{cloud.auth_url}/users/{user['id']}/groups", headers=headers)
    assert mine.status_code == 200 and [g["id"] for g in mine.json()["groups"]] == [group["id"]]


def test_domain_manager_manages_groups_in_their_domain(
        cloud: RunningCloud, admin: Any, admin_headers: dict[str, str],  # noqa: F811
        name: str) -> None:
    domain = admin.identity.create_domain(name=f"{name}-d")
    manager = make_user(cloud, admin_headers, name, domain_id=domain.id)
    grant(cloud, manager["id"], domain.id, role="manager", kind="UserDomain")
    headers = token(cloud, name, PASSWORD, domain=domain.id, user_domain=domain.id)
    group = make_group(cloud, headers, f"{name}-g")  # domain taken from the token
    assert group["domain_id"] == domain.id
    membership = f"{group['links']['self']}/users/{manager['id']}"
    assert httpx.put(membership, headers=headers).status_code == 204
    outsider = make_user(cloud, admin_headers, f"{name}-out")  # in the default domain
    assert httpx.put(f"{group['links']['self']}/users/{outsider['id']}",
                     headers=headers).status_code == 403
    assert [g["id"] for g in httpx.get(f"{cloud.auth_url}/groups",
                                       headers=headers).json()["groups"]] == [group["id"]]
    assert httpx.post(f"{cloud.auth_url}/groups", headers=headers, json={"group": {
        "name": f"{name}-x", "domain_id": "default"}}).status_code == 403

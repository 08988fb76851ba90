"""Users as people manage them: through the openstack CLI, openstacksdk and raw HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openstack import exceptions as sdk_exc
from sqlalchemy import select

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

PASSWORD = "s3cret-Passw0rd"


# -- helpers (test_groups.py uses them too) ----------------------------------------------------
def issue(cloud: RunningCloud, user: str, password: str, *, project: str | None = None,
          domain: str | None = None, user_domain: str = "default") -> httpx.Response:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": user_domain}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"id": project}}
    elif domain:
        auth["scope"] = {"domain": {"id": domain}}
    else:
        auth["scope"] = "unscoped"
    return httpx.post(f"{cloud.auth_url}/auth/tokens", json={"auth": auth},
                      params={"nocatalog": "1"})


def token(cloud: RunningCloud, user: str, password: str, **scope: Any) -> dict[str, str]:
    resp = issue(cloud, user, password, **scope)
    assert resp.status_code == 201, resp.text
    return {"X-Auth-Token": resp.headers["X-Subject-Token"]}


@pytest.fixture(scope="session")
def admin_headers(cloud: RunningCloud) -> dict[str, str]:
    return token(cloud, "admin", ADMIN_PASSWORD, project=admin_project_id(cloud))


def admin_project_id(cloud: RunningCloud) -> str:
    resp = issue(cloud, "admin", ADMIN_PASSWORD)
    headers = {"X-Auth-Token": resp.headers["X-Subject-Token"]}
    projects = httpx.get(f"{cloud.auth_url}/auth/projects", headers=headers).json()["projects"]
    return next(p["id"] for p in projects if p["name"] == "admin")


def grant(cloud: RunningCloud, actor_id: str, target_id: str, *, role: str = "member",
          kind: str = "UserProject", inherited: bool = False) -> None:
    """A role assignment straight in the database (the assignments API is not under test)."""
    from nimbus.identity.models import GLOBAL_ROLE, Assignment, Role

    async def run(c: Any) -> None:
        svc = c.services["identity"]
        async with svc.db.transaction() as session:
            role_id = await session.scalar(select(Role.id).where(
                Role.name == role, Role.domain_id == GLOBAL_ROLE))
            session.add(Assignment(type=kind, actor_id=actor_id, target_id=target_id,
                                   role_id=role_id, inherited=inherited))

    cloud.call(run)


def assignments_of(cloud: RunningCloud, actor_id: str) -> list[Any]:
    from nimbus.identity.models import Assignment

    async def run(c: Any) -> list[Any]:
        async with c.services["identity"].db.session() as session:
            return list((await session.scalars(select(Assignment).where(
                Assignment.actor_id == actor_id))).all())

    result: list[Any] = cloud.call(run)
    return result


def make_user(cloud: RunningCloud, admin_headers: dict[str, str], name: str,
              **attrs: Any) -> dict[str, Any]:
    body = {"name": name, "password": PASSWORD, **attrs}
    resp = httpx.post(f"{cloud.auth_url}/users", json={"user": body}, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    user: dict[str, Any] = resp.json()["user"]
    return user


def make_project(admin: Any, name: str, **attrs: Any) -> Any:
    return admin.identity.create_project(name=name, domain_id="default", **attrs)


def member_of_new_project(cloud: RunningCloud, admin: Any, admin_headers: dict[str, str],
                          name: str) -> tuple[dict[str, Any], Any, dict[str, str]]:
    """A user with the member role on a project of their own, and a token scoped to it."""
    project = make_project(admin, f"{name}-p")
    user = make_user(cloud, admin_headers, name, default_project_id=project.id)
    grant(cloud, user["id"], project.id)
    return user, project, token(cloud, name, PASSWORD, project=project.id)


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_user_lifecycle(cloud: RunningCloud, admin: Any, name: str) -> None:
    project = make_project(admin, f"{name}-p")
    created = cloud.cli("user", "create", "--password", PASSWORD, "--project", project.name,
                        "--email", f"{name}@example.org", "--description", "a tester",
                        name, "-f", "json")
    assert created["name"] == name and created["domain_id"] == "default"
    assert created["default_project_id"] == project.id
    assert created["email"] == f"{name}@example.org"
    assert created["description"] == "a tester"
    assert created["enabled"] is True
    assert "password" not in created

    shown = cloud.cli("user", "show", name, "-f", "json")
    assert shown["id"] == created["id"] and shown["email"] == f"{name}@example.org"

    cloud.cli("user", "set", "--disable", name)
    assert admin.identity.get_user(created["id"]).is_enabled is False
    assert issue(cloud, name, PASSWORD).status_code == 401  # disabled: no token

    renamed = f"{name}-r"
    cloud.cli("user", "set", "--enable", "--name", renamed, "--password", "n3w-Passw0rd", name)
    assert issue(cloud, renamed, PASSWORD).status_code == 401
    assert issue(cloud, renamed, "n3w-Passw0rd").status_code == 201

    listed = cloud.cli("user", "list", "--domain", "default", "--long", "-f", "json")
    row = next(r for r in listed if r["ID"] == created["id"])
    assert row["Name"] == renamed and row["Email"] == f"{name}@example.org"
    assert row["Enabled"] is True

    cloud.cli("user", "delete", renamed)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_user(created["id"])


def test_cli_user_list_by_project(cloud: RunningCloud, admin: Any,
                                  admin_headers: dict[str, str], name: str) -> None:
    user, project, _ = member_of_new_project(cloud, admin, admin_headers, name)
    make_user(cloud, admin_headers, f"{name}-other")
    listed = cloud.cli("user", "list", "--project", project.id, "-f", "json")
    assert [r["Name"] for r in listed] == [name]


def test_cli_password_set_by_the_user(cloud: RunningCloud, admin: Any,
                                      admin_headers: dict[str, str], name: str) -> None:
    user, project, old_token = member_of_new_project(cloud, admin, admin_headers, name)
    me = f"{cloud.auth_url}/users/{user['id']}"
    assert httpx.get(me, headers=old_token).status_code == 200

    cloud.cli("user", "password", "set", "--original-password", PASSWORD,
              "--password", "n3w-Passw0rd", user=name, password=PASSWORD, project=project.name)

    assert httpx.get(me, headers=old_token).status_code == 401  # tokens were revoked
    assert issue(cloud, name, PASSWORD).status_code == 401
    new_token = token(cloud, name, "n3w-Passw0rd", project=project.id)
    assert httpx.get(me, headers=new_token).status_code == 200


# -- create, show, update ----------------------------------------------------------------------
def test_create_response_shape(cloud: RunningCloud, admin_headers: dict[str, str],
                               name: str) -> None:
    user = make_user(cloud, admin_headers, name)
    assert set(user) == {"id", "name", "domain_id", "enabled", "password_expires_at",
                         "options", "links"}
    assert user["links"]["self"] == f"{cloud.auth_url}/users/{user['id']}"
    assert user["password_expires_at"] is None and user["options"] == {}
    shown = httpx.get(user["links"]["self"], headers=admin_headers).json()["user"]
    assert shown == user


def test_sdk_create_update_and_extra_attributes(cloud: RunningCloud, admin: Any,
                                                name: str) -> None:
    user = admin.identity.create_user(name=name, password=PASSWORD, email="x@example.org",
                                      description="d", domain_id="default")
    assert user.email == "x@example.org" and user.description == "d"
    updated = admin.identity.update_user(user, description="e", email="y@example.org")
    assert updated.description == "e" and updated.email == "y@example.org"
    found = list(admin.identity.users(name=name))
    assert [u.id for u in found] == [user.id]
    admin.identity.delete_user(user)
    assert admin.identity.find_user(name) is None


def test_duplicate_name_is_409_per_domain(cloud: RunningCloud, admin: Any,
                                          admin_headers: dict[str, str], name: str) -> None:
    make_user(cloud, admin_headers, name)
    resp = httpx.post(f"{cloud.auth_url}/users", json={"user": {"name": name}},
                      headers=admin_headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["title"] == "Conflict"
    other = admin.identity.create_domain(name=f"{name}-d")
    same_name = make_user(cloud, admin_headers, name, domain_id=other.id)
    assert same_name["domain_id"] == other.id
    # Renaming onto a taken name conflicts too.
    second = make_user(cloud, admin_headers, f"{name}-2")
    resp = httpx.patch(second["links"]["self"], json={"user": {"name": name}},
                       headers=admin_headers)
    assert resp.status_code == 409


def test_unknown_user_and_domain(cloud: RunningCloud, admin_headers: dict[str, str],
                                 name: str) -> None:
    url = f"{cloud.auth_url}/users"
    for method in ("GET", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"user": {"name": "x"}}} if method == "PATCH" else {}
        resp = httpx.request(method, f"{url}/nope", headers=admin_headers, **kwargs)
        assert resp.status_code == 404, method
        assert resp.json()["error"]["message"] == "Could not find user: nope."
    resp = httpx.post(url, json={"user": {"name": name, "domain_id": "nodomain"}},
                      headers=admin_headers)
    assert resp.status_code == 404
    assert "nodomain" in resp.json()["error"]["message"]


@pytest.mark.parametrize("body,field", [
    ({}, "user"),
    ({"user": {}}, "user.name"),
    ({"user": {"name": ""}}, "user.name"),
    ({"user": {"name": "   "}}, "name"),
    ({"user": {"name": "n", "enabled": "yes"}}, "user.enabled"),
    ({"user": {"name": "n", "password": 12}}, "user.password"),
    ({"user": {"name": "n", "domain_id": "bad id"}}, "user.domain_id"),
    ({"user": {"name": "n", "options": {"nope": True}}}, "options"),
    ({"user": {"name": "n", "options": {"lock_password": "x"}}}, "options.lock_password"),
    ({"user": {"name": "n", "options": {"multi_factor_auth_rules": [["a", "a"]]}}},
     "options.multi_factor_auth_rules"),
    ({"user": {"name": "n", "options": {"multi_factor_auth_rules": [[]]}}},
     "options.multi_factor_auth_rules"),
    ({"user": {"name": "n", "default_project_id": "default"}}, "default_project_id"),
])
def test_bad_create_body_is_400_naming_the_field(cloud: RunningCloud,
                                                 admin_headers: dict[str, str],
                                                 body: dict[str, Any], field: str) -> None:
    resp = httpx.post(f"{cloud.auth_url}/users", json=body, headers=admin_headers)
    assert resp.status_code == 400, resp.text
    assert f"'{field}'" in resp.json()["error"]["message"]


def test_bad_update_body_is_400(cloud: RunningCloud, admin_headers: dict[str, str],
                                name: str) -> None:
    user = make_user(cloud, admin_headers, name)
    url = user["links"]["self"]
    for body, field in (({"user": {}}, "user"), ({"user": {"domain_id": "other"}}, "domain_id"),
                        ({"user": {"enabled": 1}}, "user.enabled"),
                        ({"user": {"id": "other"}}, "id")):
        resp = httpx.patch(url, json=body, headers=admin_headers)
        assert resp.status_code == 400, body
        assert f"'{field}'" in resp.json()["error"]["message"]
    # Nothing was written by the failed requests.
    assert httpx.get(url, headers=admin_headers).json()["user"] == user


def test_options_are_validated_stored_and_unset(cloud: RunningCloud,
                                                admin_headers: dict[str, str],
                                                name: str) -> None:
    options = {"ignore_change_password_upon_first_use": True, "ignore_password_expiry": True,
               "ignore_lockout_failure_attempts": False, "lock_password": False,
               "multi_factor_auth_enabled": True,
               "multi_factor_auth_rules": [["password", "totp"], ["password"]]}
    user = make_user(cloud, admin_headers, name, options=options)
    assert user["options"] == options
    resp = httpx.patch(user["links"]["self"], headers=admin_headers, json={"user": {
        "options": {"multi_factor_auth_rules": None, "lock_password": True}}})
    assert resp.status_code == 200
    expected = {**options, "lock_password": True}
    del expected["multi_factor_auth_rules"]
    assert resp.json()["user"]["options"] == expected


def test_list_filters(cloud: RunningCloud, admin: Any, admin_headers: dict[str, str],
                      name: str) -> None:
    url = f"{cloud.auth_url}/users"
    first = make_user(cloud, admin_headers, f"{name}-a")
    second = make_user(cloud, admin_headers, f"{name}-b", enabled=False)

    def ids(**params: str) -> list[str]:
        resp = httpx.get(url, params=params, headers=admin_headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["links"]["self"].startswith(url)
        return [u["id"] for u in body["users"] if u["name"].startswith(name)]

    assert ids() == [first["id"], second["id"]]
    assert ids(name=f"{name}-a") == [first["id"]]
    assert ids(enabled="false") == [second["id"]]
    assert ids(enabled="true") == [first["id"]]
    assert ids(domain_id="default") == [first["id"], second["id"]]
    assert ids(domain_id="nodomain") == []
    assert ids(**{"name__startswith": name}) == [first["id"], second["id"]]
    assert ids(**{"name__icontains": f"{name.upper()}-B"}) == [second["id"]]
    assert ids(idp_id="some-idp") == []
    assert ids(password_expires_at="lt:2999-01-01T00:00:00Z") == []  # no expiring passwords
    resp = httpx.get(url, params={"password_expires_at": "soon"}, headers=admin_headers)
    assert resp.status_code == 400
    assert "'password_expires_at'" in resp.json()["error"]["message"]
    sdk_names = {u.name for u in admin.identity.users(domain_id="default", is_enabled=False)}
    assert f"{name}-b" in sdk_names and f"{name}-a" not in sdk_names


def test_password_never_in_responses(cloud: RunningCloud, admin_headers: dict[str, str],
                                     name: str) -> None:
    user = make_user(cloud, admin_headers, name)
    for resp in (httpx.get(user["links"]["self"], headers=admin_headers),
                 httpx.get(f"{cloud.auth_url}/users", headers=admin_headers),
                 httpx.patch(user["links"]["self"], headers=admin_headers,
                             json={"user": {"password": "an0ther-Passw0rd"}})):
        assert resp.status_code == 200
        assert PASSWORD not in resp.text and "an0ther" not in resp.text
        body = resp.json()
        for shown in body.get("users", [body.get("user")]):
            assert not {"password", "password_hash", "original_password"} & set(shown)


# -- passwords and tokens ----------------------------------------------------------------------
def test_change_password_errors(cloud: RunningCloud, admin: Any,
                                admin_headers: dict[str, str], name: str) -> None:
    user, project, user_token = member_of_new_project(cloud, admin, admin_headers, name)
    url = f"{cloud.auth_url}/users/{user['id']}/password"

    wrong = httpx.post(url, headers=user_token, json={"user": {
        "original_password": "wrong", "password": "n3w-Passw0rd"}})
    assert wrong.status_code == 401
    missing = httpx.post(url, headers=user_token, json={"user": {"password": "n3w"}})
    assert missing.status_code == 400
    assert "'user.original_password'" in missing.json()["error"]["message"]
    # The failed attempts changed nothing, revoked nothing.
    assert httpx.get(user["links"]["self"], headers=user_token).status_code == 200

    # Another (non-admin) user may not change it, even knowing the password.
    _, _, other_token = member_of_new_project(cloud, admin, admin_headers, f"{name}-o")
    forbidden = httpx.post(url, headers=other_token, json={"user": {
        "original_password": PASSWORD, "password": "n3w-Passw0rd"}})
    assert forbidden.status_code == 403

    # lock_password: the user may not change it themself.
    httpx.patch(user["links"]["self"], headers=admin_headers,
                json={"user": {"options": {"lock_password": True}}}).raise_for_status()
    locked = httpx.post(url, headers=user_token, json={"user": {
        "original_password": PASSWORD, "password": "n3w-Passw0rd"}})
    assert locked.status_code == 403


def test_change_password_without_token(cloud: RunningCloud, admin_headers: dict[str, str],
                                       name: str) -> None:
    """As in Keystone: the original password is the proof (an expired one can be changed)."""
    user = make_user(cloud, admin_headers, name)
    resp = httpx.post(f"{cloud.auth_url}/users/{user['id']}/password", json={"user": {
        "original_password": PASSWORD, "password": "n3w-Passw0rd"}})
    assert resp.status_code == 204
    assert issue(cloud, name, "n3w-Passw0rd").status_code == 201
    unknown = httpx.post(f"{cloud.auth_url}/users/nope/password", json={"user": {
        "original_password": PASSWORD, "password": "n3w-Passw0rd"}})
    assert unknown.status_code == 401


def test_admin_password_reset_and_disable_revoke_tokens(cloud: RunningCloud, admin: Any,
                                                        admin_headers: dict[str, str],
                                                        name: str) -> None:
    user, project, user_token = member_of_new_project(cloud, admin, admin_headers, name)
    me = user["links"]["self"]
    # An update that touches neither password nor enabled leaves tokens alone.
    httpx.patch(me, headers=admin_headers,
                json={"user": {"description": "x"}}).raise_for_status()
    assert httpx.get(me, headers=user_token).status_code == 200

    httpx.patch(me, headers=admin_headers,
                json={"user": {"password": "r3set-Passw0rd"}}).raise_for_status()
    assert httpx.get(me, headers=user_token).status_code == 401
    user_token = token(cloud, name, "r3set-Passw0rd", project=project.id)

    httpx.patch(me, headers=admin_headers, json={"user": {"enabled": False}}).raise_for_status()
    assert httpx.get(me, headers=user_token).status_code == 401
    assert issue(cloud, name, "r3set-Passw0rd", project=project.id).status_code == 401


def test_delete_removes_grants_memberships_and_tokens(cloud: RunningCloud, admin: Any,
                                                      admin_headers: dict[str, str],
                                                      name: str) -> None:
    user, project, user_token = member_of_new_project(cloud, admin, admin_headers, name)
    group = admin.identity.create_group(name=name, domain_id="default")
    admin.identity.add_user_to_group(user["id"], group)
    assert assignments_of(cloud, user["id"])

    resp = httpx.delete(user["links"]["self"], headers=admin_headers)
    assert resp.status_code == 204
    assert assignments_of(cloud, user["id"]) == []
    assert list(admin.identity.group_users(group)) == []
    assert httpx.get(f"{cloud.auth_url}/auth/projects", headers=user_token).status_code == 401
    assert httpx.delete(user["links"]["self"], headers=admin_headers).status_code == 404
    # The name is free again.
    make_user(cloud, admin_headers, name)


# -- a user's projects and groups --------------------------------------------------------------
def test_user_projects_direct_group_and_inherited(cloud: RunningCloud, admin: Any,
                                                  admin_headers: dict[str, str],
                                                  name: str) -> None:
    domain = admin.identity.create_domain(name=f"{name}-d")
    direct = make_project(admin, f"{name}-direct")
    via_group = make_project(admin, f"{name}-group")
    parent = make_project(admin, f"{name}-parent")
    child = make_project(admin, f"{name}-child", parent_id=parent.id)
    in_domain = admin.identity.create_project(name=f"{name}-indomain", domain_id=domain.id)
    make_project(admin, f"{name}-unrelated")
    user = make_user(cloud, admin_headers, name)
    group = admin.identity.create_group(name=name, domain_id="default")
    admin.identity.add_user_to_group(user["id"], group)
    grant(cloud, user["id"], direct.id)
    grant(cloud, group.id, via_group.id, kind="GroupProject")
    grant(cloud, user["id"], parent.id, inherited=True)  # the child, not the parent itself
    grant(cloud, group.id, domain.id, kind="GroupDomain", inherited=True)

    resp = httpx.get(f"{cloud.auth_url}/users/{user['id']}/projects", headers=admin_headers)
    assert resp.status_code == 200
    found = {p["name"] for p in resp.json()["projects"]}
    assert found == {direct.name, via_group.name, child.name, in_domain.name}
    # The same as what the user themself sees as their scopes.
    headers = token(cloud, name, PASSWORD)
    mine = httpx.get(f"{cloud.auth_url}/auth/projects", headers=headers).json()["projects"]
    assert {p["name"] for p in mine} == found
    own = httpx.get(f"{cloud.auth_url}/users/{user['id']}/projects", headers=headers)
    assert own.status_code == 200
    filtered = httpx.get(f"{cloud.auth_url}/users/{user['id']}/projects",
                         params={"domain_id": domain.id}, headers=admin_headers)
    assert [p["name"] for p in filtered.json()["projects"]] == [in_domain.name]
    sdk_names = {p.name for p in admin.identity.user_projects(user["id"])}
    assert sdk_names == found


# -- policy ------------------------------------------------------------------------------------
def test_member_reads_only_themself(cloud: RunningCloud, admin: Any,
                                    admin_headers: dict[str, str], name: str) -> None:
    user, project, headers = member_of_new_project(cloud, admin, admin_headers, name)
    other = make_user(cloud, admin_headers, f"{name}-other")
    base = f"{cloud.auth_url}/users"
    assert httpx.get(base, headers=headers).status_code == 403
    assert httpx.get(f"{base}/{other['id']}", headers=headers).status_code == 403
    assert httpx.get(f"{base}/{other['id']}/groups", headers=headers).status_code == 403
    assert httpx.get(f"{base}/{other['id']}/projects", headers=headers).status_code == 403
    me = httpx.get(f"{base}/{user['id']}", headers=headers)
    assert me.status_code == 200 and me.json()["user"]["name"] == name
    assert httpx.get(f"{base}/{user['id']}/groups", headers=headers).status_code == 200
    # Reading is not writing: no updating themself or others, no creating, no deleting.
    assert httpx.patch(f"{base}/{user['id']}", headers=headers,
                       json={"user": {"enabled": True}}).status_code == 403
    assert httpx.post(base, headers=headers,
                      json={"user": {"name": f"{name}-new"}}).status_code == 403
    assert httpx.delete(f"{base}/{other['id']}", headers=headers).status_code == 403
    # Through the SDK, as a member would meet it.
    conn = cloud.connect(user=name, password=PASSWORD, project=project.name)
    with pytest.raises(sdk_exc.ForbiddenException):
        list(conn.identity.users())


def test_domain_reader_lists_their_domain_only(cloud: RunningCloud, admin: Any,
                                               admin_headers: dict[str, str],
                                               name: str) -> None:
    domain = admin.identity.create_domain(name=f"{name}-d")
    reader = make_user(cloud, admin_headers, name, domain_id=domain.id)
    grant(cloud, reader["id"], domain.id, role="reader", kind="UserDomain")
    headers = token(cloud, name, PASSWORD, domain=domain.id, user_domain=domain.id)
    resp = httpx.get(f"{cloud.auth_url}/users", headers=headers)
    assert resp.status_code == 200
    assert [u["id"] for u in resp.json()["users"]] == [reader["id"]]
    assert httpx.get(f"{cloud.auth_url}/users", params={"domain_id": "default"},
                     headers=headers).status_code == 403
    admin_id = httpx.get(f"{cloud.auth_url}/users", params={"name": "admin"},
                         headers=admin_headers).json()["users"][0]["id"]
    assert httpx.get(f"{cloud.auth_url}/users/{admin_id}", headers=headers).status_code == 403
    # A reader does not write.
    assert httpx.post(f"{cloud.auth_url}/users", headers=headers, json={"user": {
        "name": f"{name}-x", "domain_id": domain.id}}).status_code == 403

"""Application credentials and access rules, through raw HTTP, openstacksdk and the CLI.

The helpers at the top (users, roles, grants, tokens) are shared with test_trusts.py. They use
the users/roles/assignments API when it is there and fall back to the database otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

ROUTE_MISSING = "The resource could not be found."
PASSWORD = "s3cret-Passw0rd-1"


# -- helpers ----------------------------------------------------------------------------------
def call(cloud: RunningCloud, method: str, path: str, token: str | None = None,
         **kw: Any) -> httpx.Response:
    headers = {"X-Auth-Token": token} if token else {}
    headers.update(kw.pop("headers", {}))
    return httpx.request(method, f"{cloud.auth_url}{path}", headers=headers, timeout=30, **kw)


def _route_missing(resp: httpx.Response) -> bool:
    return resp.status_code in (404, 405) and \
        resp.json().get("error", {}).get("message") == ROUTE_MISSING


def issue(cloud: RunningCloud, identity: dict[str, Any], scope: Any = None,
          methods: list[str] | None = None) -> httpx.Response:
    auth: dict[str, Any] = {"identity": {"methods": methods or list(identity), **identity}}
    if scope is not None:
        auth["scope"] = scope
    return httpx.post(f"{cloud.auth_url}/auth/tokens", json={"auth": auth},
                      params={"nocatalog": "1"}, timeout=30)


def password(user_id: str, secret: str = PASSWORD) -> dict[str, Any]:
    return {"password": {"user": {"id": user_id, "password": secret}}}


def user_token(cloud: RunningCloud, user_id: str, project_id: str | None = None,
               secret: str = PASSWORD) -> str:
    scope = {"project": {"id": project_id}} if project_id else "unscoped"
    resp = issue(cloud, password(user_id, secret), scope)
    assert resp.status_code == 201, resp.text
    return str(resp.headers["X-Subject-Token"])


_ADMIN: dict[int, str] = {}


def admin_token(cloud: RunningCloud) -> str:
    if id(cloud) not in _ADMIN:
        resp = issue(cloud, {"password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                   "password": ADMIN_PASSWORD}}},
                     {"project": {"name": "admin", "domain": {"id": "default"}}})
        assert resp.status_code == 201, resp.text
        _ADMIN[id(cloud)] = resp.headers["X-Subject-Token"]
    return _ADMIN[id(cloud)]


def make_project(cloud: RunningCloud, name: str) -> str:
    resp = call(cloud, "POST", "/projects", admin_token(cloud),
                json={"project": {"name": name, "domain_id": "default"}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["project"]["id"])


def _db(cloud: RunningCloud, work: Any) -> Any:
    async def run(c: Any) -> Any:
        svc = c.services["identity"]
        async with svc.db.transaction() as session:
            return await work(svc, session)
    return cloud.call(run)


def make_user(cloud: RunningCloud, name: str, secret: str = PASSWORD) -> str:
    resp = call(cloud, "POST", "/users", admin_token(cloud), json={"user": {
        "name": name, "password": secret, "domain_id": "default"}})
    if not _route_missing(resp):
        assert resp.status_code == 201, resp.text
        return str(resp.json()["user"]["id"])
    from nimbus.common.ids import new_id
    from nimbus.common.timeutils import utcnow
    from nimbus.identity.models import User

    async def work(svc: Any, session: Any) -> str:
        user = User(id=new_id(), name=name, domain_id="default", enabled=True,
                    password_hash=await svc.hasher.hash(secret), password_created_at=utcnow(),
                    extra={}, options={})
        session.add(user)
        return user.id
    return str(_db(cloud, work))


def role_id(cloud: RunningCloud, name: str, create: bool = False) -> str:
    """The id of a global role, created first when asked."""
    from nimbus.common.ids import new_id
    from nimbus.identity.models import GLOBAL_ROLE, Role

    if create:
        resp = call(cloud, "POST", "/roles", admin_token(cloud), json={"role": {"name": name}})
        if not _route_missing(resp):
            assert resp.status_code == 201, resp.text
            return str(resp.json()["role"]["id"])

    async def work(svc: Any, session: Any) -> str:
        found = await session.scalar(select(Role.id).where(
            Role.name == name, Role.domain_id == GLOBAL_ROLE))
        if found is None:
            assert create, name
            found = new_id()
            session.add(Role(id=found, name=name, domain_id=GLOBAL_ROLE, extra={}, options={}))
        return found
    return str(_db(cloud, work))


def grant(cloud: RunningCloud, user_id: str, project_id: str, role: str) -> None:
    resp = call(cloud, "PUT", f"/projects/{project_id}/users/{user_id}/roles/{role}",
                admin_token(cloud))
    if not _route_missing(resp):
        assert resp.status_code == 204, resp.text
        return
    from nimbus.identity.models import USER_PROJECT, Assignment

    async def work(svc: Any, session: Any) -> None:
        session.add(Assignment(type=USER_PROJECT, actor_id=user_id, target_id=project_id,
                               role_id=role, inherited=False))
    _db(cloud, work)


def revoke_grant(cloud: RunningCloud, user_id: str, project_id: str, role: str) -> None:
    resp = call(cloud, "DELETE", f"/projects/{project_id}/users/{user_id}/roles/{role}",
                admin_token(cloud))
    if not _route_missing(resp):
        assert resp.status_code == 204, resp.text
        return
    from nimbus.identity.models import Assignment

    async def work(svc: Any, session: Any) -> None:
        await session.execute(delete(Assignment).where(
            Assignment.actor_id == user_id, Assignment.target_id == project_id,
            Assignment.role_id == role))
    _db(cloud, work)


def member_of_new_project(cloud: RunningCloud, name: str,
                          roles: tuple[str, ...] = ("member",)) -> tuple[str, str]:
    """A new user holding `roles` on a new project: (user_id, project_id)."""
    project = make_project(cloud, name)
    user = make_user(cloud, name)
    for role in roles:
        grant(cloud, user, project, role_id(cloud, role))
    return user, project


def app_cred(cred_id: str, secret: str) -> dict[str, Any]:
    return {"application_credential": {"id": cred_id, "secret": secret}}


def create_cred(cloud: RunningCloud, token: str, user: str, **fields: Any) -> httpx.Response:
    return call(cloud, "POST", f"/users/{user}/application_credentials", token,
                json={"application_credential": fields})


def expire_in_db(cloud: RunningCloud, model: Any, row_id: str) -> None:
    async def work(svc: Any, session: Any) -> None:
        await session.execute(update(model).where(model.id == row_id).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=5)))
    _db(cloud, work)


# -- application credentials ------------------------------------------------------------------
def test_create_show_list_authenticate_and_delete(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    resp = create_cred(cloud, token, user, name=name, description="for CI")
    assert resp.status_code == 201, resp.text
    created = resp.json()["application_credential"]
    secret = created["secret"]
    assert len(secret) > 40 and created["project_id"] == project
    assert created["unrestricted"] is False and created["expires_at"] is None
    assert {r["name"] for r in created["roles"]} == {"member", "reader"}
    assert created["links"]["self"].endswith(f"/v3/users/{user}/application_credentials/"
                                             f"{created['id']}")
    base = f"/users/{user}/application_credentials"
    shown = call(cloud, "GET", f"{base}/{created['id']}", token).json()["application_credential"]
    assert "secret" not in shown and shown["name"] == name
    assert create_cred(cloud, token, user, name=f"{name}-2").status_code == 201
    assert len(call(cloud, "GET", base, token).json()["application_credentials"]) == 2
    only = call(cloud, "GET", base, token, params={"name": name}).json()
    assert [c["id"] for c in only["application_credentials"]] == [created["id"]]
    dup = create_cred(cloud, token, user, name=name)
    assert dup.status_code == 409 and dup.json()["error"]["title"] == "Conflict"

    # Authenticate with it: by id, and by name with the user by id or by name.
    resp = issue(cloud, app_cred(created["id"], secret))
    assert resp.status_code == 201, resp.text
    body = resp.json()["token"]
    assert body["methods"] == ["application_credential"]
    assert body["project"]["id"] == project and body["user"]["id"] == user
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    assert body["application_credential"] == {"id": created["id"], "name": name,
                                              "restricted": True}
    cred_token = resp.headers["X-Subject-Token"]
    for owner in ({"id": user}, {"name": name, "domain": {"id": "default"}}):
        by_name = issue(cloud, {"application_credential": {"name": name, "user": owner,
                                                           "secret": secret}})
        assert by_name.status_code == 201, by_name.text
    assert issue(cloud, app_cred(created["id"], "wrong")).status_code == 401
    scoped = issue(cloud, app_cred(created["id"], secret), {"project": {"id": project}})
    assert scoped.status_code == 401
    # Validating shows the same section; the token works on the API.
    shown_token = call(cloud, "GET", "/auth/tokens", admin_token(cloud),
                       headers={"X-Subject-Token": cred_token}).json()["token"]
    assert shown_token["application_credential"]["name"] == name
    # A restricted credential cannot make more credentials (nor trusts).
    again = create_cred(cloud, cred_token, user, name=f"{name}-3")
    assert again.status_code == 403
    assert call(cloud, "GET", f"/projects/{project}", cred_token).status_code == 200

    # Deleting it revokes its tokens and stops authentication.
    assert call(cloud, "DELETE", f"{base}/{created['id']}", token).status_code == 204
    assert call(cloud, "GET", f"/projects/{project}", cred_token).status_code == 401
    assert issue(cloud, app_cred(created["id"], secret)).status_code == 401
    assert call(cloud, "GET", f"{base}/{created['id']}", token).status_code == 404
    assert call(cloud, "DELETE", f"{base}/{created['id']}", token).status_code == 404


def test_roles_are_a_subset_of_the_callers(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    reader = role_id(cloud, "reader")
    resp = create_cred(cloud, token, user, name=name, roles=[{"name": "reader"}],
                       secret="my-own-secret")
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["secret"] == "my-own-secret"
    assert [r["id"] for r in cred["roles"]] == [reader]
    body = issue(cloud, app_cred(cred["id"], "my-own-secret")).json()["token"]
    assert [r["name"] for r in body["roles"]] == ["reader"]
    by_id = create_cred(cloud, token, user, name=f"{name}-id", roles=[{"id": reader}])
    assert by_id.status_code == 201
    not_held = create_cred(cloud, token, user, name=f"{name}-x", roles=[{"name": "admin"}])
    assert not_held.status_code == 400
    assert "unassigned role" in not_held.json()["error"]["message"]
    unknown = create_cred(cloud, token, user, name=f"{name}-y", roles=[{"id": "f" * 32}])
    assert unknown.status_code == 404
    for bad in ({"name": ""}, {"name": name, "roles": [{"id": reader, "name": "reader"}]},
                {"name": name, "unrestricted": "yes"}, {"name": name, "bogus": 1}):
        resp = call(cloud, "POST", f"/users/{user}/application_credentials", token,
                    json={"application_credential": bad})
        assert resp.status_code == 400, (bad, resp.text)


def test_expiry(cloud: RunningCloud, name: str) -> None:
    from nimbus.identity.models import ApplicationCredential

    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    for bad in ("bad.123Z", "2001-01-01T00:00:00Z"):
        resp = create_cred(cloud, token, user, name=name, expires_at=bad)
        assert resp.status_code == 400, resp.text
    when = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    resp = create_cred(cloud, token, user, name=name, expires_at=when.isoformat())
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["expires_at"] == when.strftime("%Y-%m-%dT%H:%M:%S.%f")  # as Keystone shows it
    body = issue(cloud, app_cred(cred["id"], cred["secret"])).json()["token"]
    assert body["expires_at"] <= when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expire_in_db(cloud, ApplicationCredential, cred["id"])
    assert issue(cloud, app_cred(cred["id"], cred["secret"])).status_code == 401


def test_role_removed_later_is_not_in_the_token(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    extra = role_id(cloud, f"{name}-role", create=True)
    grant(cloud, user, project, extra)
    token = user_token(cloud, user, project)
    resp = create_cred(cloud, token, user, name=name)
    cred = resp.json()["application_credential"]
    assert extra in {r["id"] for r in cred["roles"]}
    revoke_grant(cloud, user, project, extra)
    again = issue(cloud, app_cred(cred["id"], cred["secret"]))
    # Keystone deletes the credential when a role goes (401); else the role must be gone.
    assert again.status_code in (201, 401)
    if again.status_code == 201:
        assert extra not in {r["id"] for r in again.json()["token"]["roles"]}


def test_only_the_owner_manages_them(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    other, _ = member_of_new_project(cloud, f"{name}-o")
    token = user_token(cloud, user, project)
    cred = create_cred(cloud, token, user, name=name).json()["application_credential"]
    other_token = user_token(cloud, other, _)
    base = f"/users/{user}/application_credentials"
    assert call(cloud, "GET", base, other_token).status_code == 403
    assert call(cloud, "GET", f"{base}/{cred['id']}", other_token).status_code == 403
    assert call(cloud, "DELETE", f"{base}/{cred['id']}", other_token).status_code == 403
    # Someone else's credential under one's own path is not found.
    assert call(cloud, "GET", f"/users/{other}/application_credentials/{cred['id']}",
                other_token).status_code == 404
    assert create_cred(cloud, other_token, user, name=name).status_code == 403
    # An admin may read them, but not create them for someone else.
    admin = admin_token(cloud)
    assert call(cloud, "GET", base, admin).json()["application_credentials"][0]["id"] == \
        cred["id"]
    assert create_cred(cloud, admin, user, name=f"{name}-a").status_code == 403
    # Unscoped tokens have no project to bind a credential to.
    assert create_cred(cloud, user_token(cloud, user), user, name=f"{name}-u").status_code == 400


def test_unrestricted_credential_may_create_another(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    cred = create_cred(cloud, token, user, name=name,
                       unrestricted=True).json()["application_credential"]
    assert cred["unrestricted"] is True
    resp = issue(cloud, app_cred(cred["id"], cred["secret"]))
    assert resp.json()["token"]["application_credential"]["restricted"] is False
    child = create_cred(cloud, resp.headers["X-Subject-Token"], user, name=f"{name}-child")
    assert child.status_code == 201, child.text
    assert child.json()["application_credential"]["project_id"] == project


def test_access_rules(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    rule = {"path": "/v2.1/servers/*/ips", "method": "GET", "service": "compute"}
    cred = create_cred(cloud, token, user, name=name,
                       access_rules=[rule]).json()["application_credential"]
    got = dict(cred["access_rules"][0])
    rule_id = got.pop("id")
    assert got == rule
    # The same rule again is the same rule; a bad one is refused.
    twin = create_cred(cloud, token, user, name=f"{name}-2",
                       access_rules=[rule]).json()["application_credential"]
    assert twin["access_rules"][0]["id"] == rule_id
    bad = create_cred(cloud, token, user, name=f"{name}-3",
                      access_rules=[{**rule, "method": "FETCH"}])
    assert bad.status_code == 400
    base = f"/users/{user}/access_rules"
    listed = call(cloud, "GET", base, token).json()["access_rules"]
    assert [r["id"] for r in listed] == [rule_id]
    assert listed[0]["links"]["self"].endswith(f"{base}/{rule_id}")
    assert call(cloud, "GET", base, token, params={"service": "image"}).json()[
        "access_rules"] == []
    assert call(cloud, "GET", f"{base}/{rule_id}", token).json()["access_rule"]["path"] == \
        rule["path"]
    # In use: refused until both credentials are gone.
    assert call(cloud, "DELETE", f"{base}/{rule_id}", token).status_code == 403
    for c in (cred, twin):
        assert call(cloud, "DELETE", f"/users/{user}/application_credentials/{c['id']}",
                    token).status_code == 204
    assert [r["id"] for r in call(cloud, "GET", base, token).json()["access_rules"]] == \
        [rule_id]
    assert call(cloud, "DELETE", f"{base}/{rule_id}", token).status_code == 204
    assert call(cloud, "GET", base, token).json()["access_rules"] == []
    assert call(cloud, "GET", f"{base}/{rule_id}", token).status_code == 404


def test_sdk(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    identity: Any = cloud.connect(user=name, password=PASSWORD, project=name).identity
    cred = identity.create_application_credential(user, name, roles=[{"name": "member"}])
    assert cred.secret and {r["name"] for r in cred.roles} == {"member", "reader"}
    found = identity.find_application_credential(user, name)
    assert found is not None and found.id == cred.id
    assert [c.id for c in identity.application_credentials(user)] == [cred.id]
    identity.delete_application_credential(user, cred.id)
    assert list(identity.application_credentials(user)) == []


def test_cli(cloud: RunningCloud, name: str) -> None:
    user, project = member_of_new_project(cloud, name)
    as_user: dict[str, Any] = {"user": name, "password": PASSWORD, "project": name}
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    made = cloud.cli("application", "credential", "create", "--secret", "cli-secret",
                     "--role", "member", "--expiration", expires, "--unrestricted", name,
                     "-f", "json", **as_user)
    assert made["Secret"] == "cli-secret" and made["Unrestricted"] is True
    assert made["Project ID"] == project and made["Expires At"].startswith(expires)
    assert {r["name"] for r in made["Roles"]} == {"member", "reader"}
    listed = cloud.cli("application", "credential", "list", "-f", "json", **as_user)
    assert [c["ID"] for c in listed] == [made["ID"]]
    issued = cloud.cli("token", "issue", "-f", "json", project=None, env={
        "OS_AUTH_TYPE": "v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID": made["ID"],
        "OS_APPLICATION_CREDENTIAL_SECRET": "cli-secret"})
    assert issued["project_id"] == project and issued["user_id"] == user
    cloud.cli("application", "credential", "delete", name, **as_user)
    assert issue(cloud, app_cred(made["ID"], "cli-secret")).status_code == 401


@pytest.mark.parametrize("path", ["application_credentials", "access_rules"])
def test_needs_a_token(cloud: RunningCloud, path: str) -> None:
    assert call(cloud, "GET", f"/users/{'a' * 32}/{path}").status_code == 401


def test_system_scoped_credential(cloud: RunningCloud, name: str) -> None:
    resp = issue(cloud, {"password": {"user": {"name": "admin", "domain": {"id": "default"},
                                               "password": ADMIN_PASSWORD}}},
                 {"system": {"all": True}})
    token, admin_id = resp.headers["X-Subject-Token"], resp.json()["token"]["user"]["id"]
    cred = create_cred(cloud, token, admin_id, name=name,
                       roles=[{"name": "reader"}]).json()["application_credential"]
    assert cred["system"] == "all" and cred["project_id"] is None
    body = issue(cloud, app_cred(cred["id"], cred["secret"])).json()["token"]
    assert body["system"] == {"all": True} and [r["name"] for r in body["roles"]] == ["reader"]
    assert call(cloud, "DELETE", f"/users/{admin_id}/application_credentials/{cred['id']}",
                token).status_code == 204


def test_role_granted_after_login_can_go_into_a_credential(cloud: RunningCloud,
                                                           name: str) -> None:
    """Keystone judges the caller's current roles, not those of the token's issue time."""
    user, project = member_of_new_project(cloud, name)
    token = user_token(cloud, user, project)
    extra = role_id(cloud, f"{name}-role", create=True)
    grant(cloud, user, project, extra)
    resp = create_cred(cloud, token, user, name=name, roles=[{"id": extra}])
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    body = issue(cloud, app_cred(cred["id"], cred["secret"])).json()["token"]
    assert [r["id"] for r in body["roles"]] == [extra]

"""Default RBAC as users meet it: admin does everything; a member of project A sees and changes
nothing of project B's; a reader reads but does not write; a system reader reads system-wide."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.identity.test_tokens import password_body
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

PASSWORD = "rbac-Secret-1"


@dataclass
class World:
    cloud: RunningCloud
    admin: dict[str, str]
    project_a: str
    project_b: str
    alice: str  # member of A
    bob: str    # member of B
    rita: str   # reader of A
    alice_h: dict[str, str]
    rita_h: dict[str, str]
    sys_reader_h: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.cloud.auth_url}{path}"


def token(cloud: RunningCloud, user: str, scope: dict | None) -> dict[str, str]:
    body = password_body(user, PASSWORD, project=None)
    if scope is not None:
        body["auth"]["scope"] = scope
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return {"X-Auth-Token": resp.headers["X-Subject-Token"]}


@pytest.fixture(scope="module")
def world(cloud: RunningCloud) -> World:
    admin_tok = httpx.post(f"{cloud.auth_url}/auth/tokens",
                           json=password_body("admin", ADMIN_PASSWORD))
    admin = {"X-Auth-Token": admin_tok.headers["X-Subject-Token"]}

    def post(path: str, body: dict) -> dict:
        resp = httpx.post(f"{cloud.auth_url}{path}", json=body, headers=admin)
        assert resp.status_code == 201, resp.text
        return resp.json()

    suffix = admin["X-Auth-Token"][-6:].replace("-", "x").replace("_", "y")
    a = post("/projects", {"project": {"name": f"rbac-a-{suffix}"}})["project"]["id"]
    b = post("/projects", {"project": {"name": f"rbac-b-{suffix}"}})["project"]["id"]
    roles = {r["name"]: r["id"] for r in httpx.get(
        f"{cloud.auth_url}/roles", headers=admin).json()["roles"]}
    users = {}
    for who in ("alice", "bob", "rita", "sysread"):
        users[who] = post("/users", {"user": {"name": f"{who}-{suffix}",
                                              "password": PASSWORD}})["user"]["id"]
    grants = [(a, users["alice"], "member"), (b, users["bob"], "member"),
              (a, users["rita"], "reader")]
    for project, user, role in grants:
        assert httpx.put(f"{cloud.auth_url}/projects/{project}/users/{user}/roles/"
                         f"{roles[role]}", headers=admin).status_code == 204
    assert httpx.put(f"{cloud.auth_url}/system/users/{users['sysread']}/roles/"
                     f"{roles['reader']}", headers=admin).status_code == 204
    return World(
        cloud=cloud, admin=admin, project_a=a, project_b=b, alice=users["alice"],
        bob=users["bob"], rita=users["rita"],
        alice_h=token(cloud, f"alice-{suffix}", {"project": {"id": a}}),
        rita_h=token(cloud, f"rita-{suffix}", {"project": {"id": a}}),
        sys_reader_h=token(cloud, f"sysread-{suffix}", {"system": {"all": True}}),
    )


def test_member_reads_own_project_but_nothing_of_another(world: World) -> None:
    w = world
    assert httpx.get(w.url(f"/projects/{w.project_a}"), headers=w.alice_h).status_code == 200
    for method, path in [("GET", f"/projects/{w.project_b}"),
                         ("PATCH", f"/projects/{w.project_b}"),
                         ("DELETE", f"/projects/{w.project_b}"),
                         ("GET", "/projects"),
                         ("GET", f"/users/{w.bob}"),
                         ("GET", "/users"),
                         ("GET", f"/role_assignments?scope.project.id={w.project_b}"),
                         ("GET", f"/users/{w.bob}/application_credentials"),
                         ("PUT", f"/projects/{w.project_b}/users/{w.alice}/roles/x")]:
        kwargs = {"json": {"project": {"description": "x"}}} if method == "PATCH" else {}
        resp = httpx.request(method, w.url(path), headers=w.alice_h, **kwargs)
        assert resp.status_code in (403, 404), f"{method} {path}: {resp.status_code}"
        if resp.status_code == 403:
            assert resp.json()["error"]["title"] == "Forbidden"


def test_member_cannot_change_own_project_or_grant_roles(world: World) -> None:
    w = world
    resp = httpx.patch(w.url(f"/projects/{w.project_a}"), headers=w.alice_h,
                       json={"project": {"description": "mine now"}})
    assert resp.status_code == 403
    assert httpx.post(w.url("/projects"), headers=w.alice_h,
                      json={"project": {"name": "nope"}}).status_code == 403


def test_member_sees_only_own_projects_via_auth_projects(world: World) -> None:
    w = world
    mine = httpx.get(w.url("/auth/projects"), headers=w.alice_h).json()["projects"]
    assert [p["id"] for p in mine] == [w.project_a]
    own = httpx.get(w.url(f"/users/{w.alice}/projects"), headers=w.alice_h)
    assert own.status_code == 200
    assert [p["id"] for p in own.json()["projects"]] == [w.project_a]


def test_reader_reads_but_does_not_write(world: World) -> None:
    w = world
    assert httpx.get(w.url(f"/projects/{w.project_a}"), headers=w.rita_h).status_code == 200
    assert httpx.patch(w.url(f"/projects/{w.project_a}"), headers=w.rita_h,
                       json={"project": {"description": "x"}}).status_code == 403
    assert httpx.post(w.url("/users"), headers=w.rita_h,
                      json={"user": {"name": "x"}}).status_code == 403


def test_system_reader_reads_everything_and_writes_nothing(world: World) -> None:
    w = world
    assert httpx.get(w.url("/users"), headers=w.sys_reader_h).status_code == 200
    assert httpx.get(w.url("/projects"), headers=w.sys_reader_h).status_code == 200
    assert httpx.post(w.url("/projects"), headers=w.sys_reader_h,
                      json={"project": {"name": "nope"}}).status_code == 403
    assert httpx.delete(w.url(f"/projects/{w.project_b}"),
                        headers=w.sys_reader_h).status_code == 403


def test_admin_does_everything(world: World) -> None:
    w = world
    assert httpx.patch(w.url(f"/projects/{w.project_b}"), headers=w.admin,
                       json={"project": {"description": "admin was here"}}).status_code == 200
    assert httpx.get(w.url(f"/users/{w.bob}"), headers=w.admin).status_code == 200
    listed = httpx.get(w.url(f"/role_assignments?scope.project.id={w.project_a}"),
                       headers=w.admin)
    assert listed.status_code == 200
    assert {a["user"]["id"] for a in listed.json()["role_assignments"]} == {w.alice, w.rita}


def test_removing_the_role_revokes_the_members_token(world: World) -> None:
    w = world
    roles = {r["name"]: r["id"] for r in httpx.get(w.url("/roles"), headers=w.admin)
             .json()["roles"]}
    headers = token(w.cloud, httpx.get(w.url(f"/users/{w.rita}"), headers=w.admin)
                    .json()["user"]["name"], {"project": {"id": w.project_a}})
    assert httpx.get(w.url(f"/projects/{w.project_a}"), headers=headers).status_code == 200
    grant = w.url(f"/projects/{w.project_a}/users/{w.rita}/roles/{roles['reader']}")
    assert httpx.delete(grant, headers=w.admin).status_code == 204
    assert httpx.get(w.url(f"/projects/{w.project_a}"), headers=headers).status_code == 401
    assert httpx.put(grant, headers=w.admin).status_code == 204

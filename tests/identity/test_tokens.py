"""Tokens as users see them through openstacksdk, the CLI and raw HTTP."""

from __future__ import annotations

import httpx
import pytest
from openstack import exceptions as sdk_exc

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def password_body(user: str, password: str, project: str | None = "admin") -> dict:
    auth: dict = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def issue(cloud: RunningCloud, body: dict, **params: str) -> httpx.Response:
    return httpx.post(f"{cloud.auth_url}/auth/tokens", json=body, params=params)


def test_password_token_has_scope_roles_and_catalog(cloud: RunningCloud) -> None:
    resp = issue(cloud, password_body("admin", ADMIN_PASSWORD))
    assert resp.status_code == 201
    assert resp.headers["X-Subject-Token"]
    assert resp.headers["x-openstack-request-id"].startswith("req-")
    token = resp.json()["token"]
    assert token["methods"] == ["password"]
    assert token["project"]["name"] == "admin"
    assert token["project"]["domain"] == {"id": "default", "name": "Default"}
    assert {"admin", "manager", "member", "reader"} <= {r["name"] for r in token["roles"]}
    types = {entry["type"] for entry in token["catalog"]}
    assert "identity" in types
    assert token["expires_at"].endswith("Z") and token["issued_at"] < token["expires_at"]


def test_nocatalog_and_unscoped(cloud: RunningCloud) -> None:
    resp = issue(cloud, password_body("admin", ADMIN_PASSWORD), nocatalog="1")
    assert "catalog" not in resp.json()["token"]
    body = password_body("admin", ADMIN_PASSWORD, project=None)
    body["auth"]["scope"] = "unscoped"
    token = issue(cloud, body).json()["token"]
    assert "project" not in token and "roles" not in token


def test_wrong_password_is_401_in_keystone_shape(cloud: RunningCloud) -> None:
    resp = issue(cloud, password_body("admin", "wrong"))
    assert resp.status_code == 401
    assert resp.json() == {"error": {"code": 401, "title": "Unauthorized",
                                     "message": "The request you have made requires "
                                                "authentication."}}


@pytest.mark.parametrize("body,field", [
    ({}, "auth"),
    ({"auth": {"identity": {"methods": "password"}}}, "identity.methods"),
    ({"auth": {"identity": {"methods": ["password"]}}}, "identity.password"),
])
def test_malformed_auth_is_400_naming_the_field(cloud: RunningCloud, body: dict,
                                                field: str) -> None:
    resp = issue(cloud, body)
    assert resp.status_code == 400
    assert field in resp.json()["error"]["message"]


def test_malformed_json_is_400(cloud: RunningCloud) -> None:
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", content=b"{nope",
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400


def test_validate_check_and_revoke(cloud: RunningCloud) -> None:
    admin_token = issue(cloud, password_body("admin", ADMIN_PASSWORD)).headers["X-Subject-Token"]
    subject = issue(cloud, password_body("admin", ADMIN_PASSWORD)).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": admin_token, "X-Subject-Token": subject}
    url = f"{cloud.auth_url}/auth/tokens"
    shown = httpx.get(url, headers=headers)
    assert shown.status_code == 200 and shown.json()["token"]["user"]["name"] == "admin"
    assert httpx.head(url, headers=headers).status_code == 200
    assert httpx.delete(url, headers=headers).status_code == 204
    assert httpx.get(url, headers=headers).status_code == 404
    # The revoked token no longer authenticates anything; the other still does.
    assert httpx.get(f"{cloud.auth_url}/projects",
                     headers={"X-Auth-Token": subject}).status_code == 401
    assert httpx.get(f"{cloud.auth_url}/projects",
                     headers={"X-Auth-Token": admin_token}).status_code == 200


def test_no_token_and_garbage_token_are_401(cloud: RunningCloud) -> None:
    assert httpx.get(f"{cloud.auth_url}/projects").status_code == 401
    resp = httpx.get(f"{cloud.auth_url}/projects", headers={"X-Auth-Token": "abc.def"})
    assert resp.status_code == 401
    assert resp.json()["error"]["title"] == "Unauthorized"


def test_rescope_with_token_method_keeps_audit_chain(cloud: RunningCloud) -> None:
    body = password_body("admin", ADMIN_PASSWORD, project=None)
    body["auth"]["scope"] = "unscoped"
    first = issue(cloud, body)
    unscoped = first.headers["X-Subject-Token"]
    rescoped = issue(cloud, {"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert rescoped.status_code == 201
    token = rescoped.json()["token"]
    assert token["project"]["name"] == "admin"
    assert sorted(token["methods"]) == ["password", "token"]
    assert token["audit_ids"][1] == first.json()["token"]["audit_ids"][0]
    assert token["expires_at"] == first.json()["token"]["expires_at"]


def test_sdk_and_cli_token_issue(cloud: RunningCloud) -> None:
    conn = cloud.connect()
    assert conn.identity.get_project(conn.current_project_id).name == "admin"
    out = cloud.cli("token", "issue", "-f", "json")
    assert out["project_id"] == conn.current_project_id


def test_bad_password_through_sdk_raises_unauthorized(cloud: RunningCloud) -> None:
    with pytest.raises(sdk_exc.SDKException, match="HTTP 401"):
        cloud.connect(password="not-it").authorize()


def test_version_discovery(cloud: RunningCloud) -> None:
    root = httpx.get(f"{cloud.url}/identity")
    assert root.status_code == 300
    version = root.json()["versions"]["values"][0]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"][0]["href"] == f"{cloud.url}/identity/v3/"
    v3 = httpx.get(f"{cloud.url}/identity/v3").json()["version"]
    assert v3["id"] == version["id"]


def test_user_validating_own_revoked_token_gets_404(cloud: RunningCloud, name: str) -> None:
    admin = {"X-Auth-Token": issue(cloud, password_body("admin", ADMIN_PASSWORD))
             .headers["X-Subject-Token"]}
    project = httpx.post(f"{cloud.auth_url}/projects", headers=admin,
                         json={"project": {"name": name}}).json()["project"]["id"]
    user = httpx.post(f"{cloud.auth_url}/users", headers=admin, json={"user": {
        "name": name, "password": "pw-" + name, "default_project_id": project}}).json()["user"]
    member = next(r["id"] for r in httpx.get(f"{cloud.auth_url}/roles", headers=admin)
                  .json()["roles"] if r["name"] == "member")
    httpx.put(f"{cloud.auth_url}/projects/{project}/users/{user['id']}/roles/{member}",
              headers=admin)
    own = issue(cloud, password_body(name, "pw-" + name, project=name)).headers[
        "X-Subject-Token"]
    other = issue(cloud, password_body(name, "pw-" + name, project=name)).headers[
        "X-Subject-Token"]
    url = f"{cloud.auth_url}/auth/tokens"
    assert httpx.get(url, headers={"X-Auth-Token": own, "X-Subject-Token": other}) \
        .status_code == 200
    assert httpx.delete(url, headers={"X-Auth-Token": own, "X-Subject-Token": other}) \
        .status_code == 204
    gone = httpx.get(url, headers={"X-Auth-Token": own, "X-Subject-Token": other})
    assert gone.status_code == 404 and gone.json()["error"]["code"] == 404

"""Helpers for the networking tests: raw HTTP with a token, a second (member) project."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cloud import RunningCloud


def token_for(cloud: RunningCloud, user: str, password: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


class Api:
    """httpx against /network/v2.0 with one token; returns responses, asserts nothing."""

    def __init__(self, cloud: RunningCloud, token: str, project_id: str) -> None:
        self.base = f"{cloud.url}/network/v2.0"
        self.project_id = project_id
        self.client = httpx.Client(headers={"X-Auth-Token": token}, timeout=30)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(self.base + path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.client.post(self.base + path, json=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.client.put(self.base + path, json=body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(self.base + path, **kw)

    def create(self, kind: str, **attrs: Any) -> dict[str, Any]:
        plural = {"security_group": "security-groups",
                  "security_group_rule": "security-group-rules",
                  "address_scope": "address-scopes", "rbac_policy": "rbac-policies",
                  "address_group": "address-groups",
                  "policy": "policies"}.get(kind, kind + "s")
        resp = self.post(f"/{plural}", {kind: attrs})
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()[kind]
        return body

    def create_at(self, path: str, kind: str, **attrs: Any) -> dict[str, Any]:
        resp = self.post(path, {kind: attrs})
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()[kind]
        return body

    def network(self, name: str, cidr: str | None = None, **attrs: Any) -> tuple[dict[str, Any],
                                                                                 dict[str, Any]]:
        net = self.create("network", name=name, **attrs)
        subnet: dict[str, Any] = {}
        if cidr:
            subnet = self.create("subnet", network_id=net["id"], cidr=cidr,
                                 ip_version=6 if ":" in cidr else 4, name=name + "-sub")
        return net, subnet


def error(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()["NeutronError"]
    return body


@pytest.fixture(scope="session")
def api(cloud: RunningCloud) -> Api:
    token = token_for(cloud, "admin", "nimbus-test-admin", "admin")
    project = httpx.get(f"{cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
    return Api(cloud, token, project)


@pytest.fixture(scope="session")
def member_account(cloud: RunningCloud) -> dict[str, str]:
    """A project of its own with a user holding the member role on it."""
    admin = cloud.connect()
    suffix = uuid.uuid4().hex[:8]
    project = admin.identity.create_project(name=f"netproj-{suffix}", domain_id="default")
    password = "member-pass-" + suffix
    user = admin.identity.create_user(name=f"netuser-{suffix}", password=password,
                                      domain_id="default", default_project_id=project.id)
    role = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, role)
    return {"user": user.name, "password": password, "project": project.name,
            "project_id": project.id}


@pytest.fixture(scope="session")
def member(cloud: RunningCloud, member_account: dict[str, str]) -> Api:
    token = token_for(cloud, member_account["user"], member_account["password"],
                      member_account["project"])
    return Api(cloud, token, member_account["project_id"])


@pytest.fixture(scope="session")
def member_sdk(cloud: RunningCloud, member_account: dict[str, str]) -> Iterator[Any]:
    yield cloud.connect(user=member_account["user"], password=member_account["password"],
                        project=member_account["project"])

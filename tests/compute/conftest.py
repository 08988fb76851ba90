"""Compute test fixtures: a cloud of its own with three fake hypervisors (host-a, host-b,
host-c), a small image, raw HTTP helpers and a second (member) project."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

HOSTS = ["host-a", "host-b", "host-c"]
SERVICES = ["identity", "placement", "image", "network", "compute"]


def login(cloud: RunningCloud, user: str, password: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


class Api:
    """httpx against /compute/v2.1 with one token; `mv` picks the microversion."""

    def __init__(self, cloud: RunningCloud, token: str, project_id: str, user_id: str,
                 mv: str | None = None) -> None:
        self.cloud = cloud
        self.base = f"{cloud.url}/compute/v2.1"
        self.project_id = project_id
        self.user_id = user_id
        self.token = token
        self.mv = mv
        self.client = httpx.Client(headers={"X-Auth-Token": token}, timeout=60)

    def _headers(self, mv: str | None) -> dict[str, str]:
        version = mv or self.mv
        return {"OpenStack-API-Version": f"compute {version}"} if version else {}

    def get(self, path: str, mv: str | None = None, **kw: Any) -> httpx.Response:
        return self.client.get(self.base + path, headers=self._headers(mv), **kw)

    def post(self, path: str, body: Any = None, mv: str | None = None,
             **kw: Any) -> httpx.Response:
        return self.client.post(self.base + path, json=body, headers=self._headers(mv), **kw)

    def put(self, path: str, body: Any = None, mv: str | None = None,
            **kw: Any) -> httpx.Response:
        return self.client.put(self.base + path, json=body, headers=self._headers(mv), **kw)

    def delete(self, path: str, mv: str | None = None, **kw: Any) -> httpx.Response:
        return self.client.delete(self.base + path, headers=self._headers(mv), **kw)

    def at(self, mv: str) -> Api:
        return Api(self.cloud, self.token, self.project_id, self.user_id, mv)

    def other(self, service: str, path: str) -> str:
        return f"{self.cloud.url}/{service}{path}"

    # -- servers ---------------------------------------------------------------------------------
    def boot(self, name: str, image: str, flavor: str = "42", networks: Any = "none",
             mv: str = "2.100", expect: int = 202, **server: Any) -> dict[str, Any]:
        body = {"server": {"name": name, "imageRef": image, "flavorRef": flavor,
                           "networks": networks, **server}}
        resp = self.post("/servers", body, mv=mv)
        assert resp.status_code == expect, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def server(self, server_id: str, mv: str = "2.100") -> dict[str, Any]:
        resp = self.get(f"/servers/{server_id}", mv=mv)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()["server"]
        return body

    def wait(self, server_id: str, *statuses: str, timeout: float = 30,
             mv: str = "2.100") -> dict[str, Any]:
        wanted = statuses or ("ACTIVE",)
        deadline = time.monotonic() + timeout
        while True:
            server = self.server(server_id, mv=mv)
            if server["status"] in wanted and server.get("OS-EXT-STS:task_state") is None:
                return server
            if time.monotonic() > deadline:
                raise AssertionError(f"server {server_id} is {server['status']}/"
                                     f"{server.get('OS-EXT-STS:task_state')}, not {wanted}: "
                                     f"{server.get('fault')}")
            time.sleep(0.02)

    def wait_gone(self, server_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.get(f"/servers/{server_id}").status_code != 404:
            if time.monotonic() > deadline:
                raise AssertionError(f"server {server_id} was not deleted")
            time.sleep(0.02)

    def action(self, server_id: str, body: dict[str, Any], mv: str = "2.100",
               expect: int = 202) -> httpx.Response:
        resp = self.post(f"/servers/{server_id}/action", body, mv=mv)
        assert resp.status_code == expect, resp.text
        return resp


def net_api(api: Api, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    """A call to the network API with the compute test's token; its JSON, if any."""
    resp = httpx.request(method, api.other("network", path), json=body,
                         headers={"X-Auth-Token": api.token}, **kw)
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else None


def fault(resp: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The single (kind, {code, message}) of a compute error body."""
    body = resp.json()
    assert len(body) == 1, body
    kind, detail = next(iter(body.items()))
    return kind, detail


def _identity(cloud: RunningCloud, token: str) -> tuple[str, str]:
    body = httpx.get(f"{cloud.auth_url}/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]
    return body["project"]["id"], body["user"]["id"]


def wait_for_hosts(cloud: RunningCloud, token: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(f"{cloud.url}/placement/resource_providers",
                         headers={"X-Auth-Token": token})
        if resp.status_code == 200 and len(resp.json()["resource_providers"]) >= count:
            inventories = [httpx.get(f"{cloud.url}/placement/resource_providers/{rp['uuid']}"
                                     "/inventories", headers={"X-Auth-Token": token}).json()
                           for rp in resp.json()["resource_providers"]]
            if all(inv.get("inventories") for inv in inventories):
                return
        time.sleep(0.1)
    raise AssertionError("compute hosts did not register with placement")


@pytest.fixture(scope="session")
def ccloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = RunningCloud(Path(tmp_path_factory.mktemp("compute")), services=SERVICES,
                           compute={"hosts": HOSTS, "fake_vcpus": 8,
                                    "fake_memory_mb": 8192, "fake_disk_gb": 100}).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(ccloud: RunningCloud) -> Api:
    token = login(ccloud, "admin", ADMIN_PASSWORD, "admin")
    project, user = _identity(ccloud, token)
    wait_for_hosts(ccloud, token, len(HOSTS))
    return Api(ccloud, token, project, user)


@pytest.fixture(scope="session")
def image(ccloud: RunningCloud, api: Api) -> str:
    headers = {"X-Auth-Token": api.token}
    resp = httpx.post(api.other("image", "/v2/images"), headers=headers, json={
        "name": "tiny", "disk_format": "raw", "container_format": "bare",
        "visibility": "public", "hw_architecture": "x86_64"})
    assert resp.status_code == 201, resp.text
    image_id: str = resp.json()["id"]
    resp = httpx.put(api.other("image", f"/v2/images/{image_id}/file"),
                     headers={**headers, "Content-Type": "application/octet-stream"},
                     content=b"\0" * 65536)
    assert resp.status_code == 204, resp.text
    return image_id


@dataclass
class Tenant:
    name: str
    password: str
    api: Api

    def connect(self, cloud: RunningCloud) -> Any:
        return cloud.connect(user=self.name, password=self.password, project=self.name)


def make_tenant(cloud: RunningCloud, api: Api, role: str = "member") -> Tenant:
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    headers = {"X-Auth-Token": api.token}
    project = httpx.post(f"{cloud.auth_url}/projects", headers=headers, json={
        "project": {"name": name, "domain_id": "default"}}).json()["project"]
    user = httpx.post(f"{cloud.auth_url}/users", headers=headers, json={"user": {
        "name": name, "password": password, "domain_id": "default",
        "default_project_id": project["id"]}}).json()["user"]
    roles = httpx.get(f"{cloud.auth_url}/roles", headers=headers,
                      params={"name": role}).json()["roles"]
    resp = httpx.put(f"{cloud.auth_url}/projects/{project['id']}/users/{user['id']}/roles/"
                     f"{roles[0]['id']}", headers=headers)
    assert resp.status_code == 204, resp.text
    token = login(cloud, name, password, name)
    return Tenant(name, password, Api(cloud, token, project["id"], user["id"]))


@pytest.fixture(scope="session")
def alice(ccloud: RunningCloud, api: Api) -> Tenant:
    return make_tenant(ccloud, api)


@pytest.fixture(scope="session")
def bob(ccloud: RunningCloud, api: Api) -> Tenant:
    return make_tenant(ccloud, api)

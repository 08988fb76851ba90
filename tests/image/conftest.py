"""Image test fixtures: raw HTTP helpers on the shared cloud, and a second project whose
member is not the image owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud

PATCH = "application/openstack-images-v2.1-json-patch"


def login(cloud: RunningCloud, user: str, password: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


class Api:
    """httpx against /image with a token: the API details the SDK hides."""

    def __init__(self, cloud: RunningCloud, token: str, project_id: str) -> None:
        self.base = f"{cloud.url}/image"
        self.project_id = project_id
        self.client = httpx.Client(base_url=self.base, headers={"X-Auth-Token": token},
                                   timeout=60)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.put(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, **kw)

    def patch(self, path: str, ops: Any, media: str = PATCH, **kw: Any) -> httpx.Response:
        return self.client.patch(path, json=ops, headers={"Content-Type": media}, **kw)

    def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("name", f"t-{uuid.uuid4().hex[:10]}")
        resp = self.post("/v2/images", json=body)
        assert resp.status_code == 201, resp.text
        image: dict[str, Any] = resp.json()
        return image

    def upload(self, image_id: str, data: bytes, **headers: str) -> httpx.Response:
        return self.put(f"/v2/images/{image_id}/file", content=data,
                        headers={"Content-Type": "application/octet-stream", **headers})

    def image(self, image_id: str) -> dict[str, Any]:
        resp = self.get(f"/v2/images/{image_id}")
        assert resp.status_code == 200, resp.text
        image: dict[str, Any] = resp.json()
        return image

    def ids(self, **params: Any) -> list[str]:
        resp = self.get("/v2/images", params={"limit": 1000, **params})
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["images"]]


@pytest.fixture(scope="session")
def api(cloud: RunningCloud, admin: Any) -> Api:
    token = login(cloud, "admin", ADMIN_PASSWORD, "admin")
    return Api(cloud, token, admin.current_project_id)


@dataclass
class Tenant:
    name: str
    project_id: str
    user: str
    password: str
    api: Api

    def connect(self, cloud: RunningCloud) -> Any:
        return cloud.connect(user=self.user, password=self.password, project=self.name)


def make_tenant(cloud: RunningCloud, admin: Any, role: str = "member") -> Tenant:
    name = f"img-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    project = admin.identity.create_project(name=name, domain_id="default")
    user = admin.identity.create_user(name=name, password=password, domain_id="default",
                                      default_project_id=project.id)
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role(role))
    token = login(cloud, name, password, name)
    return Tenant(name, project.id, name, password, Api(cloud, token, project.id))


@pytest.fixture(scope="session")
def alice(cloud: RunningCloud, admin: Any) -> Tenant:
    """A member of a project of her own (not admin)."""
    return make_tenant(cloud, admin)


@pytest.fixture(scope="session")
def bob(cloud: RunningCloud, admin: Any) -> Tenant:
    return make_tenant(cloud, admin)

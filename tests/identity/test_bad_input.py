"""Bad input gets an OpenStack-shaped 4xx naming what was wrong, and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.identity.test_tokens import password_body
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


@pytest.fixture(scope="module")
def headers(cloud: RunningCloud) -> dict[str, str]:
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=password_body("admin", ADMIN_PASSWORD))
    return {"X-Auth-Token": resp.headers["X-Subject-Token"]}


def projects(cloud: RunningCloud, headers: dict[str, str]) -> list[str]:
    return sorted(p["id"] for p in httpx.get(f"{cloud.auth_url}/projects",
                                             headers=headers).json()["projects"])


@pytest.mark.parametrize("body,field", [
    ({"project": {"name": "x" * 65}}, "project.name"),
    ({"project": {"name": 5}}, "project.name"),
    ({"project": {"name": "ok", "enabled": "yes"}}, "project.enabled"),
    ({"project": {}}, "project.name"),
    ({"projects": {"name": "ok"}}, "project"),
    ({"project": {"name": "ok", "tags": ["a/b"]}}, "tags"),
])
def test_invalid_fields_are_400_naming_the_field(cloud: RunningCloud, headers: dict[str, str],
                                                 body: dict, field: str) -> None:
    before = projects(cloud, headers)
    resp = httpx.post(f"{cloud.auth_url}/projects", json=body, headers=headers)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == 400 and error["title"] == "Bad Request"
    assert field in error["message"]
    assert projects(cloud, headers) == before


def test_unknown_resource_is_404_and_unknown_route_too(cloud: RunningCloud,
                                                       headers: dict[str, str]) -> None:
    resp = httpx.get(f"{cloud.auth_url}/projects/nope", headers=headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Could not find project: nope."
    assert httpx.get(f"{cloud.auth_url}/no-such-thing", headers=headers).status_code == 404


def test_oversized_bodies_are_413_with_or_without_a_length(cloud: RunningCloud,
                                                           headers: dict[str, str]) -> None:
    big = b'{"project": {"name": "x", "description": "' + b"y" * (2 * 1024 * 1024) + b'"}}'
    resp = httpx.post(f"{cloud.auth_url}/projects", content=big,
                      headers={**headers, "content-type": "application/json"})
    assert resp.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    resp = httpx.post(f"{cloud.auth_url}/projects", content=chunks(),
                      headers={**headers, "content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == 413


def test_chunked_small_body_still_works(cloud: RunningCloud, headers: dict[str, str],
                                        name: str) -> None:
    body = json.dumps({"project": {"name": name}}).encode()
    resp = httpx.post(f"{cloud.auth_url}/projects", content=iter([body[:10], body[10:]]),
                      headers={**headers, "content-type": "application/json"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["project"]["name"] == name


def test_domain_as_project_through_the_projects_api(cloud: RunningCloud,
                                                   headers: dict[str, str], name: str) -> None:
    base = cloud.auth_url
    created = httpx.post(f"{base}/projects", headers=headers,
                         json={"project": {"name": name, "is_domain": True}})
    assert created.status_code == 201
    project = created.json()["project"]
    assert project["is_domain"] is True and project["domain_id"] is None
    listed = httpx.get(f"{base}/projects", headers=headers, params={"is_domain": "true"})
    assert project["id"] in [p["id"] for p in listed.json()["projects"]]
    domains = httpx.get(f"{base}/domains", headers=headers).json()["domains"]
    assert project["id"] in [d["id"] for d in domains]
    shown = httpx.get(f"{base}/projects/{project['id']}", headers=headers).json()["project"]
    assert shown["is_domain"] is True
    assert httpx.delete(f"{base}/projects/{project['id']}", headers=headers).status_code == 403
    disabled = httpx.patch(f"{base}/projects/{project['id']}", headers=headers,
                           json={"project": {"enabled": False}})
    assert disabled.status_code == 200 and disabled.json()["project"]["enabled"] is False
    assert httpx.delete(f"{base}/projects/{project['id']}", headers=headers).status_code == 204
    assert httpx.get(f"{base}/domains/{project['id']}", headers=headers).status_code == 404

"""Placement test helpers: httpx against /placement with the admin token, at a chosen
microversion, for the details the CLI hides (generations, 409s, error bodies)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def admin_token(cloud: RunningCloud) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


class Placement:
    def __init__(self, cloud: RunningCloud, token: str, version: str = "latest") -> None:
        self.client = httpx.Client(base_url=f"{cloud.url}/placement",
                                   headers={"X-Auth-Token": token}, timeout=60)
        self.version = version

    def at(self, version: str) -> Placement:
        other = Placement.__new__(Placement)
        other.client, other.version = self.client, version
        return other

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"OpenStack-API-Version": f"placement {self.version}",
                   **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    # -- shortcuts -----------------------------------------------------------------------------
    def provider(self, name: str | None = None, parent: str | None = None,
                 **inventory: int) -> str:
        body: dict[str, Any] = {"name": name or f"rp-{uuid.uuid4().hex[:10]}"}
        if parent:
            body["parent_provider_uuid"] = parent
        resp = self.at("1.20").post("/resource_providers", json=body) if not parent else \
            self.at("1.20").post("/resource_providers", json=body)
        assert resp.status_code == 200, resp.text
        rp = str(resp.json()["uuid"])
        if inventory:
            self.inventory(rp, **{k: {"total": v} for k, v in inventory.items()})
        return rp

    def generation(self, rp: str) -> int:
        return int(self.get(f"/resource_providers/{rp}").json()["generation"])

    def inventory(self, rp: str, **inventories: dict[str, Any]) -> dict[str, Any]:
        resp = self.put(f"/resource_providers/{rp}/inventories", json={
            "resource_provider_generation": self.generation(rp), "inventories": inventories})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def traits(self, rp: str, *names: str) -> None:
        for name in names:
            if name.startswith("CUSTOM_"):
                self.put(f"/traits/{name}")
        resp = self.put(f"/resource_providers/{rp}/traits", json={
            "traits": list(names), "resource_provider_generation": self.generation(rp)})
        assert resp.status_code == 200, resp.text

    def aggregates(self, rp: str, *aggs: str) -> None:
        resp = self.put(f"/resource_providers/{rp}/aggregates", json={
            "aggregates": list(aggs), "resource_provider_generation": self.generation(rp)})
        assert resp.status_code == 200, resp.text

    def claim(self, consumer: str, allocations: dict[str, dict[str, int]],
              generation: int | None = None, **extra: Any) -> httpx.Response:
        body = {"allocations": {rp: {"resources": res} for rp, res in allocations.items()},
                "project_id": extra.pop("project_id", "proj"),
                "user_id": extra.pop("user_id", "user"),
                "consumer_generation": generation,
                "consumer_type": extra.pop("consumer_type", "INSTANCE"), **extra}
        return self.put(f"/allocations/{consumer}", json=body)

    def candidates(self, query: str, version: str | None = None) -> dict[str, Any]:
        api = self.at(version) if version else self
        resp = api.get(f"/allocation_candidates?{query}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


def error(resp: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()["errors"][0]
    return body


@pytest.fixture(scope="session")
def pcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    """Identity and placement alone: what placement needs, and no other service's providers
    or half-finished work in the way."""
    running = RunningCloud(tmp_path_factory.mktemp("placement"),
                           services=["identity", "placement"]).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def placement(pcloud: RunningCloud) -> Placement:
    return Placement(pcloud, admin_token(pcloud))


def new_uuid() -> str:
    return str(uuid.uuid4())

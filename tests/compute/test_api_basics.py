"""Version discovery, microversion negotiation and Nova's error bodies."""

from __future__ import annotations

import httpx

from tests.compute.conftest import Api, fault
from tests.support.cloud import RunningCloud


def test_version_documents(ccloud: RunningCloud) -> None:
    root = httpx.get(f"{ccloud.url}/compute/").json()["versions"]
    assert [v["id"] for v in root] == ["v2.0", "v2.1"]
    assert root[1]["min_version"] == "2.1"
    newest = tuple(int(x) for x in root[1]["version"].split("."))
    assert newest >= (2, 100)
    one = httpx.get(f"{ccloud.url}/compute/v2.1/").json()["version"]
    assert one["status"] == "CURRENT"
    assert one["links"][0]["href"].endswith("/compute/v2.1/")
    assert one["media-types"][0]["type"].endswith("version=2.1")


def test_microversion_negotiation(api: Api) -> None:
    resp = api.get("/flavors")
    assert resp.headers["OpenStack-API-Version"] == "compute 2.1"
    assert resp.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in resp.headers["Vary"]
    latest = api.get("/flavors", mv="latest")
    newest = httpx.get(f"{api.cloud.url}/compute/").json()["versions"][1]["version"]
    assert latest.headers["OpenStack-API-Version"] == f"compute {newest}"
    legacy = api.client.get(api.base + "/flavors",
                            headers={"X-OpenStack-Nova-API-Version": "2.55"})
    assert legacy.headers["X-OpenStack-Nova-API-Version"] == "2.55"
    assert "description" in legacy.json()["flavors"][0]
    too_new = api.get("/flavors", mv="2.999")
    assert too_new.status_code == 406
    assert "not supported by the API" in too_new.text
    bad = api.get("/flavors", mv="2.x")
    assert bad.status_code == 400
    assert api.get("/flavors", mv="1.0").status_code == 406


def test_route_only_from_a_microversion_is_404_below(api: Api) -> None:
    resp = api.put("/flavors/1", {"flavor": {"description": "x"}}, mv="2.54")
    assert resp.status_code == 404
    assert fault(resp)[0] == "itemNotFound"


def test_error_bodies_are_novas(api: Api, ccloud: RunningCloud) -> None:
    missing = api.get("/servers/5c8f0f5e-9c7d-4a5e-bb0f-000000000000")
    assert missing.status_code == 404
    kind, detail = fault(missing)
    assert kind == "itemNotFound" and detail["code"] == 404
    assert "could not be found" in detail["message"]
    malformed = api.client.post(api.base + "/flavors", content=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert fault(malformed)[0] == "badRequest"
    anonymous = httpx.get(f"{ccloud.url}/compute/v2.1/flavors")
    assert anonymous.status_code == 401
    assert fault(anonymous)[0] == "unauthorized"
    wrong = api.client.patch(api.base + "/flavors")
    assert wrong.status_code == 405
    assert fault(wrong)[0] == "badMethod"

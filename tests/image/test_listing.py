"""GET /v2/images: filters, sorting, pagination and their 400s."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.image.conftest import Api, Tenant


@pytest.fixture(scope="module")
def catalog(alice: Tenant) -> dict[str, Any]:
    """Five images in alice's project sharing a unique tag."""
    tag = f"set-{uuid.uuid4().hex[:8]}"
    made = []
    for i, (fmt, size) in enumerate([("raw", 3000), ("qcow2", None), ("raw", 1000),
                                     ("iso", None), ("raw", 2000)]):
        img = alice.api.create(name=f"{tag}-{i}", disk_format=fmt, container_format="bare",
                               tags=[tag, f"n{i}"], flavor=f"f{i % 2}",
                               visibility="private" if i == 4 else "shared")
        if size:
            assert alice.api.upload(img["id"], b"\x01" * size).status_code == 204
        made.append(img["id"])
    return {"tag": tag, "ids": made}


def names(api: Api, **params: Any) -> list[str]:
    resp = api.get("/v2/images", params=params)
    assert resp.status_code == 200, resp.text
    return [i["name"].rsplit("-", 1)[1] for i in resp.json()["images"]]


def test_default_order_is_newest_first(alice: Tenant, catalog: dict[str, Any]) -> None:
    assert names(alice.api, tag=catalog["tag"]) == ["4", "3", "2", "1", "0"]


def test_filters(alice: Tenant, catalog: dict[str, Any]) -> None:
    tag = catalog["tag"]
    assert names(alice.api, tag=tag, disk_format="raw") == ["4", "2", "0"]
    assert names(alice.api, tag=tag, disk_format="in:qcow2,iso") == ["3", "1"]
    assert names(alice.api, tag=tag, status="active") == ["4", "2", "0"]
    assert names(alice.api, tag=tag, status="queued") == ["3", "1"]
    assert names(alice.api, tag=tag, visibility="private") == ["4"]
    assert names(alice.api, tag=tag, flavor="f1") == ["3", "1"]
    assert names(alice.api, tag=tag, size_min=1500, size_max=2500) == ["4"]
    assert names(alice.api, tag=tag, size=1000) == ["2"]
    assert names(alice.api, name=f"{tag}-3") == ["3"]
    assert names(alice.api, name=f'in:"{tag}-3",{tag}-0') == ["3", "0"]
    assert names(alice.api, tag=[tag, "n2"]) == ["2"]
    assert names(alice.api, tag=tag, owner=alice.project_id) == ["4", "3", "2", "1", "0"]
    assert names(alice.api, tag=tag, protected="false") == ["4", "3", "2", "1", "0"]
    assert names(alice.api, tag=tag, id=catalog["ids"][1]) == ["1"]
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert names(alice.api, tag=tag, created_at=f"lt:{future}") == ["4", "3", "2", "1", "0"]
    assert names(alice.api, tag=tag, updated_at=f"gte:{future}") == []


def test_sorting(alice: Tenant, catalog: dict[str, Any]) -> None:
    tag = catalog["tag"]
    assert names(alice.api, tag=tag, sort_key="name", sort_dir="asc") == \
        ["0", "1", "2", "3", "4"]
    assert names(alice.api, tag=tag, sort="size:desc,name:asc") == ["0", "4", "2", "1", "3"]
    assert names(alice.api, tag=tag, sort_key=["disk_format", "name"],
                 sort_dir=["asc", "desc"]) == ["3", "1", "4", "2", "0"]


def test_pagination(alice: Tenant, catalog: dict[str, Any]) -> None:
    tag = catalog["tag"]
    seen: list[str] = []
    resp = alice.api.get("/v2/images", params={"tag": tag, "limit": 2, "sort": "name:asc"})
    while True:
        body = resp.json()
        seen += [i["name"].rsplit("-", 1)[1] for i in body["images"]]
        assert body["first"].startswith("/v2/images?")
        if "next" not in body:
            break
        assert body["next"].startswith("/v2/images?") and "marker=" in body["next"]
        resp = alice.api.get(body["next"])
    assert seen == ["0", "1", "2", "3", "4"]
    assert len(alice.api.get("/v2/images", params={"tag": tag, "limit": 0}).json()[
        "images"]) == 0


def test_sdk_paginates(cloud, alice: Tenant, catalog: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    conn = alice.connect(cloud)
    found = [i.name for i in conn.image.images(tag=catalog["tag"], limit=2)]
    assert sorted(found) == sorted(f"{catalog['tag']}-{i}" for i in range(5))


@pytest.mark.parametrize(("params", "words"), [
    ({"limit": -1}, "positive"),
    ({"limit": "many"}, "integer"),
    ({"marker": str(uuid.uuid4())}, "marker"),
    ({"sort_key": "colour"}, "sort key"),
    ({"sort_dir": "sideways"}, "sort direction"),
    ({"sort": "name:asc", "sort_key": "name"}, "combined"),
    ({"sort_key": ["name", "size"], "sort_dir": ["asc", "desc", "asc"]}, "does not match"),
    ({"visibility": "everyone"}, "visibility"),
    ({"member_status": "maybe"}, "status"),
    ({"changes-since": "2020-01-01"}, "changes-since"),
    ({"size_min": "big"}, "size_min"),
    ({"size": str(10**30)}, "out of range"),
    ({"protected": "perhaps"}, "protected"),
    ({"created_at": "gt:yesterday"}, "created_at"),
])
def test_bad_list_parameters(alice: Tenant, params: dict[str, Any], words: str) -> None:
    resp = alice.api.get("/v2/images", params=params)
    assert resp.status_code == 400, resp.text
    assert words in resp.json()["message"]

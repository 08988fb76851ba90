"""The image service in the other wirings: on PostgreSQL and MariaDB, and as a process of its
own (identity elsewhere, tokens checked locally, RabbitMQ for the bus). Data and records
survive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.image import samples
from tests.image.conftest import Api, login
from tests.support import services
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def exercise(api: Api, other: Api | None = None) -> str:
    img = api.create(disk_format="qcow2", container_format="bare", tags=["w"],
                     hw_disk_bus="scsi", min_ram=32)
    assert api.upload(img["id"], samples.qcow2(8 << 30)).status_code == 204
    body = api.image(img["id"])
    assert body["status"] == "active" and body["virtual_size"] == 8 << 30
    assert api.ids(tag="w", hw_disk_bus="scsi", sort="size:desc,name:asc") == [img["id"]]
    resp = api.patch(f"/v2/images/{img['id']}", [
        {"op": "add", "path": "/tags/-", "value": "x" * 255},
        {"op": "add", "path": "/long", "value": "v" * 60000}])
    assert resp.status_code == 200, resp.text
    if other is not None:
        assert api.post(f"/v2/images/{img['id']}/members",
                        json={"member": other.project_id}).status_code == 200
    return str(img["id"])


@pytest.fixture(params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url, name = services.create_database(request.param)
    yield url
    services.drop_database(request.param, name)


def test_image_on_real_databases_survives_restart(tmp_path: Path, database_url: str) -> None:
    state = tmp_path / "state"
    first = RunningCloud(state, services=["identity", "image"], database_url=database_url)
    first.start()
    try:
        conn = first.connect()
        api = Api(first, login(first, "admin", ADMIN_PASSWORD, "admin"),
                  conn.current_project_id)
        image_id = exercise(api)
    finally:
        first.stop()
    second = RunningCloud(state, services=["identity", "image"],
                          database_url=database_url).start()
    try:
        api = Api(second, login(second, "admin", ADMIN_PASSWORD, "admin"), api.project_id)
        body = api.image(image_id)
        assert body["status"] == "active" and len(body["long"]) == 60000
        assert api.get(f"/v2/images/{image_id}/file").content == samples.qcow2(8 << 30)
    finally:
        second.stop()


def test_image_as_a_process_of_its_own(tmp_path: Path) -> None:
    vhost = services.create_vhost()
    bus = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    identity = RunningCloud(tmp_path / "identity", services=["identity"], bus_url=bus).start()
    image = None
    try:
        image = RunningCloud(tmp_path / "image", services=["image"], bus_url=bus,
                             service_urls={"identity": identity.url}).start()
        token = login(identity, "admin", ADMIN_PASSWORD, "admin")
        project = identity.connect().current_project_id
        api = Api(image, token, project)
        exercise(api)
        assert httpx.get(f"{image.url}/image/v2/images").status_code == 401
    finally:
        if image is not None:
            image.stop()
        identity.stop()
        services.delete_vhost(vhost)

"""Compute in the other wirings: on PostgreSQL and MariaDB (records survive a restart), and
with its hypervisors in a process of their own reached over RabbitMQ."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compute.conftest import SERVICES, Api, _identity, login, wait_for_hosts
from tests.support import services
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def tiny_image(api: Api) -> str:
    headers = {"X-Auth-Token": api.token}
    image = httpx.post(api.other("image", "/v2/images"), headers=headers, json={
        "name": "tiny", "disk_format": "raw", "container_format": "bare"}).json()
    httpx.put(api.other("image", f"/v2/images/{image['id']}/file"),
              headers={**headers, "Content-Type": "application/octet-stream"}, content=b"x" * 512)
    image_id: str = image["id"]
    return image_id


def admin_api(cloud: RunningCloud, hosts: int) -> Api:
    token = login(cloud, "admin", ADMIN_PASSWORD, "admin")
    project, user = _identity(cloud, token)
    wait_for_hosts(cloud, token, hosts)
    return Api(cloud, token, project, user)


@pytest.fixture(params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url, name = services.create_database(request.param)
    yield url
    services.drop_database(request.param, name)


def test_compute_on_real_databases_survives_restart(tmp_path: Path, database_url: str) -> None:
    state = tmp_path / "state"
    settings = {"services": SERVICES, "database_url": database_url,
                "compute": {"hosts": ["db-host"]}}
    first = RunningCloud(state, **settings).start()  # type: ignore[arg-type]
    try:
        api = admin_api(first, 1)
        image = tiny_image(api)
        group = api.post("/os-server-groups", {"server_group": {
            "name": "kept", "policy": "affinity"}}, mv="2.64").json()["server_group"]["id"]
        server_id = api.post("/servers", {"server": {
            "name": "persisted", "imageRef": image, "flavorRef": "42", "networks": "none",
            "metadata": {"k": "v"}, "tags": ["t", "b"]}, "os:scheduler_hints": {
            "group": group}}, mv="2.100").json()["server"]["id"]
        assert api.wait(server_id)["OS-EXT-SRV-ATTR:host"] == "db-host"
        api.action(server_id, {"os-stop": None})
        api.wait(server_id, "SHUTOFF")
        doomed = api.boot("doomed", image)["server"]["id"]
        api.wait(doomed)
        api.delete(f"/servers/{doomed}")
        api.wait_gone(doomed)
    finally:
        first.stop()
    second = RunningCloud(state, **settings).start()  # type: ignore[arg-type]
    try:
        api = admin_api(second, 1)
        server = api.server(server_id)
        assert server["status"] == "SHUTOFF" and server["metadata"] == {"k": "v"}
        assert server["tags"] == ["b", "t"] and server["server_groups"] == [group]
        listed = api.get("/servers/detail", mv="2.100").json()["servers"]
        assert [s["tags"] for s in listed] == [["b", "t"]]
        untagged = api.boot("untagged", image)["server"]["id"]
        assert api.wait(untagged)["tags"] == [] and api.server(untagged)["server_groups"] == []
        api.delete(f"/servers/{untagged}")
        api.wait_gone(untagged)
        api.action(server_id, {"os-start": None})
        api.wait(server_id)
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
    finally:
        second.stop()


def test_hypervisors_in_their_own_process_over_rabbitmq(tmp_path: Path) -> None:
    vhost = services.create_vhost()
    bus = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    main = RunningCloud(tmp_path / "main", services=SERVICES, bus_url=bus,
                        compute={"hosts": []}).start()
    node = None
    try:
        node_state = tmp_path / "node"
        node_state.mkdir()
        shutil.copy(tmp_path / "main" / "service-password", node_state / "service-password")
        urls = {name: main.url for name in ("identity", "placement", "image", "network")}
        node = RunningCloud(node_state, services=["compute"], bus_url=bus, service_urls=urls,
                            compute={"hosts": ["node-1"], "fake_hosts": 1,
                                     "api": False}).start()
        assert httpx.get(f"{node.url}/compute/").json() == {
            "compute_agents": ["node-1", "fake-1"]}
        api = admin_api(main, 2)
        hypervisors = {h["hypervisor_hostname"] for h in api.get("/os-hypervisors").json()[
            "hypervisors"]}
        assert hypervisors == {"node-1", "fake-1"}
        image = tiny_image(api)
        nets = httpx.get(api.other("network", "/v2.0/networks"), params={"name": "private"},
                         headers={"X-Auth-Token": api.token}).json()["networks"]
        started = time.monotonic()
        server_id = api.boot("remote", image, networks=[{"uuid": nets[0]["id"]}])[
            "server"]["id"]
        server = api.wait(server_id)
        assert time.monotonic() - started < 10
        assert server["OS-EXT-SRV-ATTR:host"] in ("node-1", "fake-1")
        assert server["addresses"]["private"]
        console = api.action(server_id, {"os-getConsoleOutput": {}}, expect=200)
        assert server["OS-EXT-SRV-ATTR:host"] in console.json()["output"]
        api.action(server_id, {"reboot": {"type": "SOFT"}})
        api.wait(server_id)
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
        ports = httpx.get(api.other("network", "/v2.0/ports"), params={"device_id": server_id},
                          headers={"X-Auth-Token": api.token}).json()["ports"]
        assert ports == []
    finally:
        if node is not None:
            node.stop()
        main.stop()
        services.delete_vhost(vhost)

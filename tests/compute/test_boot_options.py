"""Boot options and host bookkeeping: block device mapping v2 from an image, named security
groups, different_host/same_host hints, power state sync and heartbeats."""

from __future__ import annotations

from typing import Any

import httpx

from tests.compute.conftest import HOSTS, Api
from tests.compute.test_failures import drivers
from tests.compute.test_servers import ports_of, private_network
from tests.support.cloud import RunningCloud


def test_boot_from_a_block_device_mapping_of_an_image(api: Api, image: str) -> None:
    resp = api.post("/servers", {"server": {
        "name": "bdm", "flavorRef": "42", "networks": "none",
        "block_device_mapping_v2": [{"boot_index": 0, "uuid": image, "source_type": "image",
                                     "destination_type": "local",
                                     "delete_on_termination": True}]}}, mv="2.100")
    assert resp.status_code == 202, resp.text
    server = api.wait(resp.json()["server"]["id"])
    assert server["image"]["id"] == image
    volumes = api.post("/servers", {"server": {
        "name": "bdm-vol", "flavorRef": "42", "networks": "none",
        "block_device_mapping_v2": [{"boot_index": 0, "uuid": image, "source_type": "image",
                                     "destination_type": "volume", "volume_size": 1}]}},
        mv="2.100")
    assert volumes.status_code == 400
    nothing = api.post("/servers", {"server": {"name": "x", "flavorRef": "42",
                                               "networks": "none"}}, mv="2.100")
    assert nothing.status_code == 400
    api.delete(f"/servers/{server['id']}")
    api.wait_gone(server["id"])


def test_named_security_groups_on_create(api: Api, image: str) -> None:
    headers = {"X-Auth-Token": api.token}
    group = httpx.post(api.other("network", "/v2.0/security-groups"), headers=headers,
                       json={"security_group": {"name": "boot-sg"}}).json()["security_group"]
    server_id = api.boot("sg-boot", image, networks=[{"uuid": private_network(api)}],
                         security_groups=[{"name": "boot-sg"}])["server"]["id"]
    server = api.wait(server_id)
    assert server["security_groups"] == [{"name": "boot-sg"}]
    [port] = ports_of(api, server_id)
    assert port["security_groups"] == [group["id"]]
    missing = api.post("/servers", {"server": {
        "name": "x", "imageRef": image, "flavorRef": "42",
        "networks": [{"uuid": private_network(api)}],
        "security_groups": [{"name": "no-such"}]}}, mv="2.100")
    assert missing.status_code == 400
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def _boot_with_hints(api: Api, image: str, name: str, hints: dict[str, Any]) -> dict[str, Any]:
    resp = api.post("/servers", {"server": {"name": name, "imageRef": image, "flavorRef": "42",
                                            "networks": "none"},
                                 "os:scheduler_hints": hints}, mv="2.100")
    assert resp.status_code == 202, resp.text
    return api.wait(resp.json()["server"]["id"])


def test_same_and_different_host_hints(api: Api, image: str) -> None:
    first = _boot_with_hints(api, image, "anchor", {})
    near = _boot_with_hints(api, image, "near", {"same_host": [first["id"]]})
    far = _boot_with_hints(api, image, "far", {"different_host": first["id"]})
    assert near["OS-EXT-SRV-ATTR:host"] == first["OS-EXT-SRV-ATTR:host"]
    assert far["OS-EXT-SRV-ATTR:host"] != first["OS-EXT-SRV-ATTR:host"]
    assert near["scheduler_hints"] == {"same_host": [first["id"]]}
    for s in (first, near, far):
        api.delete(f"/servers/{s['id']}")
    for s in (first, near, far):
        api.wait_gone(s["id"])


def test_power_state_sync_and_heartbeats(api: Api, image: str, ccloud: RunningCloud) -> None:
    server = api.wait(api.boot("synced", image)["server"]["id"])
    host = server["OS-EXT-SRV-ATTR:host"]
    fake = drivers(ccloud)[host]
    fake.guests[server["id"]].power_state = 4  # the guest shut itself down

    async def sync(cloud: Any) -> None:
        await cloud.services["compute"].agents.hosts[host].sync_power_states()

    ccloud.call(sync)
    shown = api.server(server["id"])
    assert shown["status"] == "SHUTOFF" and shown["OS-EXT-STS:power_state"] == 4

    async def down_after(cloud: Any, seconds: float) -> None:
        cloud.services["compute"].settings.service_down_time = seconds
        cloud.services["compute"].services_changed()

    ccloud.call(lambda c: down_after(c, 0.001))
    try:
        states = {s["host"]: s["state"] for s in api.get("/os-services").json()["services"]
                  if s["binary"] == "nova-compute"}
        assert all(states[h] == "down" for h in HOSTS)
        assert api.server(server["id"])["host_status"] == "DOWN"
    finally:
        ccloud.call(lambda c: down_after(c, 60.0))
    assert api.server(server["id"])["host_status"] == "UP"
    api.delete(f"/servers/{server['id']}")
    api.wait_gone(server["id"])


def test_kernel_and_ramdisk_of_a_directly_booted_image(api: Api, image: str) -> None:
    """An image that names a kernel and a ramdisk (aki/ari): the server shows them, and a
    rebuild onto an image without them clears them."""
    headers = {"X-Auth-Token": api.token}
    kernel_id, ramdisk_id = "0c1e5b7e-0000-4000-8000-00000000aaaa", \
        "0c1e5b7e-0000-4000-8000-00000000bbbb"
    resp = httpx.post(api.other("image", "/v2/images"), headers=headers, json={
        "name": "direct", "disk_format": "raw", "container_format": "bare",
        "kernel_id": kernel_id, "ramdisk_id": ramdisk_id})
    assert resp.status_code == 201, resp.text
    direct = resp.json()["id"]
    resp = httpx.put(api.other("image", f"/v2/images/{direct}/file"),
                     headers={**headers, "Content-Type": "application/octet-stream"},
                     content=b"\0" * 65536)
    assert resp.status_code == 204, resp.text
    server_id = api.boot("direct", direct)["server"]["id"]
    server = api.wait(server_id)
    assert (server["OS-EXT-SRV-ATTR:kernel_id"], server["OS-EXT-SRV-ATTR:ramdisk_id"]) == (
        kernel_id, ramdisk_id)
    api.action(server_id, {"rebuild": {"imageRef": image}})
    api.wait(server_id)
    server = api.server(server_id)
    assert (server["OS-EXT-SRV-ATTR:kernel_id"], server["OS-EXT-SRV-ATTR:ramdisk_id"]) == (
        "", "")
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)

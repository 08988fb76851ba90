"""Failure paths: no valid host, failed spawns rescheduled elsewhere (up to three hosts),
deletes in every state, and the notifications a boot sends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.compute.conftest import HOSTS, Api
from tests.compute.test_servers import allocations, ports_of, private_network
from tests.support.cloud import RunningCloud


def drivers(ccloud: RunningCloud) -> dict[str, Any]:
    async def get(cloud: Any) -> dict[str, Any]:
        agents = cloud.services["compute"].agents
        return {name: agent.driver for name, agent in agents.hosts.items()}
    result: dict[str, Any] = ccloud.call(get)
    return result


def test_no_valid_host_ends_in_error_with_the_fault(api: Api, image: str) -> None:
    name = f"huge-{uuid.uuid4().hex[:6]}"
    flavor = api.post("/flavors", {"flavor": {"name": name, "ram": 16384, "vcpus": 1,
                                              "disk": 1}}).json()["flavor"]
    server_id = api.boot("too-big", image, flavor=flavor["id"])["server"]["id"]
    server = api.wait(server_id, "ERROR")
    assert server["fault"]["code"] == 500
    assert server["fault"]["message"].startswith("No valid host was found")
    assert allocations(api, server_id) == {}
    events = api.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    detail = api.get(f"/servers/{server_id}/os-instance-actions/{events[0]['request_id']}",
                     mv="2.84").json()["instanceAction"]
    [event] = detail["events"]
    assert event["event"] == "conductor_schedule_and_build_instances"
    assert event["result"] == "Error"
    assert api.delete(f"/servers/{server_id}").status_code == 204
    api.wait_gone(server_id)
    api.delete(f"/flavors/{flavor['id']}")


def test_a_failed_spawn_is_rescheduled_on_another_host(api: Api, image: str,
                                                       ccloud: RunningCloud) -> None:
    fakes = drivers(ccloud)
    net = private_network(api)
    for name in HOSTS[:2]:
        fakes[name].fail_always["spawn"] = "fake spawn failure"
    try:
        server_id = api.boot("retry", image, networks=[{"uuid": net}])["server"]["id"]
        server = api.wait(server_id)
        assert server["OS-EXT-SRV-ATTR:host"] == HOSTS[2]
        [port] = ports_of(api, server_id)
        assert port["binding:host_id"] == HOSTS[2]
        [(rp, _)] = allocations(api, server_id).items()
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
    finally:
        for name in HOSTS[:2]:
            fakes[name].fail_always.clear()


def test_failing_everywhere_exhausts_retries(api: Api, image: str,
                                             ccloud: RunningCloud) -> None:
    fakes = drivers(ccloud)
    net = private_network(api)
    for name in HOSTS:
        fakes[name].fail_always["spawn"] = "fake spawn failure"
    try:
        server_id = api.boot("doomed", image, networks=[{"uuid": net}])["server"]["id"]
        server = api.wait(server_id, "ERROR")
        assert "Exceeded maximum number of retries" in server["fault"]["message"]
        assert ports_of(api, server_id) == []
        assert allocations(api, server_id) == {}
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
    finally:
        for name in HOSTS:
            fakes[name].fail_always.clear()


def test_delete_right_after_create_leaves_nothing(api: Api, image: str) -> None:
    net = private_network(api)
    for _ in range(3):
        server_id = api.boot("flash", image, networks=[{"uuid": net}])["server"]["id"]
        assert api.delete(f"/servers/{server_id}").status_code == 204
        api.wait_gone(server_id)
        for _ in range(50):  # a build already on its way cleans up after itself
            if not ports_of(api, server_id) and not allocations(api, server_id):
                break
            asyncio.run(asyncio.sleep(0.05))
        assert ports_of(api, server_id) == []
        assert allocations(api, server_id) == {}


def test_notifications_for_a_boot(api: Api, image: str, ccloud: RunningCloud) -> None:
    seen: list[dict[str, Any]] = []

    async def listen(cloud: Any) -> Any:
        async def handler(message: dict[str, Any]) -> None:
            seen.append(message)
        return await cloud.bus.subscribe("compute.instance.*", handler)

    sub = ccloud.call(listen)
    try:
        server_id = api.boot("noisy", image)["server"]["id"]
        api.wait(server_id)
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
        for _ in range(100):
            if any(m["event_type"] == "compute.instance.delete.end" and
                   m["payload"].get("instance_id") == server_id for m in seen):
                break
            asyncio.run(asyncio.sleep(0.02))
    finally:
        async def stop(cloud: Any) -> None:
            await sub.stop()
        ccloud.call(stop)
    mine = [m for m in seen if m["payload"].get("instance_id") == server_id]
    types = [m["event_type"] for m in mine]
    for expected in ("compute.instance.update", "compute.instance.create.start",
                     "compute.instance.create.end", "compute.instance.delete.start",
                     "compute.instance.delete.end"):
        assert expected in types, types
    states = [(m["payload"].get("state"), m["payload"].get("task_state"))
              for m in mine if m["event_type"] == "compute.instance.update"]
    assert ("building", "scheduling") in states and ("active", None) in states


def test_builds_wait_for_network_vif_plugged(api: Api, image: str,
                                             ccloud: RunningCloud) -> None:
    """With vif_plugging_timeout set, a build waits for the network service's
    network-vif-plugged event (sent once an L2 agent wired the port); without an agent it
    times out, and the build fails on every host."""
    from nimbus.network.agents.fake import FakeL2Agent

    async def configure(cloud: Any, seconds: float) -> Any:
        settings = cloud.services["compute"].settings
        settings.vif_plugging_timeout = seconds
        return settings

    async def start_agents(cloud: Any) -> list[Any]:
        return [await FakeL2Agent(cloud.bus, host).start() for host in HOSTS]

    async def stop_agents(cloud: Any) -> None:
        for agent in agents:
            await agent.stop()

    net = private_network(api)
    ccloud.call(lambda c: configure(c, 5.0))
    agents = ccloud.call(start_agents)
    try:
        server_id = api.boot("plugged", image, networks=[{"uuid": net}])["server"]["id"]
        server = api.wait(server_id)
        [port] = ports_of(api, server_id)
        assert port["status"] == "ACTIVE"
        host = server["OS-EXT-SRV-ATTR:host"]
        assert any(a.host == host and port["id"] in a.ports for a in agents)
        api.delete(f"/servers/{server_id}")
        api.wait_gone(server_id)
        ccloud.call(stop_agents)
        ccloud.call(lambda c: configure(c, 0.3))
        lonely = api.boot("unplugged", image, networks=[{"uuid": net}])["server"]["id"]
        failed = api.wait(lonely, "ERROR")
        assert "Exceeded maximum number of retries" in failed["fault"]["message"]
        assert ports_of(api, lonely) == []
        api.delete(f"/servers/{lonely}")
        api.wait_gone(lonely)
    finally:
        ccloud.call(lambda c: configure(c, 0.0))

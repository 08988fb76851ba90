"""The agent boundary: agents register over the bus, the server sends each host what to wire,
an agent reports a port ACTIVE, and compute hears network-vif-plugged; agents API, DHCP
scheduling, notifications."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from nimbus.bus import Target
from nimbus.network.agents.fake import FakeL2Agent
from tests.network.conftest import Api
from tests.support.cloud import RunningCloud


class Recorder:
    """A stand-in for compute (or a DHCP agent) on the bus."""

    version = "1.0"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def external_instance_event(self, context: dict[str, Any], events: list[Any]) -> None:
        self.calls.append(("external_instance_event", {"events": events}))

    async def network_update(self, context: dict[str, Any], network: dict[str, Any]) -> None:
        self.calls.append(("network_update", network))

    async def router_update(self, context: dict[str, Any], router: dict[str, Any]) -> None:
        self.calls.append(("router_update", router))

    async def router_deleted(self, context: dict[str, Any], router_id: str) -> None:
        self.calls.append(("router_deleted", {"id": router_id}))


def wait_for(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def lone_cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Identity and network only: here a stand-in plays compute on the bus (in the shared
    cloud the real compute service takes the events)."""
    running = RunningCloud(tmp_path_factory.mktemp("lone"), services=["identity", "network"])
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lone_api(lone_cloud: RunningCloud) -> Api:
    from tests.network.conftest import token_for
    from tests.support.cloud import ADMIN_PASSWORD

    return Api(lone_cloud, token_for(lone_cloud, "admin", ADMIN_PASSWORD, "admin"), "")


def start_agent(cloud: RunningCloud) -> FakeL2Agent:
    host = f"node-{uuid.uuid4().hex[:6]}"

    async def start(c: Any) -> FakeL2Agent:
        return await FakeL2Agent(c.bus, host).start()

    agent: FakeL2Agent = cloud.call(start)
    return agent


@pytest.fixture
def agent(cloud: RunningCloud) -> Any:
    host = f"node-{uuid.uuid4().hex[:6]}"

    async def start(c: Any) -> FakeL2Agent:
        return await FakeL2Agent(c.bus, host).start()

    running = cloud.call(start)
    yield running

    async def stop(c: Any) -> None:
        await running.stop()

    cloud.call(stop)


def test_bound_port_is_wired_reported_active_and_compute_is_told(
        lone_cloud: RunningCloud, lone_api: Api, name: str) -> None:
    compute = Recorder()
    server = lone_cloud.call(lambda c: c.bus.serve(Target("compute"), compute))
    agent = start_agent(lone_cloud)
    api = lone_api
    net, sub = api.network(name, "10.70.0.0/24")
    server_id = str(uuid.uuid4())
    port = api.create("port", network_id=net["id"], device_owner="compute:nova",
                      device_id=server_id, **{"binding:host_id": agent.host})
    assert port["status"] == "DOWN"
    wired = wait_for(lambda: agent.ports.get(port["id"]))
    assert wired["network"]["bridge"] == "brq" + net["id"][:11]
    assert wired["network"]["segmentation_id"] == net["provider:segmentation_id"]
    assert wired["fixed_ips"][0]["ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert wired["mac_address"] == port["mac_address"]
    rules = wired["security_group_rules"]
    assert {(r["direction"], r["ethertype"]) for r in rules} == {
        ("ingress", "IPv4"), ("ingress", "IPv6"), ("egress", "IPv4"), ("egress", "IPv6")}
    ingress = next(r for r in rules if r["direction"] == "ingress" and r["ethertype"] == "IPv4")
    assert port["fixed_ips"][0]["ip_address"] in ingress["remote_ips"]
    wait_for(lambda: api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE")
    event = wait_for(lambda: compute.calls)[0][1]["events"][0]
    assert event == {"name": "network-vif-plugged", "server_uuid": server_id,
                     "tag": port["id"], "status": "completed"}
    sg = port["security_groups"][0]
    rule = api.create("security_group_rule", security_group_id=sg, direction="ingress",
                      protocol="tcp", port_range_min=22, port_range_max=22)
    wait_for(lambda: [sg] in agent.security_group_updates)
    api.delete(f"/security-group-rules/{rule['id']}")
    assert api.delete(f"/ports/{port['id']}").status_code == 204
    wait_for(lambda: ("port_delete", {"port_id": port["id"], "network_id": net["id"]})
             in agent.received)
    lone_cloud.call(lambda c: agent.stop())
    lone_cloud.call(lambda c: server.stop())


def test_rebinding_moves_the_port(cloud: RunningCloud, api: Api, agent: FakeL2Agent,
                                  name: str) -> None:
    net, _ = api.network(name, "10.71.0.0/24")
    port = api.create("port", network_id=net["id"])
    assert port["binding:vif_type"] == "unbound" and not agent.ports
    api.put(f"/ports/{port['id']}", {"port": {"binding:host_id": agent.host}})
    wait_for(lambda: port["id"] in agent.ports)
    api.put(f"/ports/{port['id']}", {"port": {"binding:host_id": "elsewhere"}})
    wait_for(lambda: port["id"] not in agent.ports)
    assert api.get(f"/ports/{port['id']}").json()["port"]["status"] == "DOWN"


def test_agents_api(api: Api, member: Api, agent: FakeL2Agent) -> None:
    listed = api.get("/agents", params={"host": agent.host}).json()["agents"]
    assert len(listed) == 1
    found = listed[0]
    assert found["agent_type"] == "Linux bridge agent" and found["alive"] is True
    assert member.get("/agents").json() == {"agents": []}
    assert member.get(f"/agents/{found['id']}").status_code == 403
    upd = api.put(f"/agents/{found['id']}", {"agent": {"description": "rack 4",
                                                       "admin_state_up": False}})
    assert upd.json()["agent"]["description"] == "rack 4"
    assert api.put(f"/agents/{found['id']}", {"agent": {"host": "x"}}).status_code == 400
    assert api.delete(f"/agents/{found['id']}").status_code == 204
    assert api.get(f"/agents/{found['id']}").status_code == 404


def test_dhcp_agents_are_scheduled_and_updated(cloud: RunningCloud, api: Api,
                                               name: str) -> None:
    host = f"dhcp-{uuid.uuid4().hex[:6]}"
    recorder = Recorder()

    async def start(c: Any) -> Any:
        server = await c.bus.serve(Target("dhcp-agent", server=host), recorder)
        await c.bus.call(Target("network-server"), "report_state", agent={
            "agent_type": "DHCP agent", "binary": "nimbus-dhcp-agent", "host": host,
            "topic": "dhcp-agent"})
        return server

    server = cloud.call(start)
    try:
        net, sub = api.network(name, "10.72.0.0/24")
        agents = api.get(f"/networks/{net['id']}/dhcp-agents").json()["agents"]
        assert host in {a["host"] for a in agents}
        first = wait_for(lambda: [c for c in recorder.calls if c[0] == "network_update"])
        assert first[0][1]["subnets"][0]["cidr"] == "10.72.0.0/24"
        port = api.create("port", network_id=net["id"])
        wait_for(lambda: any(e["port_id"] == port["id"] for _, n in recorder.calls
                             for e in n["entries"]))
        agent_id = next(a["id"] for a in agents if a["host"] == host)
        assert net["id"] in {n["id"] for n in api.get(
            f"/agents/{agent_id}/dhcp-networks").json()["networks"]}
        assert api.delete(f"/agents/{agent_id}/dhcp-networks/{net['id']}").status_code == 204
        assert api.post(f"/agents/{agent_id}/dhcp-networks",
                        {"network_id": net["id"]}).status_code == 201
        again = api.post(f"/agents/{agent_id}/dhcp-networks", {"network_id": net["id"]})
        assert again.status_code == 409
    finally:
        cloud.call(lambda c: server.stop())


def test_every_change_is_notified(cloud: RunningCloud, api: Api, name: str) -> None:
    seen: list[str] = []

    async def on(message: dict[str, Any]) -> None:
        seen.append(message["event_type"])

    async def subscribe(c: Any) -> Any:
        return await c.bus.subscribe("*.end", on)

    sub = cloud.call(subscribe)
    try:
        net, subnet = api.network(name, "10.73.0.0/24")
        port = api.create("port", network_id=net["id"])
        api.put(f"/ports/{port['id']}", {"port": {"name": "x"}})
        api.delete(f"/ports/{port['id']}")
        api.delete(f"/networks/{net['id']}")
        wanted = ["network.create.end", "subnet.create.end", "port.create.end",
                  "port.update.end", "port.delete.end", "network.delete.end"]
        wait_for(lambda: all(w in seen for w in wanted))
    finally:
        cloud.call(lambda c: sub.stop())


def test_l3_agents_get_their_routers(cloud: RunningCloud, api: Api, name: str) -> None:
    host = f"l3-{uuid.uuid4().hex[:6]}"
    recorder = Recorder()

    async def start(c: Any) -> Any:
        server = await c.bus.serve(Target("l3-agent", server=host), recorder)
        await c.bus.call(Target("network-server"), "report_state", agent={
            "agent_type": "L3 agent", "binary": "nimbus-l3-agent", "host": host,
            "topic": "l3-agent"})
        return server

    server = cloud.call(start)
    try:
        public = api.get("/networks", params={"name": "public"}).json()["networks"][0]
        net, sub = api.network(name, "10.74.0.0/24")
        router = api.create("router", name=name,
                            external_gateway_info={"network_id": public["id"]})
        api.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
        port = api.create("port", network_id=net["id"])
        fip = api.create("floatingip", floating_network_id=public["id"], port_id=port["id"])

        def latest() -> Any:
            ups = [r for k, r in recorder.calls if k == "router_update"
                   and r["id"] == router["id"] and r["floating_ips"]]
            return ups[-1] if ups else None

        built = wait_for(latest)
        assert built["namespace"] == "qrouter-" + router["id"]
        assert built["gateway"]["fixed_ips"][0]["cidr"] == "172.24.4.0/24"
        assert built["interfaces"][0]["fixed_ips"][0]["ip_address"] == "10.74.0.1"
        assert built["floating_ips"][0]["floating_ip_address"] == fip["floating_ip_address"]
        agents = api.get(f"/routers/{router['id']}/l3-agents").json()["agents"]
        assert [a["host"] for a in agents] == [host]

        async def resync(c: Any) -> Any:
            return await c.bus.call(Target("network-server"), "get_routers", host=host)

        assert router["id"] in {r["id"] for r in cloud.call(resync)}
        api.delete(f"/floatingips/{fip['id']}")
        api.put(f"/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]})
        api.delete(f"/routers/{router['id']}")
        wait_for(lambda: ("router_deleted", {"id": router["id"]}) in recorder.calls)
    finally:
        cloud.call(lambda c: server.stop())


def test_dhcp_port_is_made_for_the_asking_agent(cloud: RunningCloud, api: Api,
                                                name: str) -> None:
    net, sub = api.network(name, "10.75.0.0/24")

    async def ask(c: Any) -> Any:
        return await c.bus.call(Target("network-server"), "get_dhcp_port",
                                network_id=net["id"], host="dhcp-host-1")

    port = cloud.call(ask)
    assert port["device_owner"] == "network:dhcp"
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert cloud.call(ask)["id"] == port["id"]  # one per agent and network
    assert api.delete(f"/networks/{net['id']}").status_code == 204  # it goes along

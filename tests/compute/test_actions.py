"""Server actions that keep the server where it is: power and state changes, lock, rescue,
reset state, console, security groups; metadata, tags, addresses, instance actions."""

from __future__ import annotations

import httpx
import pytest

from tests.compute.conftest import Api, Tenant, fault
from tests.compute.test_servers import ports_of, private_network


@pytest.fixture(scope="module")
def server(api: Api, image: str) -> str:
    net = private_network(api)
    server_id: str = api.boot("actions", image, networks=[{"uuid": net}])["server"]["id"]
    api.wait(server_id)
    return server_id


def state(api: Api, server_id: str) -> tuple[str, int]:
    s = api.server(server_id)
    return s["status"], s["OS-EXT-STS:power_state"]


def test_power_cycle(api: Api, server: str) -> None:
    steps = [({"os-stop": None}, "SHUTOFF", 4), ({"os-start": None}, "ACTIVE", 1),
             ({"reboot": {"type": "SOFT"}}, "ACTIVE", 1),
             ({"reboot": {"type": "HARD"}}, "ACTIVE", 1),
             ({"pause": None}, "PAUSED", 3), ({"unpause": None}, "ACTIVE", 1),
             ({"suspend": None}, "SUSPENDED", 7), ({"resume": None}, "ACTIVE", 1)]
    for body, status, power in steps:
        api.action(server, body)
        api.wait(server, status)
        assert state(api, server) == (status, power), body
    actions = [a["action"] for a in api.get(f"/servers/{server}/os-instance-actions").json()[
        "instanceActions"]]
    assert actions[:8] == ["resume", "suspend", "unpause", "pause", "reboot", "reboot",
                           "start", "stop"]
    last = api.get(f"/servers/{server}/os-instance-actions").json()["instanceActions"][0]
    detail = api.get(f"/servers/{server}/os-instance-actions/{last['request_id']}",
                     mv="2.62").json()["instanceAction"]
    [event] = detail["events"]
    assert event["event"] == "compute_resume_instance" and event["result"] == "Success"
    assert event["host"] and event["hostId"]


def test_invalid_transitions_are_409_with_novas_message(api: Api, server: str) -> None:
    resp = api.action(server, {"os-start": None}, expect=409)
    kind, detail = fault(resp)
    assert kind == "conflictingRequest"
    assert detail["message"] == (f"Cannot 'start' instance {server} while it is in vm_state "
                                 "active")
    api.action(server, {"unpause": None}, expect=409)
    api.action(server, {"resume": None}, expect=409)
    api.action(server, {"unrescue": None}, expect=409)
    api.action(server, {"confirmResize": None}, expect=409)
    bad = api.action(server, {"reboot": {"type": "GENTLE"}}, expect=400)
    assert fault(bad)[0] == "badRequest"
    unknown = api.action(server, {"fly": None}, expect=400)
    assert "There is no such action: fly" in fault(unknown)[1]["message"]


def test_lock_rescue_and_reset_state(api: Api, server: str, alice: Tenant, image: str) -> None:
    owned = alice.api.boot("locked", image)["server"]["id"]
    alice.api.wait(owned)
    alice.api.action(owned, {"lock": {"locked_reason": "maintenance"}}, mv="2.73")
    shown = alice.api.server(owned)
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance"
    blocked = alice.api.action(owned, {"os-stop": None}, expect=409)
    assert fault(blocked)[1]["message"] == f"Instance {owned} is locked"
    assert alice.api.delete(f"/servers/{owned}").status_code == 409
    locked = alice.api.get("/servers/detail", params={"locked": "true"}, mv="2.73").json()
    assert [s["id"] for s in locked["servers"]] == [owned]
    alice.api.action(owned, {"unlock": None})
    alice.api.action(owned, {"lock": None})
    api.action(owned, {"os-stop": None})  # admins pass locks
    api.wait(owned, "SHUTOFF")
    alice.api.action(owned, {"unlock": None})
    rescued = alice.api.action(owned, {"rescue": {"adminPass": "s3cret"}}, expect=200)
    assert rescued.json() == {"adminPass": "s3cret"}
    alice.api.wait(owned, "RESCUE")
    alice.api.action(owned, {"unrescue": None})
    alice.api.wait(owned, "ACTIVE")
    assert alice.api.action(owned, {"os-resetState": {"state": "error"}},
                            expect=403).status_code == 403
    api.action(owned, {"os-resetState": {"state": "error"}})
    assert alice.api.server(owned)["status"] == "ERROR"
    api.action(owned, {"os-resetState": {"state": "active"}})
    assert alice.api.server(owned)["status"] == "ACTIVE"
    alice.api.delete(f"/servers/{owned}")
    alice.api.wait_gone(owned)


def test_console_output_and_diagnostics(api: Api, server: str) -> None:
    whole = api.action(server, {"os-getConsoleOutput": {}}, expect=200).json()["output"]
    assert "is up" in whole
    two = api.action(server, {"os-getConsoleOutput": {"length": 2}}, expect=200).json()["output"]
    assert len(two.split("\n")) == 2
    diag = api.get(f"/servers/{server}/diagnostics", mv="2.48").json()
    assert diag["driver"] == "libvirt" and diag["num_cpus"] == 1 and diag["num_nics"] == 1
    legacy = api.get(f"/servers/{server}/diagnostics").json()
    assert "cpu0_time" in legacy and "memory" in legacy


def test_security_groups(api: Api, server: str) -> None:
    headers = {"X-Auth-Token": api.token}
    group = httpx.post(api.other("network", "/v2.0/security-groups"), headers=headers,
                       json={"security_group": {"name": "web-sg"}}).json()["security_group"]
    api.action(server, {"addSecurityGroup": {"name": "web-sg"}})
    [port] = ports_of(api, server)
    assert group["id"] in port["security_groups"]
    names = {g["name"] for g in api.server(server)["security_groups"]}
    assert "web-sg" in names
    again = api.action(server, {"addSecurityGroup": {"name": "web-sg"}}, expect=400)
    assert "already associated" in fault(again)[1]["message"]
    api.action(server, {"removeSecurityGroup": {"name": "web-sg"}})
    [port] = ports_of(api, server)
    assert group["id"] not in port["security_groups"]
    api.action(server, {"addSecurityGroup": {"name": "no-such-sg"}}, expect=404)


def test_metadata(api: Api, server: str) -> None:
    base = f"/servers/{server}/metadata"
    assert api.put(base, {"metadata": {"a": "1", "b": "2"}}).json() == {
        "metadata": {"a": "1", "b": "2"}}
    assert api.post(base, {"metadata": {"b": "3", "c": "4"}}).json()["metadata"] == {
        "a": "1", "b": "3", "c": "4"}
    assert api.get(f"{base}/b").json() == {"meta": {"b": "3"}}
    assert api.put(f"{base}/d", {"meta": {"d": "5"}}).json() == {"meta": {"d": "5"}}
    assert api.put(f"{base}/d", {"meta": {"e": "5"}}).status_code == 400
    assert api.put(f"{base}/d", {"meta": {"d": "5", "e": "6"}}).status_code == 400
    assert api.delete(f"{base}/a").status_code == 204
    assert api.get(f"{base}/a").status_code == 404
    assert api.get(base).json()["metadata"] == {"b": "3", "c": "4", "d": "5"}
    assert api.server(server)["metadata"] == {"b": "3", "c": "4", "d": "5"}
    assert api.post(base, {"metadata": {"bad/key": "x"}}).status_code == 400
    too_many = api.put(base, {"metadata": {f"k{i}": "v" for i in range(200)}})
    assert too_many.status_code == 403


def test_tags(api: Api, server: str) -> None:
    base = f"/servers/{server}/tags"
    assert api.get(base, mv="2.25").status_code == 404
    assert api.put(base, {"tags": ["x", "y"]}, mv="2.26").json() == {"tags": ["x", "y"]}
    assert api.put(f"{base}/z", mv="2.26").status_code == 201
    assert api.put(f"{base}/z", mv="2.26").status_code == 204
    assert api.get(f"{base}/z", mv="2.26").status_code == 204
    assert api.get(f"{base}/nope", mv="2.26").status_code == 404
    assert api.delete(f"{base}/x", mv="2.26").status_code == 204
    assert api.get(base, mv="2.26").json() == {"tags": ["y", "z"]}
    assert api.put(f"{base}/a,b", mv="2.26").status_code == 400
    assert api.put(base, {"tags": [f"t{i}" for i in range(51)]}, mv="2.26").status_code == 400
    assert api.delete(base, mv="2.26").status_code == 204
    assert api.get(base, mv="2.26").json() == {"tags": []}


def test_ips(api: Api, server: str) -> None:
    ips = api.get(f"/servers/{server}/ips").json()["addresses"]
    assert list(ips) == ["private"]
    assert set(ips["private"][0]) == {"version", "addr"}
    assert api.get(f"/servers/{server}/ips/private").json()["private"] == ips["private"]
    assert api.get(f"/servers/{server}/ips/nowhere").status_code == 404


def test_removing_every_security_group(api: Api, image: str) -> None:
    server_id = api.boot("bare-sg", image, networks=[{"uuid": private_network(api)}])[
        "server"]["id"]
    assert api.wait(server_id)["security_groups"] == [{"name": "default"}]
    api.action(server_id, {"removeSecurityGroup": {"name": "default"}})
    assert "security_groups" not in api.server(server_id)
    [port] = ports_of(api, server_id)
    assert port["security_groups"] == []
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)

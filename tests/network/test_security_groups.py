"""Security groups and rules: the default group on first use, rule validation and conflicts,
in-use deletion, the CLI."""

from __future__ import annotations

from tests.network.conftest import Api, error
from tests.support.cloud import RunningCloud


def test_default_group_exists_on_first_use_with_upstream_rules(member: Api) -> None:
    groups = member.get("/security-groups", params={"name": "default"}).json()
    assert len(groups["security_groups"]) == 1
    sg = groups["security_groups"][0]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in sg["security_group_rules"]}
    assert rules == {("ingress", "IPv4", sg["id"]), ("ingress", "IPv6", sg["id"]),
                     ("egress", "IPv4", None), ("egress", "IPv6", None)}
    again = member.get("/security-groups", params={"name": "default"}).json()
    assert [g["id"] for g in again["security_groups"]] == [sg["id"]]
    dup = member.post("/security-groups", {"security_group": {"name": "default"}})
    assert dup.status_code == 409
    cannot = member.delete(f"/security-groups/{sg['id']}")
    assert cannot.status_code == 409
    rename = member.put(f"/security-groups/{sg['id']}", {"security_group": {"name": "x"}})
    assert rename.status_code == 409


def test_rules_validation_and_conflicts(member: Api, name: str) -> None:
    sg = member.create("security_group", name=name, description="web")
    assert {r["direction"] for r in sg["security_group_rules"]} == {"egress"}
    sid = sg["id"]

    def rule(**attrs: object) -> tuple[int, str]:
        resp = member.post("/security-group-rules", {"security_group_rule": {
            "security_group_id": sid, "direction": "ingress", **attrs}})
        return resp.status_code, (error(resp)["type"] if resp.status_code >= 400
                                  else resp.json()["security_group_rule"]["id"])

    status, _ = rule(protocol="tcp", port_range_min=80, port_range_max=80,
                     remote_ip_prefix="10.0.0.5/24")
    assert status == 201
    assert rule(protocol="tcp", port_range_min=80, port_range_max=80,
                remote_ip_prefix="10.0.0.0/24") == (409, "SecurityGroupRuleExists")
    assert rule(protocol="6", port_range_min=80, port_range_max=80,
                remote_ip_prefix="10.0.0.0/24") == (409, "SecurityGroupRuleExists")
    assert rule(protocol="tcp", port_range_min=90, port_range_max=80)[1] == \
        "SecurityGroupInvalidPortRange"
    assert rule(protocol="icmp", port_range_min=300)[1] == "SecurityGroupInvalidIcmpValue"
    assert rule(protocol="gre", port_range_min=1, port_range_max=2)[0] == 400
    assert rule(protocol="bogus")[1] == "SecurityGroupRuleInvalidProtocol"
    assert rule(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")[1] == \
        "SecurityGroupRuleParameterConflict"
    assert rule(remote_ip_prefix="10.0.0.0/8", remote_group_id=sid)[0] == 400
    assert rule(remote_group_id="00000000-0000-0000-0000-000000000000")[0] == 404
    assert rule(direction="sideways")[0] == 400
    status, icmp = rule(protocol="icmp", port_range_min=8, port_range_max=0)
    assert status == 201
    shown = member.get(f"/security-group-rules/{icmp}").json()["security_group_rule"]
    assert shown["protocol"] == "icmp" and shown["port_range_min"] == 8
    listed = member.get("/security-group-rules", params={"security_group_id": sid}).json()
    assert len(listed["security_group_rules"]) == 4
    assert member.delete(f"/security-group-rules/{icmp}").status_code == 204
    assert member.get(f"/security-group-rules/{icmp}").status_code == 404


def test_group_in_use_cannot_be_deleted(member: Api, name: str) -> None:
    sg = member.create("security_group", name=name)
    net, _ = member.network(name, "10.80.0.0/24")
    port = member.create("port", network_id=net["id"], security_groups=[sg["id"]])
    assert port["security_groups"] == [sg["id"]]
    resp = member.delete(f"/security-groups/{sg['id']}")
    assert resp.status_code == 409 and error(resp)["type"] == "SecurityGroupInUse"
    member.put(f"/ports/{port['id']}", {"port": {"security_groups": []}})
    assert member.delete(f"/security-groups/{sg['id']}").status_code == 204


def test_other_projects_groups_are_invisible(api: Api, member: Api, name: str) -> None:
    theirs = api.create("security_group", name=name)
    assert member.get(f"/security-groups/{theirs['id']}").status_code == 404
    net, _ = member.network(name, "10.81.0.0/24")
    resp = member.post("/ports", {"port": {"network_id": net["id"],
                                           "security_groups": [theirs["id"]]}})
    assert resp.status_code == 404


def test_cli_security_group_and_rule(cloud: RunningCloud, name: str) -> None:
    sg = cloud.cli("security", "group", "create", name, "-f", "json")
    rule = cloud.cli("security", "group", "rule", "create", "--protocol", "tcp",
                     "--dst-port", "22", "--remote-ip", "0.0.0.0/0", name, "-f", "json")
    assert rule["port_range_min"] == 22 and rule["security_group_id"] == sg["id"]
    cloud.cli("security", "group", "delete", name)


def test_address_groups_as_rule_remotes(member: Api, name: str) -> None:
    ag = member.create("address_group", name=name, addresses=["10.5.0.0/16", "192.168.1.1"])
    assert ag["addresses"] == ["10.5.0.0/16", "192.168.1.1/32"]
    grown = member.put(f"/address-groups/{ag['id']}/add_addresses",
                       {"addresses": ["10.6.0.0/16"]}).json()["address_group"]
    assert len(grown["addresses"]) == 3
    missing = member.put(f"/address-groups/{ag['id']}/remove_addresses",
                         {"addresses": ["10.7.0.0/16"]})
    assert missing.status_code == 400
    sg = member.create("security_group", name=name)
    rule = member.create("security_group_rule", security_group_id=sg["id"],
                         direction="ingress", remote_address_group_id=ag["id"])
    assert rule["remote_address_group_id"] == ag["id"]
    assert member.delete(f"/address-groups/{ag['id']}").status_code == 409
    member.delete(f"/security-group-rules/{rule['id']}")
    assert member.delete(f"/address-groups/{ag['id']}").status_code == 204

"""The metadata service's content, asked over the bus as the network side's proxy asks it
(topic compute-metadata): every OpenStack document and EC2 listing a guest reads, for a
server booted with a key pair, metadata items, user data, a tagged port on a static subnet
and a floating IP; 404 for unknown instances and paths."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from typing import Any

import pytest

from nimbus.bus import Target
from nimbus.cloud import Cloud
from tests.compute.conftest import Api, net_api
from tests.compute.test_keypairs import public_key
from tests.support.cloud import RunningCloud

OS_VERSIONS = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
               "2016-10-06", "2017-02-22", "2018-08-27", "latest"]
EC2_VERSIONS = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
                "2008-02-01", "2008-09-01", "2009-04-04", "latest"]
USER_DATA = "#!/bin/sh\necho 'hello from user data'\n"


def ask(cloud: RunningCloud, instance: str, path: str, remote: str = "") -> dict[str, Any]:
    async def call(c: Cloud) -> dict[str, Any]:
        answer: dict[str, Any] = await c.bus.call(
            Target("compute-metadata"), "get", instance_uuid=instance, path=path,
            remote_address=remote)
        return answer
    result: dict[str, Any] = cloud.call(call)
    return result


@dataclass
class Booted:
    id: str
    server: dict[str, Any]
    key_name: str
    key: str
    private_ip: str
    static_ip: str
    private_port: dict[str, Any]
    static_port: dict[str, Any]
    static_net: str
    floating_ip: str


@pytest.fixture(scope="module")
def booted(ccloud: RunningCloud, api: Api, image: str) -> Booted:
    key_name, key = "md-key", public_key()
    resp = api.post("/os-keypairs", {"keypair": {"name": key_name, "public_key": key}})
    assert resp.status_code in (200, 201), resp.text
    private = net_api(api, "GET", "/v2.0/networks", params={"name": "private"})[
        "networks"][0]["id"]
    static = net_api(api, "POST", "/v2.0/networks", {"network": {"name": "md-static"}})[
        "network"]["id"]
    net_api(api, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": static, "ip_version": 4, "cidr": "10.77.0.0/24", "enable_dhcp": False,
        "gateway_ip": "10.77.0.1", "dns_nameservers": ["10.77.0.53"],
        "host_routes": [{"destination": "192.168.50.0/24", "nexthop": "10.77.0.254"}]}})
    created = api.boot("md-web", image, key_name=key_name,
                       networks=[{"uuid": private}, {"uuid": static, "tag": "storage"}],
                       metadata={"role": "web", "tier": "1"},
                       user_data=base64.b64encode(USER_DATA.encode()).decode())
    server = api.wait(created["server"]["id"])
    ports = net_api(api, "GET", "/v2.0/ports", params={"device_id": server["id"]})["ports"]
    by_net = {p["network_id"]: p for p in ports}
    public = net_api(api, "GET", "/v2.0/networks", params={"name": "public"})[
        "networks"][0]["id"]
    fip = net_api(api, "POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public, "port_id": by_net[private]["id"]}})["floatingip"]
    return Booted(server["id"], server, key_name, key,
                  by_net[private]["fixed_ips"][0]["ip_address"],
                  by_net[static]["fixed_ips"][0]["ip_address"], by_net[private],
                  by_net[static], static, fip["floating_ip_address"])


@pytest.fixture(scope="module")
def plain(ccloud: RunningCloud, api: Api, image: str) -> dict[str, Any]:
    """A server with no key, no metadata, no user data and no network."""
    return api.wait(api.boot("md-plain", image)["server"]["id"])


def ok(answer: dict[str, Any], content_type: str = "text/plain") -> str:
    assert answer["status"] == 200, answer
    assert answer["content_type"] == content_type
    body: str = answer["body"]
    return body


def test_openstack_versions_and_listings(ccloud: RunningCloud, booted: Booted,
                                         plain: dict[str, Any]) -> None:
    for path in ("/openstack", "/openstack/"):
        assert ok(ask(ccloud, booted.id, path)) == "\n".join(OS_VERSIONS)
    everything = ["meta_data.json", "user_data", "password", "vendor_data.json",
                  "network_data.json", "vendor_data2.json"]
    for path in ("/openstack/latest", "/openstack/latest/", "/openstack/2018-08-27/"):
        assert ok(ask(ccloud, booted.id, path)).split("\n") == everything
    assert ok(ask(ccloud, booted.id, "/openstack/2012-08-10")) == "meta_data.json\nuser_data"
    assert ok(ask(ccloud, booted.id, "/openstack/2013-10-17")).split("\n") == everything[:4]
    assert ok(ask(ccloud, booted.id, "/openstack/2016-06-30")).split("\n") == everything[:5]
    assert ok(ask(ccloud, plain["id"], "/openstack/latest")).split("\n") == [
        n for n in everything if n != "user_data"]


def test_meta_data_json(ccloud: RunningCloud, booted: Booted) -> None:
    answer = ask(ccloud, booted.id, "/openstack/latest/meta_data.json", booted.private_ip)
    meta = json.loads(ok(answer, "application/json"))
    assert meta["uuid"] == booted.id
    assert meta["name"] == "md-web"
    assert meta["hostname"] == "md-web.novalocal"
    assert meta["launch_index"] == 0
    assert meta["availability_zone"] == "nova"
    assert meta["project_id"] == booted.server["tenant_id"]
    assert meta["meta"] == {"role": "web", "tier": "1"}
    assert meta["public_keys"] == {booted.key_name: booted.key}
    assert meta["keys"] == [{"name": booted.key_name, "type": "ssh", "data": booted.key}]
    assert meta["devices"] == [{"type": "nic", "bus": "pci",
                                "mac": booted.static_port["mac_address"],
                                "tags": ["storage"]}]
    assert len(base64.b64decode(meta["random_seed"])) == 512
    assert meta["dedicated_cpus"] == []
    again = json.loads(ask(ccloud, booted.id, "/openstack/latest/meta_data.json")["body"])
    assert again["random_seed"] != meta["random_seed"]
    # Each dated version has what it had in Nova, no more.
    old = json.loads(ok(ask(ccloud, booted.id, "/openstack/2012-08-10/meta_data.json"),
                        "application/json"))
    assert set(old) == {"uuid", "name", "hostname", "launch_index", "availability_zone",
                        "meta", "public_keys", "keys"}
    liberty = json.loads(ask(ccloud, booted.id, "/openstack/2015-10-15/meta_data.json")["body"])
    assert set(liberty) == set(old) | {"random_seed", "project_id"}
    rocky = json.loads(ask(ccloud, booted.id, "/openstack/2018-08-27/meta_data.json")["body"])
    assert set(rocky) == set(liberty) | {"devices"}


def test_meta_data_json_without_key_or_metadata(ccloud: RunningCloud,
                                                plain: dict[str, Any]) -> None:
    meta = json.loads(ok(ask(ccloud, plain["id"], "/openstack/latest/meta_data.json"),
                         "application/json"))
    assert meta["uuid"] == plain["id"] and meta["hostname"] == "md-plain.novalocal"
    assert "public_keys" not in meta and "keys" not in meta and "meta" not in meta
    assert meta["devices"] == []


def test_network_data_json(ccloud: RunningCloud, api: Api, booted: Booted) -> None:
    doc = json.loads(ok(ask(ccloud, booted.id, "/openstack/latest/network_data.json"),
                        "application/json"))
    private, static = booted.private_port, booted.static_port
    nets = {n["id"]: n for n in net_api(api, "GET", "/v2.0/networks")["networks"]}
    assert doc["links"] == [
        {"id": "tap" + port["id"][:11], "vif_id": port["id"], "type": "bridge",
         "mtu": nets[port["network_id"]]["mtu"], "ethernet_mac_address": port["mac_address"]}
        for port in (private, static)]
    assert doc["networks"] == [
        {"id": "network0", "type": "ipv4_dhcp", "link": "tap" + private["id"][:11],
         "network_id": private["network_id"]},
        {"id": "network1", "type": "ipv4", "link": "tap" + static["id"][:11],
         "network_id": booted.static_net, "ip_address": booted.static_ip,
         "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.77.0.1"},
                    {"network": "192.168.50.0", "netmask": "255.255.255.0",
                     "gateway": "10.77.0.254"}],
         "services": [{"type": "dns", "address": "10.77.0.53"}]}]
    assert {"type": "dns", "address": "10.77.0.53"} in doc["services"]


def test_network_data_json_without_ports(ccloud: RunningCloud, plain: dict[str, Any]) -> None:
    doc = json.loads(ok(ask(ccloud, plain["id"], "/openstack/latest/network_data.json"),
                        "application/json"))
    assert doc == {"links": [], "networks": [], "services": []}


def test_user_data_vendor_data_and_password(ccloud: RunningCloud, booted: Booted,
                                            plain: dict[str, Any]) -> None:
    assert ok(ask(ccloud, booted.id, "/openstack/latest/user_data")) == USER_DATA
    assert ok(ask(ccloud, booted.id, "/openstack/2012-08-10/user_data")) == USER_DATA
    assert ask(ccloud, plain["id"], "/openstack/latest/user_data")["status"] == 404
    for name in ("vendor_data.json", "vendor_data2.json"):
        assert json.loads(ok(ask(ccloud, booted.id, f"/openstack/latest/{name}"),
                             "application/json")) == {}
    assert ok(ask(ccloud, booted.id, "/openstack/latest/password")) == ""


def test_binary_user_data_travels_base64(ccloud: RunningCloud, api: Api, image: str) -> None:
    raw = gzip.compress(b"#cloud-config\nruncmd: [true]\n")
    server = api.wait(api.boot("md-gzip", image, user_data=base64.b64encode(raw).decode())[
        "server"]["id"])
    answer = ask(ccloud, server["id"], "/openstack/latest/user_data")
    assert answer["status"] == 200 and answer["body_base64"] is True
    assert base64.b64decode(answer["body"]) == raw
    answer = ask(ccloud, server["id"], "/latest/user-data")
    assert base64.b64decode(answer["body"]) == raw


def test_ec2_tree(ccloud: RunningCloud, booted: Booted) -> None:
    def ec2(path: str) -> str:
        return ok(ask(ccloud, booted.id, path, booted.private_ip))

    assert ec2("/") == "\n".join(EC2_VERSIONS)
    assert ec2("/latest") == ec2("/latest/") == "meta-data/\nuser-data"
    assert ec2("/latest/meta-data/").split("\n") == [
        "ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/",
        "hostname", "instance-action", "instance-id", "instance-type", "local-hostname",
        "local-ipv4", "placement/", "public-hostname", "public-ipv4", "public-keys/",
        "reservation-id", "security-groups"]
    server = booted.server
    number = int(server["OS-EXT-SRV-ATTR:instance_name"].split("-")[1], 16)
    assert ec2("/latest/meta-data/instance-id") == f"i-{number:08x}"
    assert ec2("/latest/meta-data/ami-id") == f"ami-{server['image']['id'][:8]}"
    assert ec2("/latest/meta-data/ami-launch-index") == "0"
    assert ec2("/latest/meta-data/ami-manifest-path") == "FIXME"
    assert ec2("/latest/meta-data/hostname") == "md-web.novalocal"
    assert ec2("/latest/meta-data/local-hostname") == "md-web.novalocal"
    assert ec2("/latest/meta-data/public-hostname") == "md-web.novalocal"
    assert ec2("/latest/meta-data/instance-action") == "none"
    assert ec2("/latest/meta-data/instance-type") == server["flavor"]["original_name"]
    assert ec2("/latest/meta-data/local-ipv4") == booted.private_ip
    assert ok(ask(ccloud, booted.id, "/latest/meta-data/local-ipv4", booted.static_ip)) \
        == booted.static_ip
    assert ec2("/latest/meta-data/public-ipv4") == booted.floating_ip
    assert ec2("/latest/meta-data/reservation-id").startswith("r-")
    assert ec2("/latest/meta-data/security-groups") == "default"
    assert ec2("/latest/meta-data/placement") == ec2("/latest/meta-data/placement/") \
        == "availability-zone"
    assert ec2("/latest/meta-data/placement/availability-zone") == "nova"
    assert ec2("/latest/meta-data/block-device-mapping/") == "ami\nroot"
    assert ec2("/latest/meta-data/block-device-mapping/ami") == "vda"
    assert ec2("/latest/meta-data/block-device-mapping/root") == "/dev/vda"
    assert ec2("/latest/meta-data/public-keys/") == f"0={booted.key_name}"
    assert ec2("/latest/meta-data/public-keys/0/") == "openssh-key"
    assert ec2("/latest/meta-data/public-keys/0/openssh-key") == booted.key
    assert ec2("/latest/user-data") == USER_DATA
    # Dated versions: 1.0 has the first keys only, 2009-04-04 is latest.
    assert ec2("/1.0/meta-data/").split("\n") == [
        "ami-id", "ami-launch-index", "ami-manifest-path", "hostname", "instance-id",
        "local-ipv4", "public-keys/", "reservation-id", "security-groups"]
    assert ec2("/2009-04-04/meta-data/") == ec2("/latest/meta-data/")
    assert ec2("/2007-12-15/meta-data/block-device-mapping/root") == "/dev/vda"


def test_ec2_for_a_plain_server(ccloud: RunningCloud, plain: dict[str, Any]) -> None:
    def ec2(path: str) -> dict[str, Any]:
        return ask(ccloud, plain["id"], path, "10.1.2.3")

    assert ok(ec2("/latest")) == "meta-data/"
    assert ec2("/latest/user-data")["status"] == 404
    listing = ok(ec2("/latest/meta-data/")).split("\n")
    assert "public-keys/" not in listing
    assert ok(ec2("/latest/meta-data/public-ipv4")) == ""
    # No fixed IP: the address the request came from.
    assert ok(ec2("/latest/meta-data/local-ipv4")) == "10.1.2.3"


@pytest.mark.parametrize("path", [
    "/openstack/latest/nope", "/openstack/1999-01-01/meta_data.json",
    "/openstack/2012-08-10/password", "/openstack/2013-10-17/network_data.json",
    "/openstack/latest/meta_data.json/uuid", "/2099-01-01/meta-data/", "/latest/nope",
    "/latest/meta-data/nope", "/latest/meta-data/public-keys/1",
    "/latest/meta-data/public-keys/0/_name", "/latest/meta-data/instance-id/x",
])
def test_unknown_paths_are_404(ccloud: RunningCloud, booted: Booted, path: str) -> None:
    answer = ask(ccloud, booted.id, path)
    assert answer["status"] == 404, answer
    assert answer["body"].startswith("404 Not Found")


def test_unknown_or_deleted_instances_are_404(ccloud: RunningCloud, api: Api,
                                              image: str) -> None:
    gone = api.wait(api.boot("md-gone", image)["server"]["id"])
    assert ask(ccloud, gone["id"], "/openstack/latest/meta_data.json")["status"] == 200
    api.delete(f"/servers/{gone['id']}")
    api.wait_gone(gone["id"])
    for uuid in (gone["id"], "3f1d0e4c-0000-4000-8000-000000000000", "not-a-uuid"):
        for path in ("/openstack/latest/meta_data.json", "/latest/meta-data/", "/"):
            assert ask(ccloud, uuid, path)["status"] == 404

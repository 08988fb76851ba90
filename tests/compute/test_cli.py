"""The unmodified `openstack` CLI and openstacksdk against compute (few calls: each CLI run
costs seconds)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from tests.compute.conftest import HOSTS, Api
from tests.compute.test_keypairs import public_key
from tests.support.cloud import RunningCloud


def test_server_life_cycle_with_the_cli(ccloud: RunningCloud, api: Api, image: str,
                                        tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    key_file = tmp_path / "key.pub"
    key_file.write_text(public_key() + "\n")
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nhostname: cli\n")
    key = ccloud.cli("keypair", "create", "--public-key", str(key_file), name, "-f", "json")
    assert key["name"] == name
    server = ccloud.cli("server", "create", "--flavor", "m1.nano", "--image", image,
                        "--network", "private", "--key-name", name, "--user-data",
                        str(user_data), "--property", "role=cli", "--wait", name, "-f", "json")
    assert server["status"] == "ACTIVE"
    assert server["key_name"] == name
    shown = api.server(server["id"])
    assert base64.b64decode(shown["OS-EXT-SRV-ATTR:user_data"]).startswith(b"#cloud-config")
    assert shown["metadata"] == {"role": "cli"}
    listed = ccloud.cli("server", "list", "--name", name, "--long", "-f", "json")
    assert [s["ID"] for s in listed] == [server["id"]]
    assert listed[0]["Status"] == "ACTIVE" and listed[0]["Host"] in HOSTS
    ccloud.cli("server", "stop", name)
    api.wait(server["id"], "SHUTOFF")
    ccloud.cli("server", "delete", "--wait", name)
    api.wait_gone(server["id"])
    ccloud.cli("keypair", "delete", name)


def test_catalog_listings_with_the_cli(ccloud: RunningCloud) -> None:
    flavors = {f["Name"] for f in ccloud.cli("flavor", "list", "-f", "json")}
    assert {"m1.nano", "m1.tiny", "m1.small"} <= flavors
    hypervisors = {h["Hypervisor Hostname"] for h in ccloud.cli("hypervisor", "list",
                                                                "-f", "json")}
    assert set(HOSTS) <= hypervisors
    services = ccloud.cli("compute", "service", "list", "-f", "json")
    assert {s["Binary"] for s in services} >= {"nova-compute", "nova-conductor",
                                               "nova-scheduler"}
    zones = ccloud.cli("availability", "zone", "list", "--compute", "-f", "json")
    assert {"Zone Name": "nova", "Zone Status": "available"} in [
        {k: z[k] for k in ("Zone Name", "Zone Status")} for z in zones]
    quota = ccloud.cli("quota", "show", "--compute", "-f", "json")
    values = {q["Resource"]: q["Limit"] for q in quota} if isinstance(quota, list) else quota
    assert values.get("instances") == 10 and values.get("cores") == 20


def test_sdk(ccloud: RunningCloud, image: str) -> None:
    conn = ccloud.connect()
    flavor = conn.compute.find_flavor("m1.nano")
    server = conn.compute.create_server(name="sdk", image_id=image, flavor_id=flavor.id,
                                        networks="none")
    server = conn.compute.wait_for_server(server, wait=60)
    assert server.status == "ACTIVE" and server.hypervisor_hostname in HOSTS
    conn.compute.reboot_server(server, "HARD")
    conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    assert "sdk" in [s.name for s in conn.compute.servers()]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    limits = conn.compute.get_limits()
    assert limits.absolute.instances == 10

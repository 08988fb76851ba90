"""The unmodified `openstack image ...` commands against the image service (each call costs
about 1.5 s, so they are few and do a lot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.image import samples
from tests.image.conftest import Tenant
from tests.support.cloud import RunningCloud


def test_cli_image_lifecycle(cloud: RunningCloud, tmp_path: Path, name: str) -> None:
    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(samples.qcow2(512 * samples.MiB))
    made = cloud.cli("image", "create", "--file", str(disk), "--disk-format", "qcow2",
                     "--container-format", "bare", "--property", "os_distro=cirros",
                     "--property", "hw_rng_model=virtio", "--min-disk", "1", "--min-ram", "64",
                     "--protected", "--private", "--tag", "cli", name, "-f", "json")
    assert made["status"] == "active" and made["name"] == name
    assert made["disk_format"] == "qcow2" and made["min_disk"] == 1 and made["min_ram"] == 64
    assert made["protected"] is True and made["visibility"] == "private"
    assert made["virtual_size"] == 512 * samples.MiB
    assert made["properties"]["os_distro"] == "cirros"
    image_id = made["id"]

    listed = cloud.cli("image", "list", "--name", name, "--private", "--status", "active",
                       "--tag", "cli", "--property", "os_distro=cirros", "--project", "admin",
                       "--sort", "name:asc", "--limit", "5", "--long", "-f", "json")
    assert [i["ID"] for i in listed] == [image_id]

    cloud.cli("image", "set", "--name", f"{name}-2", "--property", "os_version=0.6",
              "--tag", "extra", "--min-ram", "128", "--unprotected", "--public",
              "--deactivate", image_id)
    cloud.cli("image", "unset", "--property", "hw_rng_model", "--tag", "cli", image_id)
    shown = cloud.cli("image", "show", image_id, "-f", "json")
    assert shown["name"] == f"{name}-2" and shown["min_ram"] == 128
    assert shown["status"] == "deactivated" and shown["visibility"] == "public"
    assert shown["protected"] is False and sorted(shown["tags"]) == ["extra"]
    assert shown["properties"]["os_version"] == "0.6"
    assert "hw_rng_model" not in shown["properties"]

    cloud.cli("image", "set", "--activate", image_id)
    saved = tmp_path / "saved"
    cloud.cli("image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == disk.read_bytes()
    cloud.cli("image", "delete", image_id)
    gone = cloud.cli("image", "show", image_id, check=False)
    assert gone.returncode != 0


def test_cli_sharing(cloud: RunningCloud, admin: Any, bob: Tenant, name: str,
                     tmp_path: Path) -> None:
    # with no --file, the CLI uploads whatever its stdin holds: give it a file of its own
    disk = tmp_path / "disk.raw"
    disk.write_bytes(samples.raw(4096))
    data = ("--file", str(disk), "--disk-format", "raw", "--container-format", "bare")
    made = cloud.cli("image", "create", *data, "--shared", name, "-f", "json")
    image_id = made["id"]
    cloud.cli("image", "add", "project", image_id, bob.project_id)
    cloud.cli("image", "set", "--accept", image_id, user=bob.user, password=bob.password,
              project=bob.name)
    members = cloud.cli("image", "member", "list", image_id, "-f", "json")
    assert [(m["Member ID"], m["Status"]) for m in members] == [(bob.project_id, "accepted")]
    assert image_id in bob.api.ids()
    community = cloud.cli("image", "create", *data, "--community", f"{name}-c", "-f", "json")
    listed = cloud.cli("image", "list", "--community", "-f", "json", user=bob.user,
                       password=bob.password, project=bob.name)
    assert community["id"] in [i["ID"] for i in listed] and image_id not in bob.api.ids(
        visibility="community")

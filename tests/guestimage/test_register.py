"""`nimbus image build-test --register`: the test image goes to the image service through its
public API, once; a new build replaces the old one of that name."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from nimbus.cli.main import app
from nimbus.guestimage import builder
from nimbus.guestimage.register import MARK, register
from nimbus.image.cli import connect
from tests.guestimage.lab import CACHE, require
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


@pytest.fixture
def clouds_yaml(cloud: RunningCloud, tmp_path: Path) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"here": {
        "auth": {"auth_url": cloud.auth_url, "username": "admin", "password": ADMIN_PASSWORD,
                 "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "region_name": "RegionOne", "interface": "public"}}}))
    return path


def test_build_test_registers_once_and_replaces_on_rebuild(clouds_yaml: Path, tmp_path: Path,
                                                           name: str) -> None:
    require(builder.missing_tools())
    output = CACHE / "test-image" / "nimbus-test.qcow2"
    args = ["image", "build-test", "--output", str(output), "--cache", str(CACHE),
            "--register", "--name", name, "--clouds-yaml", str(clouds_yaml), "--cloud", "here"]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"image {name} " in result.output and " registered" in result.output
    found = re.search(rf"image {name} (\S+) registered", result.output)
    assert found, result.output
    image_id = found.group(1)

    url, headers = connect(clouds_yaml, "here")
    image = httpx.get(f"{url}/v2/images/{image_id}", headers=headers).json()
    manifest = builder.read_manifest(output)
    assert manifest is not None
    assert (image["status"], image["visibility"], image["disk_format"],
            image["container_format"]) == ("active", "public", "qcow2", "bare")
    assert image["os_hash_value"] == manifest["sha512"] and image["size"] == manifest["size"]
    assert image[MARK] == "true"
    # It boots straight from its kernel and ramdisk, registered beside it as aki and ari.
    assert image["os_command_line"] == manifest["direct_boot"]["cmdline"]
    for key, fmt, part in (("kernel_id", "aki", "kernel"), ("ramdisk_id", "ari", "ramdisk")):
        boot = httpx.get(f"{url}/v2/images/{image[key]}", headers=headers).json()
        assert (boot["status"], boot["visibility"], boot["disk_format"],
                boot["container_format"]) == ("active", "public", fmt, fmt)
        assert boot["os_hash_value"] == manifest["direct_boot"][part]["sha512"]

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert f"image {name} {image_id} already registered" in again.output

    # A new build (here: another small qcow2) replaces the old image of that name.
    newer = tmp_path / "newer.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(newer), "64M"], check=True)
    data = newer.read_bytes()
    done = register(newer, {"sha512": hashlib.sha512(data).hexdigest(), "kernel": "x"},
                    url, headers, name=name)
    assert done.uploaded and done.replaced == [image_id]
    listed = httpx.get(f"{url}/v2/images", params={"name": name}, headers=headers).json()
    assert [i["id"] for i in listed["images"]] == [done.image_id]
    httpx.delete(f"{url}/v2/images/{done.image_id}", headers=headers)

"""`nimbus image upload|download`: streamed, with a progress bar, against the shared cloud."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from typer.testing import CliRunner

from nimbus.image.cli import image_app
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def test_upload_and_download_with_progress(cloud: RunningCloud, tmp_path: Path,
                                           name: str) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"here": {
        "auth": {"auth_url": cloud.auth_url, "username": "admin", "password": ADMIN_PASSWORD,
                 "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "region_name": "RegionOne", "interface": "public"}}}))
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(9 << 20))
    common = ["--clouds-yaml", str(clouds), "--cloud", "here"]
    runner = CliRunner()
    result = runner.invoke(image_app, ["upload", str(disk), "--name", name, "--property",
                                       "os_distro=cirros", *common])
    assert result.exit_code == 0, result.output
    image = json.loads(result.stdout[result.stdout.index("{"):])
    assert image["status"] == "active" and image["size"] == 9 << 20
    assert image["os_distro"] == "cirros"
    out = tmp_path / "back.raw"
    result = runner.invoke(image_app, ["download", image["id"], str(out), *common])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == disk.read_bytes()
    result = runner.invoke(image_app, ["download", "nope", str(out), *common])
    assert result.exit_code == 1

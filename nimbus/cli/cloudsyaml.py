"""Writing clouds.yaml so the openstack CLI and openstacksdk find the cloud by name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def cloud_entry(auth_url: str, password: str, region: str) -> dict[str, Any]:
    return {
        "auth": {"auth_url": auth_url, "username": "admin", "password": password,
                 "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default"},
        "region_name": region,
        "identity_api_version": 3,
        "interface": "public",
    }


def write(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Add or replace one cloud in a clouds.yaml, keeping the others."""
    data: dict[str, Any] = {}
    if path.is_file():
        data = yaml.safe_load(path.read_text()) or {}
    data.setdefault("clouds", {})[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)

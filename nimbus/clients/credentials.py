"""The cloud's own service account, which services use to call each other's APIs.

Identity's bootstrap creates user `nimbus` in project `service` (roles admin and service) with
this password. It is generated on first start and kept in the state folder; in the
distributed wiring every node gets the same file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SERVICE_USER = "nimbus"
SERVICE_PROJECT = "service"


def service_password(state_dir: Path) -> str:
    path = state_dir / "service-password"
    if path.is_file():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password

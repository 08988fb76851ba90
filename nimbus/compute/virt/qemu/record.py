"""The launch record of a guest: everything needed to start its QEMU again (after a power off,
a host restart, or by a fresh driver object), kept as JSON in the guest's folder.

<instances_path>/<uuid>/
  launch.json      this record (written atomically)
  disk             qcow2 overlay over <instances_path>/_base/<image id>
  disk.orig        the disk before a resize, until it is confirmed or reverted
  rescue           qcow2 overlay of the rescue image while rescued
  console.log      everything the guest printed on its serial port (appended across boots)
  state            saved memory and devices of a suspended guest
  qemu.pid         the running QEMU's pid
  qmp.sock, serial.sock (in the folder, or in /tmp/nimbus-qemu-<hash>/ when the folder's path
                   is too long for a unix socket)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

UNIX_PATH_MAX = 100  # sun_path is 108 bytes; keep a margin


@dataclass
class LaunchRecord:
    uuid: str
    name: str
    host: str
    namespace: str | None
    memory_mb: int
    vcpus: int
    root_gb: int
    base: str  # the cached image the disk is an overlay of
    base_format: str
    vifs: list[dict[str, Any]] = field(default_factory=list)  # port_id, mac_address, devname, mtu
    volumes: list[dict[str, Any]] = field(default_factory=list)  # see devices.py
    rescue: bool = False
    # Direct kernel boot (the image's kernel_id/ramdisk_id, cached beside the base image);
    # "" boots the disk through the firmware.
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    # What the guest should be doing: "running" (a QEMU process exists, maybe paused),
    # "shutdown" (powered off by us), "suspended" (its state saved to a file). A guest meant
    # to run whose QEMU is gone (the host restarted) is missing, and recover() restarts it.
    power: str = "running"
    # After a migration: the run files of the QEMU that now runs the guest (see Paths.run).
    run_tag: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Paths:
    """Where a guest's files are."""

    def __init__(self, instances_path: Path, uuid: str) -> None:
        self.dir = instances_path / uuid
        self.record = self.dir / "launch.json"
        self.disk = self.dir / "disk"
        self.disk_orig = self.dir / "disk.orig"
        self.rescue = self.dir / "rescue"
        self.console = self.dir / "console.log"
        self.state = self.dir / "state"
        self.incoming = self.dir / "incoming.json"

    @property
    def sockets(self) -> Path:
        """The folder of the unix sockets: the guest's own, unless its path is too long."""
        if len(str(self.dir / "qmp-xxxxxxxx.sock")) <= UNIX_PATH_MAX:
            return self.dir
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"nimbus-qemu-{digest}"

    def pidfile(self, tag: str) -> Path:
        return self.dir / f"qemu{tag}.pid"

    def qmp(self, tag: str) -> Path:
        return self.sockets / f"qmp{tag}.sock"

    def serial(self, tag: str) -> Path:
        return self.sockets / f"serial{tag}.sock"

    def migration_socket(self) -> Path:
        return self.sockets / "migrate.sock"


def load(paths: Paths) -> LaunchRecord | None:
    try:
        data = json.loads(paths.record.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        return None
    return LaunchRecord.from_dict(data)


def save(paths: Paths, record: LaunchRecord) -> None:
    write_json(paths.record, asdict(record))


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return None

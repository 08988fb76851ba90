"""qemu-img: what an image is, overlays over cached images, resizing, flattening."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from nimbus.common.netns import run
from nimbus.compute.virt.driver import DriverError

GiB = 1 << 30
FORMATS = ("qcow2", "raw")


async def info(path: Path, fmt: str | None = None, *, shared: bool = False) -> dict[str, Any]:
    argv = ["qemu-img", "info", "--output=json"]
    if fmt:
        argv += ["-f", fmt]
    if shared:
        argv.append("-U")
    done = await run([*argv, str(path)], check=False, time_limit=60)
    if done.returncode != 0:
        raise DriverError(f"cannot read image {path.name}: {done.stderr.strip()}")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


async def check_base(path: Path, disk_format: str | None) -> tuple[str, int]:
    """(format, virtual size) of a cached image; refuses what is not a plain qcow2 or raw
    image (a qcow2 with a backing file of its own would read files of the host)."""
    if not await asyncio.to_thread(path.is_file):
        raise DriverError(f"image file {path} is missing")
    fmt = disk_format if disk_format in FORMATS else None
    data = await info(path, fmt)
    detected = data.get("format")
    if fmt is None:
        if detected not in FORMATS:
            raise DriverError(f"image format {detected!r} is not supported (qcow2 or raw)")
        fmt = str(detected)
    if fmt == "qcow2":
        if data.get("backing-filename") or (data.get("format-specific") or {}).get(
                "data", {}).get("data-file"):
            raise DriverError("image refused: a qcow2 with a backing or data file")
        check = await run(["qemu-img", "check", "-f", "qcow2", str(path)], check=False,
                          time_limit=120)
        if check.returncode not in (0, 3):  # 3: leaked clusters, harmless
            reason = (check.stderr or check.stdout).strip().splitlines()
            raise DriverError(f"image is corrupt: {reason[-1] if reason else 'qemu-img check'}")
    size = int(data.get("virtual-size") or 0)
    if size <= 0:
        raise DriverError("image is empty")
    return fmt, size


async def create_overlay(disk: Path, base: Path, base_format: str, base_size: int,
                         root_gb: int) -> None:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base),
            str(disk)]
    if root_gb * GiB > base_size:
        argv.append(f"{root_gb}G")
    done = await run(argv, check=False, time_limit=60)
    if done.returncode != 0:
        raise DriverError(f"cannot create the disk: {done.stderr.strip()}")


async def grow(disk: Path, root_gb: int) -> None:
    """Make the disk root_gb large unless it is already as large or larger."""
    if root_gb <= 0:
        return
    size = int((await info(disk, "qcow2")).get("virtual-size") or 0)
    if root_gb * GiB > size:
        done = await run(["qemu-img", "resize", "-q", "-f", "qcow2", str(disk), f"{root_gb}G"],
                         check=False, time_limit=60)
        if done.returncode != 0:
            raise DriverError(f"cannot resize the disk: {done.stderr.strip()}")


async def flatten(disk: Path, out: Path) -> None:
    """A standalone qcow2 of the disk and its backing chain (`-U`: QEMU may hold it)."""
    done = await run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "qcow2", str(disk),
                      str(out)], check=False, time_limit=600)
    if done.returncode != 0:
        raise DriverError(f"cannot copy the disk: {done.stderr.strip()}")

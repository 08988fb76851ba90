"""Rescue, snapshots, and moves between hosts of this machine (which share instances_path):
cold migration and resize (power off, the destination starts it in its namespace), and live
migration (a destination QEMU waits with -incoming on a unix socket; the source sends)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nimbus.compute.virt.driver import DriverError
from nimbus.compute.virt.qemu import disks, process
from nimbus.compute.virt.qemu.base import QemuBase, vif_record
from nimbus.compute.virt.qemu.record import LaunchRecord, Paths, read_json, save, write_json

LOG = logging.getLogger(__name__)

CHUNK = 1 << 20
MIGRATION_TIMEOUT = 300.0


class MovesMixin(QemuBase):
    # -- rescue -----------------------------------------------------------------------------------
    async def rescue(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     image_meta: dict[str, Any], rescue_password: str | None, *,
                     image_path: str | None = None) -> None:
        """Boot the rescue image, with the guest's own disk as the second disk."""
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        base = Path(image_path or rec.base)
        fmt, size = await disks.check_base(base, image_meta.get("disk_format") if image_path
                                           else rec.base_format)
        await process.stop(rec, paths, clean_timeout=self.qemu.shutdown_timeout,
                           keep_taps=True)
        paths.rescue.unlink(missing_ok=True)
        await disks.create_overlay(paths.rescue, base, fmt, size, 0)
        rec.rescue = True
        try:
            await self._start(rec)
        except BaseException:
            rec.rescue = False
            paths.rescue.unlink(missing_ok=True)
            save(paths, rec)
            raise

    async def unrescue(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None:
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        await process.stop(rec, paths, keep_taps=True)
        rec.rescue = False
        paths.rescue.unlink(missing_ok=True)
        await self._start(rec)

    # -- snapshot ---------------------------------------------------------------------------------
    async def snapshot(self, instance: dict[str, Any]) -> AsyncIterator[bytes]:
        """The root disk flattened into one qcow2 (the guest is stopped while it is copied)."""
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        out = paths.dir / "snapshot.part"
        stopped = False
        try:
            if self.pid(rec) and await self.run_status(rec) == "running":
                await self.qmp(rec, "stop")
                stopped = True
            await disks.flatten(paths.disk, out)
        finally:
            if stopped:
                await self.qmp(rec, "cont")
        try:
            with out.open("rb") as f:
                while chunk := await asyncio.to_thread(f.read, CHUNK):
                    yield chunk
        finally:
            out.unlink(missing_ok=True)

    # -- cold migration and resize ----------------------------------------------------------------
    async def migrate_disk_and_power_off(self, instance: dict[str, Any], dest: str,
                                         flavor: dict[str, Any],
                                         network_info: list[dict[str, Any]]) -> None:
        """Source: power off and keep a copy of the disk for a revert (the destination sees
        the same folder)."""
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        new_gb = int(flavor.get("root_gb") or 0)
        if new_gb and new_gb < rec.root_gb:
            raise DriverError(f"cannot shrink the disk from {rec.root_gb} to {new_gb} GB")
        await process.stop(rec, paths, clean_timeout=self.qemu.shutdown_timeout)
        rec.power = "shutdown"
        save(paths, rec)
        done = await process_run(["cp", "--sparse=always", "--reflink=auto", str(paths.disk),
                                  str(paths.disk_orig)])
        if done:
            raise DriverError(f"cannot keep the disk for a revert: {done}")

    async def finish_migration(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                               image_meta: dict[str, Any], power_on: bool) -> None:
        """Destination: take the guest over with its (new) flavor and start it here."""
        rec = self.record(instance, any_host=True)
        paths = self.paths(rec.uuid)
        if self.pid(rec):
            raise DriverError(f"instance {rec.uuid} still runs on {rec.host}")
        flavor = instance.get("flavor") or {}
        root_gb = int(flavor.get("root_gb") or rec.root_gb)
        await disks.grow(paths.disk, root_gb)
        rec.memory_mb = int(flavor.get("memory_mb") or rec.memory_mb)
        rec.vcpus = int(flavor.get("vcpus") or rec.vcpus)
        rec.root_gb = root_gb
        if network_info:
            rec.vifs = [vif_record(v) for v in network_info]
        await self._take_over(rec, power_on)

    async def _take_over(self, rec: LaunchRecord, power_on: bool) -> None:
        if power_on:
            await self._start(rec)
        else:
            rec.host, rec.namespace, rec.run_tag, rec.power = (self.host, self.namespace, "",
                                                                "shutdown")
            save(self.paths(rec.uuid), rec)

    async def finish_revert_migration(self, instance: dict[str, Any],
                                      network_info: list[dict[str, Any]],
                                      power_on: bool) -> None:
        """Source, after a revert: the old disk and flavor, started here again."""
        rec = self.record(instance, any_host=True)
        paths = self.paths(rec.uuid)
        await process.stop(rec, paths)
        if paths.disk_orig.exists():
            os.replace(paths.disk_orig, paths.disk)
        flavor = instance.get("flavor") or {}
        rec.memory_mb = int(flavor.get("memory_mb") or rec.memory_mb)
        rec.vcpus = int(flavor.get("vcpus") or rec.vcpus)
        rec.root_gb = int(flavor.get("root_gb") or rec.root_gb)
        if network_info:
            rec.vifs = [vif_record(v) for v in network_info]
        await self._take_over(rec, power_on)

    async def confirm_migration(self, instance: dict[str, Any],
                                network_info: list[dict[str, Any]]) -> None:
        """Source, after a confirmed resize: drop the copy kept for a revert."""
        self.paths(instance["uuid"]).disk_orig.unlink(missing_ok=True)

    # -- live migration ---------------------------------------------------------------------------
    async def receive_live_migration(self, instance: dict[str, Any],
                                     network_info: list[dict[str, Any]]) -> None:
        """Destination: a QEMU like the source's, in this host's namespace, waiting for the
        guest on a unix socket in the guest's folder."""
        rec = self.record(instance, any_host=True)
        paths = self.paths(rec.uuid)
        if rec.host == self.host:
            raise DriverError(f"instance {rec.uuid} already runs on {self.host}")
        if rec.namespace == self.namespace:
            raise DriverError("source and destination hosts share one node namespace")
        await self._drop_incoming(paths)
        here = LaunchRecord.from_dict({**rec.__dict__, "host": self.host,
                                       "namespace": self.namespace})
        if network_info:
            here.vifs = [vif_record(v) for v in network_info]
        tag = "-b" if rec.run_tag == "" else ""
        sock = paths.migration_socket()
        sock.unlink(missing_ok=True)
        pid = await process.start(here, paths, self.qemu, tag=tag, incoming=f"unix:{sock}",
                                  reuse_taps=False)
        write_json(paths.incoming, {"host": self.host, "namespace": self.namespace, "tag": tag,
                                    "pid": pid, "vifs": here.vifs})

    async def live_migration(self, instance: dict[str, Any], dest: str) -> None:
        """Source: send the running guest to the destination's waiting QEMU, then end ours."""
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        incoming = read_json(paths.incoming)
        if not incoming or incoming.get("host") != dest:
            raise DriverError(f"host {dest} is not ready to receive instance {rec.uuid}")
        if self.pid(rec) is None:
            raise DriverError(f"instance {rec.uuid} is not running")
        await self.qmp(rec, "migrate", {"uri": f"unix:{paths.migration_socket()}"})
        try:
            await self.wait_migration(rec, time_limit=MIGRATION_TIMEOUT)
        except DriverError:
            with contextlib.suppress(DriverError):
                await self.qmp(rec, "migrate_cancel")
            raise
        await process.stop(rec, paths)  # paused in postmigrate
        rec.host, rec.namespace, rec.run_tag = dest, incoming.get("namespace"), incoming["tag"]
        rec.vifs = incoming.get("vifs") or rec.vifs
        rec.power = "running"
        save(paths, rec)
        paths.incoming.unlink(missing_ok=True)
        paths.migration_socket().unlink(missing_ok=True)

    async def _drop_incoming(self, paths: Paths) -> None:
        """End a QEMU this host started to receive a live migration that did not happen."""
        incoming = read_json(paths.incoming)
        if not incoming or incoming.get("host") != self.host:
            return
        pid, tag = incoming.get("pid"), str(incoming.get("tag", ""))
        uuid = paths.dir.name
        if pid and process.alive(int(pid), uuid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
            await process.wait_gone(int(pid), uuid, 5)
        process.remove_run_files(paths, tag)
        await process.delete_taps(self.namespace, [v["devname"] for v in
                                                   incoming.get("vifs") or []])
        paths.incoming.unlink(missing_ok=True)
        paths.migration_socket().unlink(missing_ok=True)


async def process_run(argv: list[str]) -> str:
    """Run a local command; its error text, or '' when it worked."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    return "" if proc.returncode == 0 else err.decode(errors="replace").strip() or "failed"

"""The QEMU driver: one QEMU process per guest, in the node namespace of its host
(`dataplane.node(host).namespace`), with a qcow2 overlay over a cached image, taps per port
(which the network's L2 agent plugs), a serial console log and a QMP socket.

Guests outlive the agent (QEMU daemonizes); a new driver object finds them again through
their launch records (record.py). Several hosts of one machine share `instances_path`: a
record names the host its guest belongs to, and each driver answers for its own."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from nimbus.compute import states
from nimbus.compute.virt.driver import DriverError, GuestInfo
from nimbus.compute.virt.qemu import disks, process
from nimbus.compute.virt.qemu.base import cpu_time_ns, shell_quote, vif_record
from nimbus.compute.virt.qemu.devices import DevicesMixin
from nimbus.compute.virt.qemu.moves import MovesMixin
from nimbus.compute.virt.qemu.record import LaunchRecord, load, save

LOG = logging.getLogger(__name__)

CONSOLE_TAIL = 100 * 1024
# The kernel's command line when a directly booted image gives none (upstream's default).
DEFAULT_CMDLINE = "root=/dev/vda console=tty0 console=ttyS0,115200"
RUN_STATES = {
    "running": states.RUNNING, "paused": states.PAUSED, "prelaunch": states.PAUSED,
    "inmigrate": states.PAUSED, "postmigrate": states.PAUSED, "finish-migrate": states.PAUSED,
    "save-vm": states.PAUSED, "restore-vm": states.PAUSED, "debug": states.PAUSED,
    "watchdog": states.PAUSED, "colo": states.PAUSED, "suspended": states.SUSPENDED,
    "shutdown": states.SHUTDOWN, "internal-error": states.CRASHED,
    "guest-panicked": states.CRASHED, "io-error": states.CRASHED}


class QemuDriver(MovesMixin, DevicesMixin):
    """compute.virt_driver = "qemu"."""

    async def list_instances(self) -> list[str]:
        """Guests of this host that exist: running, or powered off or suspended by us.
        One meant to run whose QEMU is gone is missing (recover() brings it back)."""
        return [r.uuid for r in self.records() if r.power != "running" or self.pid(r)]

    async def get_info(self, instance: dict[str, Any]) -> GuestInfo:
        rec = self.record(instance)
        pid = self.pid(rec)
        info = GuestInfo(memory_mb=rec.memory_mb, vcpus=rec.vcpus)
        if pid is None:
            info.power_state = states.SUSPENDED if rec.power == "suspended" else states.SHUTDOWN
            return info
        try:
            info.power_state = RUN_STATES.get(await self.run_status(rec), states.NOSTATE)
        except DriverError:
            info.power_state = states.NOSTATE
        info.cpu_time_ns = cpu_time_ns(pid)
        return info

    # -- life cycle -------------------------------------------------------------------------------
    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any],
                    network_info: list[dict[str, Any]], *, image_path: str | None = None,
                    admin_password: str | None = None,
                    block_device_info: dict[str, Any] | None = None) -> None:
        process.check_namespace(self.namespace)
        if not image_path:
            raise DriverError("no image to boot from (the qemu driver boots images only)")
        paths = self.paths(instance["uuid"])
        old = load(paths)
        if old is not None:  # rebuilt or evacuated here: whatever was left goes
            await process.stop(old, paths)
        await self._remove_files(paths)
        flavor = instance.get("flavor") or {}
        try:
            paths.dir.mkdir(parents=True)
            base_format, base_size = await disks.check_base(Path(image_path),
                                                            image_meta.get("disk_format"))
            root_gb = int(flavor.get("root_gb") or 0)
            await disks.create_overlay(paths.disk, Path(image_path), base_format, base_size,
                                       root_gb)
            kernel, initrd, cmdline = self.boot_files(image_meta)
            rec = LaunchRecord(
                uuid=instance["uuid"], name=instance.get("name") or f"guest-{instance['uuid']}",
                host=self.host, namespace=self.namespace,
                memory_mb=int(flavor.get("memory_mb") or 128), vcpus=int(flavor.get("vcpus") or 1),
                root_gb=root_gb, base=str(image_path), base_format=base_format,
                vifs=[vif_record(v) for v in network_info], kernel=kernel, initrd=initrd,
                cmdline=cmdline)
            save(paths, rec)
            await process.start(rec, paths, self.qemu, reuse_taps=False)
        except BaseException:
            await self._remove_files(paths)
            raise

    def boot_files(self, image_meta: dict[str, Any]) -> tuple[str, str, str]:
        """(kernel, initrd, command line) of an image booted directly from the kernel and
        ramdisk images its kernel_id and ramdisk_id name (the agent's image cache fetched
        them beside the base image); ("", "", "") for an image that boots from its disk."""
        props = image_meta.get("properties") or {}
        kernel_id, ramdisk_id = props.get("kernel_id"), props.get("ramdisk_id")
        if not kernel_id or self.image_cache_path is None:
            return "", "", ""
        files = []
        for what, image_id in (("kernel", kernel_id), ("ramdisk", ramdisk_id)):
            if not image_id:
                files.append("")
                continue
            path = self.image_cache_path / str(image_id)
            if "/" in str(image_id) or not path.is_file():
                raise DriverError(f"the {what} image {image_id} is not in this host's image "
                                  "cache")
            files.append(str(path))
        return files[0], files[1], str(props.get("os_command_line") or DEFAULT_CMDLINE)

    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                      *, destroy_disks: bool = True) -> None:
        """destroy_disks=False (the other side of a move on this machine, which shares the
        folder): end only this host's QEMU and taps, keep the files."""
        paths = self.paths(instance["uuid"])
        await self._drop_incoming(paths)
        rec = load(paths)
        if rec is not None and (rec.host == self.host or destroy_disks):
            await process.stop(rec, paths)
        if rec is None or rec.host == self.host:
            await process.delete_taps(self.namespace, [v["devname"] for v in network_info
                                                       if v.get("devname")])
        if destroy_disks:
            await self._remove_files(paths)

    async def reboot(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     reboot_type: str) -> None:
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        if reboot_type.upper() == "HARD" and self.pid(rec):
            await self.qmp(rec, "system_reset")
            if await self.run_status(rec) != "running":
                await self.qmp(rec, "cont")
        else:
            await process.stop(rec, paths, clean_timeout=self.qemu.shutdown_timeout,
                               keep_taps=True)
            paths.state.unlink(missing_ok=True)
            await self._start(rec)

    async def power_off(self, instance: dict[str, Any], clean_shutdown: bool = True) -> None:
        rec = self.record(instance)
        await process.stop(rec, self.paths(rec.uuid),
                           clean_timeout=self.qemu.shutdown_timeout if clean_shutdown else 0,
                           keep_taps=True)
        if rec.power == "running":
            rec.power = "shutdown"
            save(self.paths(rec.uuid), rec)

    async def power_on(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None:
        rec = self.record(instance)
        if self.pid(rec):
            if await self.run_status(rec) != "running":
                await self.qmp(rec, "cont")
            return
        if rec.power == "suspended" and self.paths(rec.uuid).state.exists():
            await self.resume(instance, network_info)
            return
        await self._start(rec)

    async def pause(self, instance: dict[str, Any]) -> None:
        await self.qmp(self.record(instance), "stop")

    async def unpause(self, instance: dict[str, Any]) -> None:
        await self.qmp(self.record(instance), "cont")

    async def suspend(self, instance: dict[str, Any]) -> None:
        """Save memory and devices to the `state` file, then end QEMU."""
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        if self.pid(rec) is None:
            raise DriverError(f"instance {rec.uuid} is not running")
        partial = paths.state.with_name("state.part")
        partial.unlink(missing_ok=True)
        await self.qmp(rec, "stop")
        try:
            await self.qmp(rec, "migrate", {"uri": f"exec:cat > {shell_quote(partial)}"})
            await self.wait_migration(rec, time_limit=300)
        except BaseException:
            partial.unlink(missing_ok=True)
            await self.qmp(rec, "cont")
            raise
        os.replace(partial, paths.state)
        await process.stop(rec, paths, keep_taps=True)
        rec.power = "suspended"
        save(paths, rec)

    async def resume(self, instance: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None:
        rec = self.record(instance)
        paths = self.paths(rec.uuid)
        if self.pid(rec):
            if await self.run_status(rec) != "running":
                await self.qmp(rec, "cont")
            return
        if not paths.state.exists():
            raise DriverError(f"instance {rec.uuid} has no saved state to resume from")
        await self._start(rec, incoming=f"exec:cat {shell_quote(paths.state)}")
        await self.wait_incoming(rec, time_limit=300)
        if await self.run_status(rec) != "running":
            await self.qmp(rec, "cont")
        paths.state.unlink(missing_ok=True)

    async def get_console_output(self, instance: dict[str, Any]) -> str:
        rec = self.record(instance)
        return process.tail(self.paths(rec.uuid).console, CONSOLE_TAIL)

    async def recover(self, instance: dict[str, Any], power_state: int) -> None:
        """The guest is missing here (its QEMU is gone, the host restarted): start it again
        when it should run. A guest with no files left cannot come back: logged."""
        paths = self.paths(instance["uuid"])
        rec = load(paths)
        if rec is None or not paths.disk.exists():
            LOG.warning("cannot recover %s on %s: its files are gone", instance["uuid"],
                        self.host)
            return
        if power_state not in (states.RUNNING, states.PAUSED):
            rec.power = "suspended" if power_state == states.SUSPENDED and \
                paths.state.exists() else "shutdown"
            save(paths, rec)
            return
        try:
            await self._start(rec)
            if power_state == states.PAUSED:
                await self.qmp(rec, "stop")
        except DriverError as exc:
            LOG.warning("cannot recover %s on %s: %s", rec.uuid, self.host, exc)


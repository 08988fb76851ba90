"""What every part of the QEMU driver shares: where a guest's files are, its record, its
process and QMP socket, starting it, waiting for migrations; and the host's figures."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.common.settings import QemuSettings, default_state_dir
from nimbus.compute.virt.driver import DriverError, GuestNotFound, HostResources, VirtDriver
from nimbus.compute.virt.qemu import process, qmp
from nimbus.compute.virt.qemu.record import LaunchRecord, Paths, load, save

if TYPE_CHECKING:
    from nimbus.common.settings import Settings

LOG = logging.getLogger(__name__)

TRAITS = ["COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW",
          "COMPUTE_NODE", "COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_DEVICE_TAGGING",
          "COMPUTE_NET_VIF_MODEL_VIRTIO", "COMPUTE_STORAGE_BUS_VIRTIO", "HW_CPU_X86_SSE2"]


class QemuBase(VirtDriver):
    needs_image_data = True

    def __init__(self, host: str, settings: Any, cloud_settings: Settings | None = None) -> None:
        super().__init__(host, settings, cloud_settings)
        self.qemu: QemuSettings = settings.qemu
        state_dir = cloud_settings.state_dir if cloud_settings else default_state_dir()
        self.instances_path = Path(self.qemu.instances_path or state_dir / "instances")
        self.image_cache_path = self.instances_path / "_base"
        self.namespace: str | None = (cloud_settings.dataplane.node(host).namespace
                                      if cloud_settings else None)
        self.version = 0

    # -- records ----------------------------------------------------------------------------------
    def paths(self, uuid: str) -> Paths:
        return Paths(self.instances_path, uuid)

    def record(self, instance: dict[str, Any], *, any_host: bool = False) -> LaunchRecord:
        rec = load(self.paths(instance["uuid"]))
        if rec is None or (rec.host != self.host and not any_host):
            raise GuestNotFound(f"Instance {instance['uuid']} could not be found.")
        return rec

    def records(self) -> list[LaunchRecord]:
        found = []
        try:
            entries = list(self.instances_path.iterdir())
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("_") or not entry.is_dir():
                continue
            rec = load(Paths(self.instances_path, entry.name))
            if rec is not None and rec.host == self.host:
                found.append(rec)
        return found

    def pid(self, rec: LaunchRecord) -> int | None:
        return process.running_pid(rec, self.paths(rec.uuid))

    def qmp_path(self, rec: LaunchRecord) -> Path:
        return self.paths(rec.uuid).qmp(rec.run_tag)

    async def qmp(self, rec: LaunchRecord, command: str,
                  arguments: dict[str, Any] | None = None, *, time_limit: float = 30.0) -> Any:
        if self.pid(rec) is None:
            raise DriverError(f"instance {rec.uuid} is not running")
        return await qmp.execute(self.qmp_path(rec), command, arguments, name=rec.name,
                                 time_limit=time_limit)

    async def run_status(self, rec: LaunchRecord) -> str:
        result = await self.qmp(rec, "query-status")
        return str(result.get("status"))

    # -- host -------------------------------------------------------------------------------------
    async def init_host(self) -> None:
        self.instances_path.mkdir(parents=True, exist_ok=True)
        (self.instances_path / "_base").mkdir(exist_ok=True)
        try:
            out = await asyncio.create_subprocess_exec(
                self.qemu.binary, "--version", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL)
            text = (await out.communicate())[0].decode()
            numbers = text.split("version", 1)[1].split()[0].split("(")[0].split(".")
            major, minor, micro = (int(n) for n in (numbers + ["0", "0"])[:3])
            self.version = major * 1_000_000 + minor * 1_000 + micro
        except (OSError, IndexError, ValueError):
            LOG.warning("cannot tell the version of %s", self.qemu.binary)
        live = [r.uuid for r in self.records() if self.pid(r)]
        LOG.info("qemu driver on %s (namespace %s): %d guest(s) found running", self.host,
                 self.namespace or "-", len(live))

    def resources(self) -> HostResources:
        memory_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_kb = int(line.split()[1])
        self.instances_path.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.instances_path).free
        cpus = os.cpu_count() or 1
        return HostResources(
            hypervisor_hostname=self.host, hypervisor_type="QEMU",
            hypervisor_version=self.version, vcpus=cpus, memory_mb=memory_kb // 1024,
            local_gb=max(1, free >> 30),
            cpu_info={"arch": "x86_64", "model": "qemu64" if self.qemu.accel == "tcg" else
                      "host", "vendor": "QEMU", "features": [],
                      "topology": {"cores": cpus, "threads": 1, "sockets": 1}},
            traits=list(TRAITS))

    async def _start(self, rec: LaunchRecord, *, incoming: str | None = None) -> None:
        """Start the guest here (in this host's namespace) and record it as running."""
        paths = self.paths(rec.uuid)
        rec.host, rec.namespace, rec.run_tag = self.host, self.namespace, ""
        await process.start(rec, paths, self.qemu, incoming=incoming)
        rec.power = "running"
        save(paths, rec)

    async def _remove_files(self, paths: Paths) -> None:
        sockets = paths.sockets
        await asyncio.to_thread(shutil.rmtree, paths.dir, True)
        if sockets != paths.dir:
            await asyncio.to_thread(shutil.rmtree, sockets, True)

    async def wait_migration(self, rec: LaunchRecord, *, time_limit: float,
                             path: Path | None = None) -> dict[str, Any]:
        """Poll query-migrate until the outgoing migration ends; its final answer."""
        deadline = asyncio.get_running_loop().time() + time_limit
        while True:
            if path is None:
                state = await self.qmp(rec, "query-migrate")
            else:
                state = await qmp.execute(path, "query-migrate", name=rec.name)
            status = state.get("status")
            if status == "completed":
                return dict(state)
            if status in ("failed", "cancelled"):
                raise DriverError(f"migration {status}: {state.get('error-desc', '')}".strip())
            if asyncio.get_running_loop().time() > deadline:
                raise DriverError(f"migration did not complete in {time_limit:.0f}s")
            await asyncio.sleep(0.05)

    async def wait_incoming(self, rec: LaunchRecord, *, time_limit: float) -> None:
        deadline = asyncio.get_running_loop().time() + time_limit
        while await self.run_status(rec) == "inmigrate":
            if asyncio.get_running_loop().time() > deadline:
                raise DriverError(f"incoming state not loaded in {time_limit:.0f}s")
            await asyncio.sleep(0.05)


def vif_record(vif: dict[str, Any]) -> dict[str, Any]:
    mtu = vif.get("mtu") or (vif.get("network") or {}).get("mtu")
    return {"port_id": vif["port_id"], "mac_address": vif["mac_address"],
            "devname": vif.get("devname") or "tap" + vif["port_id"][:11], "mtu": mtu}


def shell_quote(path: Path) -> str:
    return shlex.quote(str(path))


def cpu_time_ns(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")

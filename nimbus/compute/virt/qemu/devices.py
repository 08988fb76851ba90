"""Hot-plug of NICs and volumes through QMP, and diagnostics. A guest that is not running
only has its launch record changed: the device is there when it starts next."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from nimbus.common import netns
from nimbus.compute import states
from nimbus.compute.virt.driver import DriverError
from nimbus.compute.virt.qemu import process, qmp
from nimbus.compute.virt.qemu.base import QemuBase, cpu_time_ns, vif_record
from nimbus.compute.virt.qemu.record import LaunchRecord, save

UNPLUG_TIMEOUT = 30.0


class DevicesMixin(QemuBase):
    async def _unplug(self, rec: LaunchRecord, device: str) -> None:
        """device_del, then wait for the DEVICE_DELETED of the device itself (QEMU sends one
        for its virtio backend first); the guest must let go of it (ACPI hot-unplug)."""
        async with qmp.connect(self.qmp_path(rec), rec.name) as session, \
                session.events(["DEVICE_DELETED"],
                               lambda ev: (ev.get("data") or {}).get("device") == device) as ev:
            await session.execute("device_del", {"id": device})
            await session.next_event(ev, UNPLUG_TIMEOUT)

    # -- NICs -------------------------------------------------------------------------------------
    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        rec = self.record(instance)
        new = vif_record(vif)
        if any(v["port_id"] == new["port_id"] for v in rec.vifs):
            return
        dev = new["devname"]
        if self.pid(rec):
            await process.add_taps(rec.namespace, [new], reuse=False)
            try:
                await self.qmp(rec, "netdev_add", {"type": "tap", "id": f"net-{dev}",
                                                   "ifname": dev, "script": "no",
                                                   "downscript": "no"})
                try:
                    await self.qmp(rec, "device_add", {
                        "driver": "virtio-net-pci", "id": f"nic-{dev}", "netdev": f"net-{dev}",
                        "mac": new["mac_address"]})
                except DriverError:
                    with contextlib.suppress(DriverError):
                        await self.qmp(rec, "netdev_del", {"id": f"net-{dev}"})
                    raise
            except BaseException:
                await process.delete_taps(rec.namespace, [dev])
                raise
        rec.vifs.append(new)
        save(self.paths(rec.uuid), rec)

    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        rec = self.record(instance)
        found = [v for v in rec.vifs if v["port_id"] == vif["port_id"]]
        if not found:
            return
        dev = found[0]["devname"]
        if self.pid(rec):
            await self._unplug(rec, f"nic-{dev}")
            with contextlib.suppress(DriverError):
                await self.qmp(rec, "netdev_del", {"id": f"net-{dev}"})
            await process.delete_taps(rec.namespace, [dev])
        rec.vifs = [v for v in rec.vifs if v["port_id"] != vif["port_id"]]
        save(self.paths(rec.uuid), rec)

    # -- volumes ----------------------------------------------------------------------------------
    async def attach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None:
        """connection: {"driver_volume_type": "local", "serial": <volume id>,
        "data": {"path": ..., "format": "qcow2"|"raw", "volume_id": ...}}"""
        rec = self.record(instance)
        vol = volume_record(connection, mountpoint)
        if any(v["node"] == vol["node"] for v in rec.volumes):
            return
        if self.pid(rec):
            await self.qmp(rec, "blockdev-add", {
                "driver": vol["format"], "node-name": vol["node"],
                "file": {"driver": "file", "node-name": f"{vol['node']}-f",
                         "filename": vol["path"]}})
            try:
                await self.qmp(rec, "device_add", {
                    "driver": "virtio-blk-pci", "id": vol["device"], "drive": vol["node"],
                    "serial": vol["serial"]})
            except DriverError:
                with contextlib.suppress(DriverError):
                    await self.qmp(rec, "blockdev-del", {"node-name": vol["node"]})
                raise
        rec.volumes.append(vol)
        save(self.paths(rec.uuid), rec)

    async def detach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None:
        rec = self.record(instance)
        node = volume_record(connection, mountpoint)["node"]
        found = [v for v in rec.volumes if v["node"] == node or v["mountpoint"] == mountpoint]
        if not found:
            return
        vol = found[0]
        if self.pid(rec):
            await self._unplug(rec, vol["device"])
            for name in (vol["node"], f"{vol['node']}-f"):  # -f: left when started with it
                with contextlib.suppress(DriverError):
                    await self.qmp(rec, "blockdev-del", {"node-name": name})
        rec.volumes = [v for v in rec.volumes if v["node"] != vol["node"]]
        save(self.paths(rec.uuid), rec)

    # -- diagnostics ------------------------------------------------------------------------------
    async def get_diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]:
        """Nova's diagnostics, from QMP (state, CPUs, block statistics), /proc (CPU time,
        uptime) and the taps' counters (the guest's receive is the tap's transmit)."""
        rec = self.record(instance)
        pid = self.pid(rec)
        status, cpus, blocks = "shutdown", [], []
        if pid:
            status = str((await self.qmp(rec, "query-status")).get("status"))
            cpus = await self.qmp(rec, "query-cpus-fast")
            blocks = await self.qmp(rec, "query-blockstats")
        power = {"running": states.RUNNING, "paused": states.PAUSED}.get(
            status, states.SHUTDOWN if not pid else states.PAUSED)
        cpu_ns = cpu_time_ns(pid) if pid else 0
        nics = [await nic_details(rec.namespace, v) if pid else nic_details_empty(v)
                for v in rec.vifs]
        return {
            "state": states.POWER_NAMES.get(power, "pending"), "driver": "libvirt",
            "hypervisor": "qemu", "hypervisor_os": "linux", "uptime": uptime(pid) if pid else 0,
            "config_drive": False, "num_cpus": rec.vcpus, "num_nics": len(rec.vifs),
            "num_disks": 1 + len(rec.volumes) + (1 if rec.rescue else 0),
            "memory_details": {"maximum": rec.memory_mb, "used": rec.memory_mb if pid else 0},
            "cpu_details": [{"id": c.get("cpu-index", i), "time": cpu_ns // max(1, len(cpus)),
                             "utilisation": None} for i, c in enumerate(cpus)],
            "nic_details": nics,
            "disk_details": [{"read_bytes": b["stats"].get("rd_bytes", 0),
                              "read_requests": b["stats"].get("rd_operations", 0),
                              "write_bytes": b["stats"].get("wr_bytes", 0),
                              "write_requests": b["stats"].get("wr_operations", 0),
                              "errors_count": b["stats"].get("failed_rd_operations", 0)
                              + b["stats"].get("failed_wr_operations", 0)}
                             for b in blocks if b.get("qdev")],
        }


def volume_record(connection: dict[str, Any], mountpoint: str) -> dict[str, Any]:
    data = connection.get("data") or {}
    if connection.get("driver_volume_type", "local") != "local":
        raise DriverError(f"volume type {connection.get('driver_volume_type')!r} is not "
                          f"supported by the qemu driver")
    path = data.get("path")
    if not path or not Path(path).exists():
        raise DriverError(f"volume file {path} is missing")
    fmt = data.get("format") or "raw"
    if fmt not in ("qcow2", "raw"):
        raise DriverError(f"volume format {fmt!r} is not supported")
    volume_id = str(connection.get("serial") or data.get("volume_id") or Path(path).name)
    node = "vol" + hashlib.sha256(volume_id.encode()).hexdigest()[:12]
    return {"volume_id": volume_id, "serial": volume_id[:20], "path": str(path),
            "format": fmt, "node": node, "device": f"disk-{node}", "mountpoint": mountpoint}


async def nic_details(namespace: str | None, vif: dict[str, Any]) -> dict[str, Any]:
    done = await netns.run(["ip", "-s", "-j", "link", "show", "dev", vif["devname"]],
                           namespace=namespace, check=False)
    stats: dict[str, Any] = {}
    if done.returncode == 0:
        with contextlib.suppress(ValueError, IndexError):
            stats = json.loads(done.stdout)[0].get("stats64") or {}
    rx, tx = stats.get("tx") or {}, stats.get("rx") or {}  # the guest's view
    return {"mac_address": vif.get("mac_address"), "rx_octets": rx.get("bytes", 0),
            "rx_errors": rx.get("errors", 0), "rx_drop": rx.get("dropped", 0),
            "rx_packets": rx.get("packets", 0), "rx_rate": None,
            "tx_octets": tx.get("bytes", 0), "tx_errors": tx.get("errors", 0),
            "tx_drop": tx.get("dropped", 0), "tx_packets": tx.get("packets", 0),
            "tx_rate": None}


def nic_details_empty(vif: dict[str, Any]) -> dict[str, Any]:
    return {"mac_address": vif.get("mac_address"), "rx_octets": 0, "rx_errors": 0,
            "rx_drop": 0, "rx_packets": 0, "rx_rate": None, "tx_octets": 0, "tx_errors": 0,
            "tx_drop": 0, "tx_packets": 0, "tx_rate": None}


def uptime(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = float(Path("/proc/uptime").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return 0
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return max(0, int(since_boot - started))

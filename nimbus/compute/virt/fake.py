"""The fake driver: guests are records in memory, with power states and a console log.

Its host size comes from settings (compute.fake_vcpus, fake_memory_mb, fake_disk_gb). Tests
can make operations fail: `driver.fail["spawn"] = "message"` fails the next spawn on that
host (`fail_always` keeps failing).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nimbus.common.timeutils import utcnow
from nimbus.compute import states
from nimbus.compute.virt.driver import (
    DriverError,
    GuestInfo,
    GuestNotFound,
    HostResources,
    VirtDriver,
)

TRAITS = ["COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG",
          "COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_VOLUME_EXTEND", "COMPUTE_VOLUME_MULTI_ATTACH",
          "COMPUTE_TRUSTED_CERTS", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW",
          "COMPUTE_RESCUE_BFV", "COMPUTE_DEVICE_TAGGING", "COMPUTE_NODE", "HW_CPU_X86_SSE2"]


@dataclass
class FakeGuest:
    uuid: str
    name: str
    memory_mb: int
    vcpus: int
    power_state: int = states.RUNNING
    rescued: bool = False
    console: list[str] = field(default_factory=list)
    interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    boots: int = 1

    def log(self, line: str) -> None:
        self.console.append(f"[{utcnow().strftime('%H:%M:%S')}] {line}")


class FakeDriver(VirtDriver):
    def __init__(self, host: str, settings: Any, cloud_settings: Any = None) -> None:
        super().__init__(host, settings, cloud_settings)
        self.guests: dict[str, FakeGuest] = {}
        # One-shot failures by operation name, and permanent ones.
        self.fail: dict[str, str] = {}
        self.fail_always: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def _maybe_fail(self, op: str) -> None:
        if op in self.fail_always:
            raise DriverError(self.fail_always[op])
        message = self.fail.pop(op, None)
        if message is not None:
            raise DriverError(message)

    def _guest(self, instance: dict[str, Any]) -> FakeGuest:
        guest = self.guests.get(instance["uuid"])
        if guest is None:
            raise GuestNotFound(f"Instance {instance['uuid']} could not be found.")
        return guest

    def resources(self) -> HostResources:
        s = self.settings
        return HostResources(
            hypervisor_hostname=self.host, hypervisor_type="fake", hypervisor_version=1000,
            vcpus=s.fake_vcpus, memory_mb=s.fake_memory_mb, local_gb=s.fake_disk_gb,
            cpu_info={"arch": "x86_64", "model": "fake", "vendor": "nimbus",
                      "topology": {"cores": s.fake_vcpus, "threads": 1, "sockets": 1},
                      "features": []},
            traits=list(TRAITS))

    async def list_instances(self) -> list[str]:
        return list(self.guests)

    async def get_info(self, instance: dict[str, Any]) -> GuestInfo:
        guest = self._guest(instance)
        return GuestInfo(power_state=guest.power_state, memory_mb=guest.memory_mb,
                         vcpus=guest.vcpus, cpu_time_ns=guest.boots * 1_000_000)

    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any],
                    network_info: list[dict[str, Any]], *, image_path: str | None = None,
                    admin_password: str | None = None,
                    block_device_info: dict[str, Any] | None = None) -> None:
        self.calls.append(("spawn", instance["uuid"]))
        self._maybe_fail("spawn")
        flavor = instance.get("flavor") or {}
        guest = FakeGuest(uuid=instance["uuid"], name=instance.get("name", ""),
                          memory_mb=int(flavor.get("memory_mb", 0)),
                          vcpus=int(flavor.get("vcpus", 0)))
        for vif in network_info:
            guest.interfaces[vif["port_id"]] = vif
        guest.log(f"Booting {instance.get('hostname') or instance['uuid']} on {self.host}")
        guest.log(f"Image: {image_meta.get('name') or instance.get('image_ref') or 'volume'}")
        for vif in network_info:
            for ip in vif.get("fixed_ips", []):
                guest.log(f"eth{len(guest.console)}: {vif.get('mac_address')} "
                          f"{ip.get('ip_address')}")
        if instance.get("key_data"):
            guest.log("SSH key injected")
        guest.log(f"login: {instance.get('hostname') or 'fake'} is up")
        self.guests[guest.uuid] = guest

    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                      *, destroy_disks: bool = True) -> None:
        self.calls.append(("destroy", instance["uuid"]))
        self._maybe_fail("destroy")
        self.guests.pop(instance["uuid"], None)

    async def reboot(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     reboot_type: str) -> None:
        self._maybe_fail("reboot")
        guest = self._guest(instance)
        guest.power_state = states.RUNNING
        guest.boots += 1
        guest.log(f"{reboot_type.lower()} reboot")

    async def power_off(self, instance: dict[str, Any], clean_shutdown: bool = True) -> None:
        self._maybe_fail("power_off")
        guest = self._guest(instance)
        guest.power_state = states.SHUTDOWN
        guest.log("powered off")

    async def power_on(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None:
        self._maybe_fail("power_on")
        guest = self._guest(instance)
        guest.power_state = states.RUNNING
        guest.boots += 1
        guest.log("powered on")

    async def pause(self, instance: dict[str, Any]) -> None:
        self._maybe_fail("pause")
        self._guest(instance).power_state = states.PAUSED

    async def unpause(self, instance: dict[str, Any]) -> None:
        self._maybe_fail("unpause")
        self._guest(instance).power_state = states.RUNNING

    async def suspend(self, instance: dict[str, Any]) -> None:
        self._maybe_fail("suspend")
        self._guest(instance).power_state = states.SUSPENDED

    async def resume(self, instance: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None:
        self._maybe_fail("resume")
        self._guest(instance).power_state = states.RUNNING

    async def rescue(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     image_meta: dict[str, Any], rescue_password: str | None, *,
                     image_path: str | None = None) -> None:
        self._maybe_fail("rescue")
        guest = self._guest(instance)
        guest.rescued = True
        guest.power_state = states.RUNNING
        guest.log("rescue mode")

    async def unrescue(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None:
        self._maybe_fail("unrescue")
        guest = self._guest(instance)
        guest.rescued = False
        guest.log("left rescue mode")

    async def snapshot(self, instance: dict[str, Any]) -> AsyncIterator[bytes]:
        self._maybe_fail("snapshot")
        guest = self._guest(instance)
        yield b"fake snapshot of " + guest.uuid.encode() + b"\n"
        yield hashlib.sha256(guest.uuid.encode()).digest()

    async def migrate_disk_and_power_off(self, instance: dict[str, Any], dest: str,
                                         flavor: dict[str, Any],
                                         network_info: list[dict[str, Any]]) -> None:
        self._maybe_fail("migrate_disk_and_power_off")
        guest = self.guests.get(instance["uuid"])
        if guest is not None:
            guest.power_state = states.SHUTDOWN

    async def finish_migration(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                               image_meta: dict[str, Any], power_on: bool) -> None:
        self._maybe_fail("finish_migration")
        flavor = instance.get("flavor") or {}
        guest = FakeGuest(uuid=instance["uuid"], name=instance.get("name", ""),
                          memory_mb=int(flavor.get("memory_mb", 0)),
                          vcpus=int(flavor.get("vcpus", 0)),
                          power_state=states.RUNNING if power_on else states.SHUTDOWN)
        guest.log(f"migrated to {self.host}")
        self.guests[guest.uuid] = guest

    async def finish_revert_migration(self, instance: dict[str, Any],
                                      network_info: list[dict[str, Any]],
                                      power_on: bool) -> None:
        flavor = instance.get("flavor") or {}
        guest = self.guests.get(instance["uuid"]) or FakeGuest(
            uuid=instance["uuid"], name=instance.get("name", ""),
            memory_mb=int(flavor.get("memory_mb", 0)), vcpus=int(flavor.get("vcpus", 0)))
        guest.power_state = states.RUNNING if power_on else states.SHUTDOWN
        self.guests[guest.uuid] = guest

    async def confirm_migration(self, instance: dict[str, Any],
                                network_info: list[dict[str, Any]]) -> None:
        self.guests.pop(instance["uuid"], None)

    async def live_migration(self, instance: dict[str, Any], dest: str) -> None:
        self._maybe_fail("live_migration")
        self.guests.pop(instance["uuid"], None)

    async def receive_live_migration(self, instance: dict[str, Any],
                                     network_info: list[dict[str, Any]]) -> None:
        flavor = instance.get("flavor") or {}
        guest = FakeGuest(uuid=instance["uuid"], name=instance.get("name", ""),
                          memory_mb=int(flavor.get("memory_mb", 0)),
                          vcpus=int(flavor.get("vcpus", 0)))
        guest.log(f"live-migrated to {self.host}")
        self.guests[guest.uuid] = guest

    async def get_console_output(self, instance: dict[str, Any]) -> str:
        guest = self._guest(instance)
        return "\n".join(guest.console) + "\n"

    async def get_diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]:
        guest = self._guest(instance)
        return {
            "state": states.POWER_NAMES.get(guest.power_state, "pending"),
            "driver": "libvirt", "hypervisor": "fake", "hypervisor_os": "fake-os",
            "uptime": 46664, "config_drive": False, "num_cpus": guest.vcpus,
            "num_nics": len(guest.interfaces), "num_disks": 1,
            "memory_details": {"maximum": guest.memory_mb, "used": guest.memory_mb // 2},
            "cpu_details": [{"id": i, "time": 17300000000, "utilisation": 15}
                            for i in range(guest.vcpus)],
            "nic_details": [{"mac_address": vif.get("mac_address"), "rx_octets": 2070139,
                             "rx_errors": 0, "rx_drop": 0, "rx_packets": 26701,
                             "rx_rate": None, "tx_octets": 140208, "tx_errors": 0,
                             "tx_drop": 0, "tx_packets": 662, "tx_rate": None}
                            for vif in guest.interfaces.values()],
            "disk_details": [{"read_bytes": 262144, "read_requests": 112,
                              "write_bytes": 5778432, "write_requests": 488,
                              "errors_count": 1}],
        }

    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        self._maybe_fail("attach_interface")
        self._guest(instance).interfaces[vif["port_id"]] = vif

    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        self._maybe_fail("detach_interface")
        self._guest(instance).interfaces.pop(vif["port_id"], None)

    async def attach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None:
        self._guest(instance).volumes[mountpoint] = connection

    async def detach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None:
        self._guest(instance).volumes.pop(mountpoint, None)

    async def set_admin_password(self, instance: dict[str, Any], password: str) -> None:
        self._guest(instance).log("admin password changed")

    async def recover(self, instance: dict[str, Any], power_state: int) -> None:
        flavor = instance.get("flavor") or {}
        guest = FakeGuest(uuid=instance["uuid"], name=instance.get("name", ""),
                          memory_mb=int(flavor.get("memory_mb", 0)),
                          vcpus=int(flavor.get("vcpus", 0)), power_state=power_state,
                          rescued=instance.get("vm_state") == states.RESCUED)
        for vif in instance.get("network_info") or []:
            guest.interfaces[vif["port_id"]] = vif
        guest.log(f"recovered on {self.host} after a restart")
        self.guests[guest.uuid] = guest

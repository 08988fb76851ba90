"""The interface every virt driver implements (fake now, qemu later).

A driver manages the guests of one host. It never touches the database: the compute agent
hands it plain dicts (the instance, its network info, image metadata) and reports what it
says. `instance` carries at least: uuid, name (instance-%08x), flavor (memory_mb, vcpus,
root_gb, ephemeral_gb, swap, extra_specs), image_ref, metadata, key_data, user_data, hostname,
host, node, project_id, user_id.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimbus.compute import states

if TYPE_CHECKING:
    from nimbus.common.settings import Settings

DRIVERS = {"fake": "nimbus.compute.virt.fake:FakeDriver",
           "qemu": "nimbus.compute.virt.qemu:QemuDriver"}


class DriverError(Exception):
    """A driver operation failed; the message goes into the instance fault."""


class GuestNotFound(DriverError):
    pass


@dataclass
class GuestInfo:
    power_state: int = states.NOSTATE
    memory_mb: int = 0
    vcpus: int = 0
    cpu_time_ns: int = 0


@dataclass
class HostResources:
    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str = "127.0.0.1"
    cpu_info: dict[str, Any] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"hypervisor_hostname": self.hypervisor_hostname,
                "hypervisor_type": self.hypervisor_type,
                "hypervisor_version": self.hypervisor_version, "vcpus": self.vcpus,
                "memory_mb": self.memory_mb, "local_gb": self.local_gb,
                "host_ip": self.host_ip, "cpu_info": self.cpu_info}


class VirtDriver(ABC):
    """One per host. Methods are coroutines; blocking work goes to threads or subprocesses."""

    # Whether spawn needs the image's data on local disk (the agent fetches and caches it
    # into `image_cache_path` and passes `image_path=` to spawn, rebuild, rescue, unshelve).
    needs_image_data = False
    image_cache_path: Path | None = None

    def __init__(self, host: str, settings: Any, cloud_settings: Settings | None = None) -> None:
        self.host = host
        self.settings = settings
        # The whole process's settings (state_dir, dataplane nodes); None in unit tests.
        self.cloud_settings = cloud_settings

    async def init_host(self) -> None:  # noqa: B027 - optional hook
        """Called once when the agent starts."""

    async def cleanup_host(self) -> None:  # noqa: B027 - optional hook
        """Called when the agent stops."""

    @abstractmethod
    def resources(self) -> HostResources: ...

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """uuids of the guests this host runs."""

    @abstractmethod
    async def get_info(self, instance: dict[str, Any]) -> GuestInfo: ...

    @abstractmethod
    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any],
                    network_info: list[dict[str, Any]], *, image_path: str | None = None,
                    admin_password: str | None = None,
                    block_device_info: dict[str, Any] | None = None) -> None: ...

    @abstractmethod
    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                      *, destroy_disks: bool = True) -> None:
        """Remove the guest; a guest that is not there is not an error."""

    @abstractmethod
    async def reboot(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     reboot_type: str) -> None: ...

    @abstractmethod
    async def power_off(self, instance: dict[str, Any], clean_shutdown: bool = True) -> None: ...

    @abstractmethod
    async def power_on(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    async def pause(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def unpause(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def suspend(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def resume(self, instance: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    async def rescue(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                     image_meta: dict[str, Any], rescue_password: str | None, *,
                     image_path: str | None = None) -> None: ...

    @abstractmethod
    async def unrescue(self, instance: dict[str, Any],
                       network_info: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    def snapshot(self, instance: dict[str, Any]) -> AsyncIterator[bytes]:
        """The guest's root disk as image data."""

    @abstractmethod
    async def migrate_disk_and_power_off(self, instance: dict[str, Any], dest: str,
                                         flavor: dict[str, Any],
                                         network_info: list[dict[str, Any]]) -> None:
        """Source side of a resize or cold migration."""

    @abstractmethod
    async def finish_migration(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                               image_meta: dict[str, Any], power_on: bool) -> None:
        """Destination side of a resize or cold migration."""

    @abstractmethod
    async def finish_revert_migration(self, instance: dict[str, Any],
                                      network_info: list[dict[str, Any]],
                                      power_on: bool) -> None:
        """Back on the source after a revert."""

    @abstractmethod
    async def confirm_migration(self, instance: dict[str, Any],
                                network_info: list[dict[str, Any]]) -> None:
        """Clean the source after a confirmed resize."""

    @abstractmethod
    async def live_migration(self, instance: dict[str, Any], dest: str) -> None:
        """Move a running guest to dest (whose driver then receives it)."""

    @abstractmethod
    async def receive_live_migration(self, instance: dict[str, Any],
                                     network_info: list[dict[str, Any]]) -> None:
        """Destination side of a live migration."""

    @abstractmethod
    async def get_console_output(self, instance: dict[str, Any]) -> str: ...

    @abstractmethod
    async def get_diagnostics(self, instance: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None: ...

    @abstractmethod
    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None: ...

    @abstractmethod
    async def attach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None: ...

    @abstractmethod
    async def detach_volume(self, instance: dict[str, Any], connection: dict[str, Any],
                            mountpoint: str) -> None: ...

    async def set_admin_password(self, instance: dict[str, Any], password: str) -> None:
        raise DriverError("set_admin_password is not supported by this driver")

    @abstractmethod
    async def recover(self, instance: dict[str, Any], power_state: int) -> None:
        """At agent start: a guest the database places here is missing (the host
        restarted); bring it back in the power state recorded."""


def load_driver(name: str, host: str, settings: Any, *,
                cloud_settings: Settings | None = None) -> VirtDriver:
    """The driver `name` for `host`; `settings` are the ComputeSettings, `cloud_settings`
    the process's Settings (state_dir, and the host's node in dataplane.node(host))."""
    spec = DRIVERS.get(name)
    if spec is None:
        raise ValueError(f"unknown virt driver {name!r}; known: {', '.join(sorted(DRIVERS))}")
    module_name, _, cls_name = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    driver: VirtDriver = cls(host, settings, cloud_settings)
    return driver

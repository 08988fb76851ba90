"""DiskWeigher: more free disk weighs more."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    name = "DiskWeigher"
    multiplier = 1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        return host.free_disk_gb

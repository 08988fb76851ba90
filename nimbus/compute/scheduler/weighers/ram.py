"""RAMWeigher: more free memory weighs more (spreads servers out)."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    name = "RAMWeigher"
    multiplier = 1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        return host.free_ram_mb

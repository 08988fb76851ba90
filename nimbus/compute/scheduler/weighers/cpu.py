"""CPUWeigher: more free vCPUs weighs more."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    name = "CPUWeigher"
    multiplier = 1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        return host.free_vcpus

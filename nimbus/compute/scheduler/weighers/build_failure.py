"""BuildFailureWeigher: hosts where builds failed lately weigh much less."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    name = "BuildFailureWeigher"
    multiplier = -1000000.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        return host.failed_builds

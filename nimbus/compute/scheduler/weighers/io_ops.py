"""IoOpsWeigher: hosts busy with builds and resizes weigh less."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    needs_counts = True
    name = "IoOpsWeigher"
    multiplier = -1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        return host.num_io_ops

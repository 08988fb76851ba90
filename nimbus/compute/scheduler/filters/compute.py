"""ComputeFilter: the host's compute service is enabled and up."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "ComputeFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        return host.service_up and not host.service_disabled

"""AllHostsFilter: every host passes."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "AllHostsFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        return True

"""NumInstancesFilter: at most `max_instances_per_host` servers per host (aggregate
metadata of that name overrides the default of 50)."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState

DEFAULT = 50


class Filter(BaseFilter):
    needs_counts = True
    name = "NumInstancesFilter"

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        values = [int(v) for v in host.metadata("max_instances_per_host") if v.isdigit()]
        return host.num_instances < (min(values) if values else DEFAULT)

"""IoOpsFilter: hosts busy with more than `max_io_ops_per_host` builds, resizes and
snapshots (default 8) take no more."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState

DEFAULT = 8


class Filter(BaseFilter):
    needs_counts = True
    name = "IoOpsFilter"

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        values = [int(v) for v in host.metadata("max_io_ops_per_host") if v.isdigit()]
        return host.num_io_ops < (min(values) if values else DEFAULT)

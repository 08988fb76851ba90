"""SameHostFilter: the `same_host` hint names servers; the host must run one of them."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "SameHostFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        wanted = spec.get("same_host_hosts")
        return wanted is None or host.host in wanted

"""DifferentHostFilter: the `different_host` hint names servers; the host must run none."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "DifferentHostFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        return host.host not in (spec.get("different_host_hosts") or ())

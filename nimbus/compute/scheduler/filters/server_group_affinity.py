"""ServerGroupAffinityFilter: members of an `affinity` group share one host."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "ServerGroupAffinityFilter"

    def applies(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("group")) and spec["group"].get("policy") == "affinity"

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        group = spec.get("group")
        if not group or group.get("policy") != "affinity":
            return True
        hosts = group.get("hosts") or []
        return not hosts or host.host in hosts

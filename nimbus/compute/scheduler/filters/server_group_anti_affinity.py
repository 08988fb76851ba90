"""ServerGroupAntiAffinityFilter: members of an `anti-affinity` group go to different hosts
(at most rules.max_server_per_host on one host, default 1)."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "ServerGroupAntiAffinityFilter"

    def applies(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("group")) and spec["group"].get("policy") == "anti-affinity"

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        group = spec.get("group")
        if not group or group.get("policy") != "anti-affinity":
            return True
        limit = int((group.get("rules") or {}).get("max_server_per_host", 1))
        count = sum(1 for h in group.get("hosts") or [] if h == host.host)
        return count < limit

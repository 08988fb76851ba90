"""ServerGroupSoftAffinityWeigher and ServerGroupSoftAntiAffinityWeigher: members of a
soft-affinity group prefer hosts running more members; soft-anti-affinity, fewer."""

from typing import Any

from nimbus.compute.scheduler.host_state import HostState
from nimbus.compute.scheduler.weighers import BaseWeigher


class Weigher(BaseWeigher):
    name = "ServerGroupSoftAffinityWeigher"
    multiplier = 1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        group = spec.get("group") or {}
        members = sum(1 for h in group.get("hosts") or [] if h == host.host)
        if group.get("policy") == "soft-affinity":
            return members
        if group.get("policy") == "soft-anti-affinity":
            return -members
        return 0.0

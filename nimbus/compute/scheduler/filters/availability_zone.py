"""AvailabilityZoneFilter: the host is in the zone the server asked for."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "AvailabilityZoneFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        zone = spec.get("availability_zone")
        return not zone or zone in host.zone.split(",")

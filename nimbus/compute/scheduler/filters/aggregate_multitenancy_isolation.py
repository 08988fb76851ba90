"""AggregateMultiTenancyIsolation: hosts in an aggregate with `filter_tenant_id` metadata
take only those projects' servers."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState


class Filter(BaseFilter):
    name = "AggregateMultiTenancyIsolation"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        allowed: set[str] = set()
        for agg in host.aggregates:
            for key, value in agg["metadata"].items():
                if key == "filter_tenant_id" or key.startswith("filter_tenant_id"):
                    allowed |= {v.strip() for v in value.split(",")}
        return not allowed or spec.get("project_id") in allowed

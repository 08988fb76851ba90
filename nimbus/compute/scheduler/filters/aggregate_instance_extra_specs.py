"""AggregateInstanceExtraSpecsFilter: flavor extra specs scoped
`aggregate_instance_extra_specs:` (or unscoped) must match the host's aggregate metadata."""

from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState

SCOPE = "aggregate_instance_extra_specs"


class Filter(BaseFilter):
    name = "AggregateInstanceExtraSpecsFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        specs: dict[str, str] = (spec.get("flavor") or {}).get("extra_specs") or {}
        for key, wanted in specs.items():
            scope, sep, name = key.partition(":")
            if sep and scope != SCOPE:
                continue
            name = name if sep else key
            values = host.metadata(name)
            if not values:
                if sep:
                    return False
                continue
            options = [w.strip() for w in str(wanted).removeprefix("<or>").split("<or>")] \
                if str(wanted).startswith("<or>") else [str(wanted).strip()]
            have = {x.strip() for v in values for x in v.split(",")}
            if not have & set(options):
                return False
        return True

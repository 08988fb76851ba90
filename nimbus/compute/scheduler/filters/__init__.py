"""Host filters: one rule per module, enabled by name in compute.scheduler_filters.

A filter's `host_passes(host, spec)` says whether a host may take one more instance of the
request. `spec` is the request spec dict (see nimbus.compute.scheduler.request)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from nimbus.compute.scheduler.host_state import HostState


class BaseFilter:
    name = ""
    # Filters whose answer cannot change between instances of one request run once.
    run_once = False

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        raise NotImplementedError

    def applies(self, spec: dict[str, Any]) -> bool:
        """False when the rule cannot reject anything for this request (skipped)."""
        return True

    def filter_all(self, hosts: list[HostState], spec: dict[str, Any]) -> list[HostState]:
        return [h for h in hosts if self.host_passes(h, spec)]


def module_name(name: str) -> str:
    """'ComputeFilter' or 'compute' -> 'compute'."""
    base = name.removesuffix("Filter")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def load(names: list[str]) -> list[BaseFilter]:
    out = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{module_name(name)}")
        out.append(module.Filter())
    return out

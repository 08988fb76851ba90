"""Host weighers: one rule per module, enabled by name in compute.scheduler_weighers.

Each weigher gives every host a raw weight; weights are normalised to 0..1 across the
candidates, multiplied by the weigher's multiplier and summed. The heaviest host wins."""

from __future__ import annotations

import importlib
import re
from typing import Any

from nimbus.compute.scheduler.host_state import HostState


class BaseWeigher:
    name = ""
    multiplier = 1.0

    def weight(self, host: HostState, spec: dict[str, Any]) -> float:
        raise NotImplementedError


def module_name(name: str) -> str:
    base = name.removesuffix("Weigher")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def load(names: list[str]) -> list[BaseWeigher]:
    return [importlib.import_module(f"{__name__}.{module_name(n)}").Weigher() for n in names]


def weigh(weighers: list[BaseWeigher], hosts: list[HostState],
          spec: dict[str, Any]) -> list[HostState]:
    """Hosts, heaviest first (ties keep their order)."""
    if len(hosts) <= 1:
        return list(hosts)
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        raw = [weigher.weight(h, spec) for h in hosts]
        low, high = min(raw), max(raw)
        if high == low:
            continue
        span = high - low
        for i, value in enumerate(raw):
            totals[i] += weigher.multiplier * (value - low) / span
    order = sorted(range(len(hosts)), key=lambda i: -totals[i])
    return [hosts[i] for i in order]

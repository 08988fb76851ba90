"""Bus topics of compute and their targets.

    compute-conductor   the conductor (API processes): builds, agent reports, heartbeats
    compute-scheduler   the scheduler (API processes): select_destinations
    compute-agent:HOST  one compute agent per hypervisor host: spawn, destroy, actions
    compute             server external events from other services (network-vif-plugged)
    compute-metadata    the metadata service's content (API processes), asked by the network
                        side's metadata proxies
"""

from __future__ import annotations

from nimbus.bus import Target

CONDUCTOR_TOPIC = "compute-conductor"
SCHEDULER_TOPIC = "compute-scheduler"
AGENT_TOPIC = "compute-agent"
EVENTS_TOPIC = "compute"
METADATA_TOPIC = "compute-metadata"

CONDUCTOR = Target(CONDUCTOR_TOPIC, version="1.0")
SCHEDULER = Target(SCHEDULER_TOPIC, version="1.0")
METADATA = Target(METADATA_TOPIC, version="1.0")


def agent(host: str) -> Target:
    return Target(AGENT_TOPIC, server=host, version="1.0")

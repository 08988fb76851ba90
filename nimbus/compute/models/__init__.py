"""The compute service's tables. Split by concept: the catalog (flavors, keypairs, quotas,
aggregates, server groups), the hosts (services, compute nodes), instances and what records
their history (actions and events, faults, migrations)."""

from nimbus.compute.models.base import Base
from nimbus.compute.models.catalog import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    Flavor,
    FlavorExtraSpec,
    FlavorProject,
    KeyPair,
    ProjectUserQuota,
    Quota,
    QuotaClass,
    ServerGroup,
    ServerGroupMember,
)
from nimbus.compute.models.hosts import ComputeNode, Service
from nimbus.compute.models.instances import (
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceTag,
    Migration,
)

__all__ = [
    "Aggregate",
    "AggregateHost",
    "AggregateMetadata",
    "Base",
    "ComputeNode",
    "Flavor",
    "FlavorExtraSpec",
    "FlavorProject",
    "Instance",
    "InstanceAction",
    "InstanceActionEvent",
    "InstanceFault",
    "InstanceTag",
    "KeyPair",
    "Migration",
    "ProjectUserQuota",
    "Quota",
    "QuotaClass",
    "ServerGroup",
    "ServerGroupMember",
    "Service",
]

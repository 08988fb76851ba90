"""The network service's tables."""

from nimbus.network.models.base import Base, Standard
from nimbus.network.models.core import IPAllocation, Network, Port, PortSecurityGroup, Subnet
from nimbus.network.models.l3 import FloatingIP, PortForwarding, Router, RouterPort
from nimbus.network.models.misc import (
    AddressScope,
    Agent,
    Mark,
    MeteringLabel,
    MeteringLabelRule,
    NetworkAgentBinding,
    Quota,
    RBACPolicy,
    SubnetPool,
    Tag,
)
from nimbus.network.models.security import (
    AddressGroup,
    DefaultSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)
from nimbus.network.models.segments import AutoAllocatedTopology, NetworkSegment

__all__ = [
    "AddressGroup", "AddressScope", "Agent", "AutoAllocatedTopology", "Base",
    "DefaultSecurityGroup", "FloatingIP", "IPAllocation", "Mark", "MeteringLabel",
    "MeteringLabelRule", "Network", "NetworkAgentBinding", "NetworkSegment", "Port",
    "PortForwarding", "PortSecurityGroup", "Quota", "RBACPolicy", "Router", "RouterPort",
    "SecurityGroup", "SecurityGroupRule", "Standard", "Subnet", "SubnetPool", "Tag",
]

"""The API extensions this service implements: exactly what GET /v2.0/extensions lists."""

from __future__ import annotations

from typing import Any

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "address-group": ("Address group", "Support address group"),
    "address-scope": ("Address scope", "Address scopes extension."),
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs",
                              "Provides allowed address pairs"),
    "auto-allocated-topology": ("Auto Allocated Topology Services", "Auto Allocated "
                                "Topology Services."),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external "
                "application"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a "
                            "subnetpool as the default."),
    "dhcp_agent_scheduler": ("DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    "dvr": ("Distributed Virtual Router", "Enables configuration of Distributed Virtual "
            "Routers."),
    "l3-ha": ("HA Router extension", "Adds HA capability to routers."),
    "metering": ("Neutron Metering", "Neutron Metering extension."),
    "tag": ("Tag support", "Enables to set tag on resources."),
    "dns-integration": ("DNS Integration", "Provides integration with DNS."),
    "empty-string-filtering": ("Empty String Filtering Extension", "Allow filtering by "
                               "attributes with empty string value"),
    "external-net": ("Neutron external network", "Adds external network attribute to "
                     "network resource."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "Extension of the "
                    "router abstraction for specifying whether SNAT should occur on the "
                    "external gateway"),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP. "
                       "For example PXE boot options to DHCP clients can be specified (e.g. "
                       "tftp-server, server-ip-address, bootfile-name)"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": ("Atomically add/remove extra routes", "Edit extra routes of a "
                          "router on server side by atomically adding/removing extra routes"),
    "fip-port-details": ("Floating IP Port Details Extension", "Add port_details attribute "
                         "to Floating IP resource"),
    "floatingip-port-forwarding": ("Floating IP Port Forwarding", "Provides floating IP port "
                                   "forwarding."),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address "
                               "substring filtering when listing ports"),
    "l3_agent_scheduler": ("L3 Agent Scheduler", "Schedule routers among l3 agents"),
    "l2_adjacency": ("L2 Adjacency", "Display L2 Adjacency for Neutron Networks."),
    "multi-provider": ("Multi Provider Network", "Expose mapping of virtual networks to "
                       "multiple physical networks"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a "
                         "network resource."),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data "
                                "for each network and subnet."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support "
                                  "for network."),
    "port-security": ("Port Security", "Provides port security"),
    "port-security-groups-filtering": ("Port filtering on security groups", "Provides "
                                       "security groups filtering when listing ports"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id "
                   "field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical "
                 "networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per "
               "tenant"),
    "quota_details": ("Quota details management support", "Expose functions for quotas "
                      "usage statistics per project"),
    "rbac-address-scope": ("Add address_scope type to RBAC", "Add address_scope type to "
                           "RBAC"),
    "rbac-policies": ("RBAC Policies", "Allows creation and modification of policies that "
                      "control tenant access to resources."),
    "rbac-security-groups": ("Add security_group type to network RBAC", "Add "
                             "security_group type to network RBAC"),
    "rbac-subnetpool": ("Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    "revision-if-match": ("If-Match constraints based on revision_number", "Extension "
                          "indicating that If-Match based on revision_number is supported."),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
               "Neutron networks and access to external networks via a NAT gateway."),
    "router_availability_zone": ("Router Availability Zone", "Availability zone support for "
                                 "router."),
    "segment": ("Segment", "Segments extension."),
    "security-group": ("security-group", "The security groups extension."),
    "security-groups-remote-address-group": ("Remote address group id field for security "
                                             "group rules", "Add new field of remote "
                                             "address group id in security group rules"),
    "service-type": ("Neutron Service Type Management", "API for retrieving service "
                     "providers for Neutron advanced services"),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is "
                   "enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add "
                                  "descriptions to standard attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display "
                                "the revision number of neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, "
                          "trunk, network_segment_range, router, network, policy, "
                          "subnetpool, port, security_group, floatingip", "Enables to set "
                          "tag on resources with standard attribute."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at "
                                "fields to all Neutron resources that have Neutron standard "
                                "attributes."),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group "
                                "is stateful or not"),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet "
                          "pool"),
    "subnet-service-types": ("Subnet service types", "Provides ability to set the subnet "
                             "service_types field"),
    "subnetpool-prefix-ops": ("Subnetpool prefixes add/remove", "Provides support for "
                              "adjusting the prefix list of subnet pools"),
}


def render(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description,
            "updated": "2026-01-01T00:00:00-00:00", "links": []}


def aliases() -> list[str]:
    return sorted(EXTENSIONS)

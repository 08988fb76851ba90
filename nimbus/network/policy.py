"""Networking's default RBAC rules (operators override them with network.policy_file).

Rule names follow upstream ("create_network", "create_network:shared", ...). Who may see a
resource at all (own, shared, external, RBAC-granted) is decided by the queries; these rules
decide which actions and which attributes a caller may use.
"""

ADMIN = "role:admin"
OWNER = "project_id:%(project_id)s"
ADMIN_OR_OWNER = f"{ADMIN} or {OWNER}"
NET_OWNER = "project_id:%(network:project_id)s"
ADMIN_OR_NET_OWNER = f"{ADMIN} or {NET_OWNER}"


def _crud(kind: str, *, read: str = "rule:admin_or_owner", write: str = "rule:admin_or_owner",
          create: str | None = None, plural: str | None = None) -> dict[str, str]:
    return {f"create_{kind}": create or write, f"get_{kind}": read, f"update_{kind}": write,
            f"delete_{kind}": write}


RULES: dict[str, str] = {
    "context_is_admin": ADMIN,
    "admin_only": ADMIN,
    "admin_or_owner": ADMIN_OR_OWNER,
    "admin_or_network_owner": ADMIN_OR_NET_OWNER,
    "regular_user": "@",
    **_crud("network"),
    "create_network:shared": ADMIN,
    "create_network:router:external": ADMIN,
    "create_network:is_default": ADMIN,
    "create_network:provider:network_type": ADMIN,
    "create_network:provider:physical_network": ADMIN,
    "create_network:provider:segmentation_id": ADMIN,
    "create_network:segments": ADMIN,
    "update_network:shared": ADMIN,
    "update_network:router:external": ADMIN,
    "update_network:is_default": ADMIN,
    "update_network:provider:network_type": ADMIN,
    "update_network:provider:physical_network": ADMIN,
    "update_network:provider:segmentation_id": ADMIN,
    "update_network:segments": ADMIN,
    "get_network:provider:network_type": ADMIN,
    "get_network:provider:physical_network": ADMIN,
    "get_network:provider:segmentation_id": ADMIN,
    "get_network:segments": ADMIN,
    "create_segment": ADMIN, "get_segment": ADMIN, "update_segment": ADMIN,
    "delete_segment": ADMIN,
    **_crud("subnet", create=ADMIN_OR_NET_OWNER, write=ADMIN_OR_NET_OWNER),
    "create_subnet:segment_id": ADMIN,
    "create_subnet:service_types": ADMIN,
    "update_subnet:service_types": ADMIN,
    **_crud("port", read=f"{ADMIN_OR_OWNER} or {NET_OWNER}",
            write=f"{ADMIN_OR_OWNER} or {NET_OWNER}"),
    # Checked only when the device_owner starts with "network:".
    "create_port:device_owner": ADMIN_OR_NET_OWNER,
    "create_port:mac_address": ADMIN_OR_NET_OWNER,
    "create_port:fixed_ips:ip_address": ADMIN_OR_NET_OWNER,
    "create_port:binding:host_id": ADMIN,
    "create_port:binding:profile": ADMIN,
    "create_port:allowed_address_pairs": f"{ADMIN_OR_OWNER} or {NET_OWNER}",
    "update_port:mac_address": ADMIN,
    "update_port:fixed_ips:ip_address": ADMIN_OR_NET_OWNER,
    "update_port:binding:host_id": ADMIN,
    "update_port:binding:profile": ADMIN,
    "get_port:binding:vif_type": ADMIN,
    "get_port:binding:vif_details": ADMIN,
    "get_port:binding:host_id": ADMIN,
    "get_port:binding:profile": ADMIN,
    **_crud("router"),
    "create_router:external_gateway_info:enable_snat": ADMIN,
    "create_router:external_gateway_info:external_fixed_ips": ADMIN,
    "create_router:distributed": ADMIN,
    "create_router:ha": ADMIN,
    "update_router:external_gateway_info:enable_snat": ADMIN,
    "update_router:external_gateway_info:external_fixed_ips": ADMIN,
    "update_router:distributed": ADMIN,
    "update_router:ha": ADMIN,
    "get_router:distributed": ADMIN,
    "get_router:ha": ADMIN,
    "add_router_interface": ADMIN_OR_OWNER,
    "remove_router_interface": ADMIN_OR_OWNER,
    **_crud("floatingip"),
    "create_floatingip:floating_ip_address": ADMIN,
    **_crud("port_forwarding"),
    **_crud("security_group"),
    **_crud("security_group_rule"),
    **_crud("address_group"),
    **_crud("subnetpool"),
    "create_subnetpool:shared": ADMIN,
    "create_subnetpool:is_default": ADMIN,
    "update_subnetpool:is_default": ADMIN,
    **_crud("address_scope"),
    "create_address_scope:shared": ADMIN,
    "update_address_scope:shared": ADMIN,
    **_crud("rbac_policy"),
    # Checked only for the wildcard target "*".
    "create_rbac_policy:target_tenant": ADMIN,
    "create_metering_label": ADMIN, "get_metering_label": ADMIN,
    "delete_metering_label": ADMIN, "create_metering_label_rule": ADMIN,
    "get_metering_label_rule": ADMIN, "update_metering_label_rule": ADMIN,
    "delete_metering_label_rule": ADMIN,
    "get_agent": ADMIN, "update_agent": ADMIN, "delete_agent": ADMIN,
    "create_dhcp-network": ADMIN, "delete_dhcp-network": ADMIN, "get_dhcp-networks": ADMIN,
    "create_l3-router": ADMIN, "delete_l3-router": ADMIN, "get_l3-routers": ADMIN,
    "get_dhcp-agents": ADMIN, "get_l3-agents": ADMIN,
    "get_auto_allocated_topology": ADMIN_OR_OWNER,
    "delete_auto_allocated_topology": ADMIN_OR_OWNER,
    "get_quota": ADMIN_OR_OWNER, "update_quota": ADMIN, "delete_quota": ADMIN,
    "get_network_ip_availability": ADMIN,
    "get_availability_zone": "@",
    "get_extension": "@",
    "get_service_provider": "@",
}

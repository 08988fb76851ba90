"""Placement's default RBAC rules, named as upstream names them (operators override them with
placement.policy_file). Placement is an admin and service API: the default is admin or the
service role for every rule."""

ADMIN_OR_SERVICE = "role:admin or role:service"

_RULES = {
    "resource_providers": ("list", "create", "show", "update", "delete"),
    "resource_providers:inventories": ("list", "create", "show", "update", "delete"),
    "resource_providers:aggregates": ("list", "update"),
    "resource_providers:traits": ("list", "update", "delete"),
    "resource_providers:allocations": ("list",),
    "resource_providers:usages": ("list",),
    "resource_classes": ("list", "create", "show", "update", "delete"),
    "traits": ("list", "show", "update", "delete"),
    "allocations": ("list", "manage", "update", "delete"),
    "allocation_candidates": ("list",),
    "usages": ("list",),
    "reshaper": ("reshape",),
}

RULES: dict[str, str] = {
    "admin_api": "role:admin",
    "service_api": "role:service",
    "admin_or_service_api": ADMIN_OR_SERVICE,
    **{f"placement:{kind}:{action}": "rule:admin_or_service_api"
       for kind, actions in _RULES.items() for action in actions},
}

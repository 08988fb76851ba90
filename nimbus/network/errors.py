"""Networking errors: Neutron's body is {"NeutronError": {"type", "message", "detail"}}.

Each helper carries upstream's exception name as the type, so clients that match on it
(Tempest, openstacksdk) see what they expect.
"""

from __future__ import annotations

from typing import Any

from nimbus.web.errors import ApiError, BadRequest, Conflict, NotFound

# What the platform's generic errors become in Neutron's vocabulary.
_GENERIC_TYPES = {
    "ApiError": None, "BadRequest": "HTTPBadRequest", "Unauthorized": "HTTPUnauthorized",
    "Forbidden": "HTTPForbidden", "NotFound": "HTTPNotFound",
    "MethodNotAllowed": "HTTPMethodNotAllowed", "Conflict": "HTTPConflict",
    "PayloadTooLarge": "HTTPRequestEntityTooLarge", "NotAcceptable": "HTTPNotAcceptable",
    "UnsupportedMediaType": "HTTPUnsupportedMediaType",
}
_BY_STATUS = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
              404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "HTTPConflict",
              412: "PreconditionFailed", 413: "HTTPRequestEntityTooLarge",
              500: "HTTPInternalServerError", 501: "HTTPNotImplemented",
              503: "HTTPServiceUnavailable"}


def format_error(err: ApiError) -> dict[str, Any]:
    kind = err.error_type
    if kind in _GENERIC_TYPES:
        kind = _GENERIC_TYPES[kind] or _BY_STATUS.get(err.status, "HTTPError")
    return {"NeutronError": {"type": kind, "message": err.message,
                             "detail": err.extra.get("detail", "")}}


def bad_request(message: str, kind: str = "HTTPBadRequest") -> BadRequest:
    return BadRequest(message, error_type=kind)


def invalid_input(message: str) -> BadRequest:
    return BadRequest(f"Invalid input for operation: {message}.", error_type="InvalidInput")


def conflict(message: str, kind: str) -> Conflict:
    return Conflict(message, error_type=kind)


# Upstream names the type of a missing resource this way: NetworkNotFound, PortNotFound...
_KIND_NAMES = {
    "network": "Network", "subnet": "Subnet", "port": "Port", "router": "Router",
    "floatingip": "FloatingIP", "security_group": "SecurityGroup",
    "security_group_rule": "SecurityGroupRule", "subnetpool": "SubnetPool",
    "address_scope": "AddressScope", "rbac_policy": "RbacPolicy", "agent": "Agent",
    "port_forwarding": "PortForwarding", "address_group": "AddressGroup",
}
_MESSAGES = {
    "network": "Network {id} could not be found.",
    "subnet": "Subnet {id} could not be found.",
    "port": "Port {id} could not be found.",
    "router": "Router {id} could not be found.",
    "floatingip": "Floating IP {id} could not be found",
    "security_group": "Security group {id} does not exist",
    "security_group_rule": "Security group rule {id} does not exist",
    "subnetpool": "Subnet pool {id} could not be found.",
    "address_scope": "Address scope {id} could not be found.",
    "rbac_policy": "RBAC policy with ID {id} could not be found.",
    "agent": "Agent {id} could not be found.",
    "port_forwarding": "Port Forwarding {id} could not be found.",
    "address_group": "Address group {id} could not be found.",
}


def not_found(kind: str, ident: str) -> NotFound:
    message = _MESSAGES.get(kind, kind + " {id} could not be found.").format(id=ident)
    name = _KIND_NAMES.get(kind, kind.title().replace("_", ""))
    if kind == "security_group":
        return NotFound(message, error_type="SecurityGroupNotFound")
    if kind == "security_group_rule":
        return NotFound(message, error_type="SecurityGroupRuleNotFound")
    return NotFound(message, error_type=f"{name}NotFound")


def in_use(kind: str, ident: str, reason: str = "") -> Conflict:
    names = {"network": ("NetworkInUse", "Unable to complete operation on network {id}. "
                         "There are one or more ports still in use on the network."),
             "subnet": ("SubnetInUse", "Unable to complete operation on subnet {id}: "
                        "One or more ports have an IP allocation from this subnet."),
             "security_group": ("SecurityGroupInUse", "Security Group {id} in use."),
             "router": ("RouterInUse", "Router {id} still has ports"),
             "subnetpool": ("SubnetPoolInUse", "Subnet pool {id} cannot be deleted "
                            "because it is in use by one or more subnets."),
             "address_scope": ("AddressScopeInUse", "Unable to complete operation on "
                               "address scope {id}. There are one or more subnet pools in "
                               "use on the address scope."),
             "ip": ("IpAddressInUse", "Unable to complete operation for network {id}. The "
                    "IP address is in use."),
             "mac": ("MacAddressInUse", "Unable to complete operation for network {id}. "
                     "The mac address is in use.")}
    kind_name, message = names[kind]
    message = message.format(id=ident)
    if reason:
        message = f"{message} {reason}" if kind != "router" else message + f" ({reason})"
    return Conflict(message, error_type=kind_name)


def over_quota(resource: str) -> Conflict:
    return Conflict(f"Quota exceeded for resources: ['{resource}'].", error_type="OverQuota")

"""Port attribute checks: fixed IPs, address pairs, DHCP options, binding, DNS name."""

from __future__ import annotations

import re
from typing import Any

from nimbus.network import standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, invalid_input

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed", "accelerator-direct",
              "accelerator-direct-physical")
MAX_ADDRESS_PAIRS = 10
_DNS_LABEL = re.compile(r"^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")


def fixed_ips(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise invalid_input(f"Invalid data format for fixed IP: '{value}'")
    out: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address",
                                                                  "subnet"}:
            raise invalid_input(f"Invalid data format for fixed IP: '{item}'")
        entry: dict[str, str] = {}
        subnet = item.get("subnet_id", item.get("subnet"))
        if subnet is not None:
            entry["subnet_id"] = v.check_uuid(subnet, "subnet_id")
        if item.get("ip_address") is not None:
            entry["ip_address"] = str(v.ip(item["ip_address"]))
        if not entry:
            raise invalid_input(f"Invalid data format for fixed IP: '{item}'")
        if entry in out and "ip_address" in entry:
            raise invalid_input(f"Duplicate IP address '{entry['ip_address']}'")
        out.append(entry)
    return out


def address_pairs(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise bad_request(f"Allowed address pairs must be a list, not '{value}'.",
                          "AllowedAddressPairsMissingIP")
    if len(value) > MAX_ADDRESS_PAIRS:
        raise bad_request(f"The number of allowed address pair exceeds the maximum "
                          f"{MAX_ADDRESS_PAIRS}.", "AllowedAddressPairExhausted")
    out: list[dict[str, str]] = []
    for pair in value:
        if not isinstance(pair, dict) or "ip_address" not in pair or \
                set(pair) - {"ip_address", "mac_address"}:
            raise bad_request("AllowedAddressPair must contain ip_address",
                              "AllowedAddressPairsMissingIP")
        text = pair["ip_address"]
        net = v.prefix(text)
        clean = {"ip_address": str(net.network_address) if net.num_addresses == 1 else
                 str(net)}
        if "/" in str(text) and net.num_addresses == 1:
            clean["ip_address"] = str(text)
        if pair.get("mac_address") is not None:
            clean["mac_address"] = v.mac(pair["mac_address"])
        if any(p["ip_address"] == clean["ip_address"] and
               p.get("mac_address") == clean.get("mac_address") for p in out):
            raise bad_request("Request contains duplicate address pair: "
                              f"mac_address {clean.get('mac_address')} ip_address "
                              f"{clean['ip_address']}.", "DuplicateAddressPairInRequest")
        out.append(clean)
    return out


def dhcp_opts(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid_input(f"'{value}' is not a list of DHCP options")
    out: list[dict[str, Any]] = []
    for opt in value:
        if not isinstance(opt, dict) or "opt_name" not in opt or \
                set(opt) - {"opt_name", "opt_value", "ip_version"}:
            raise bad_request(f"Invalid extra DHCP option: '{opt}'", "ExtraDhcpOptBadData")
        name = opt["opt_name"]
        if not isinstance(name, str) or not name or len(name) > 64:
            raise bad_request(f"Invalid extra DHCP option name '{name}'", "ExtraDhcpOptBadData")
        value_ = opt.get("opt_value")
        if value_ is not None and (not isinstance(value_, str) or len(value_) > 255):
            raise bad_request(f"Invalid extra DHCP option value '{value_}'",
                              "ExtraDhcpOptBadData")
        version = opt.get("ip_version", 4)
        if version not in (4, 6, "4", "6"):
            raise bad_request(f"Invalid IP version {version} for a DHCP option",
                              "ExtraDhcpOptBadData")
        out.append({"opt_name": name, "opt_value": value_, "ip_version": int(version)})
    return out


def vnic_type(value: Any, field: str) -> str:
    if value not in VNIC_TYPES:
        raise invalid_input(f"'{value}' is not in {list(VNIC_TYPES)}")
    return str(value)


def profile(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_input(f"'{value}' is not a dictionary")
    return value


def dns_name(value: Any, field: str) -> str:
    text = v.string(value, field, 255)
    if not text:
        return ""
    labels = text.rstrip(".").split(".")
    if not all(_DNS_LABEL.match(label) for label in labels) or text.rstrip(".").isdigit():
        raise invalid_input(f"'{text}' not a valid PQDN or FQDN. Reason: it is not made of "
                            "valid DNS labels")
    return text


def security_groups(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_input(f"'{value}' is not a list")
    out: list[str] = []
    for sg in value:
        if not isinstance(sg, str) or not sg:
            raise invalid_input(f"'{sg}' is not a valid security group")
        if sg not in out:
            out.append(sg)
    return out


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "network_id": v.Attr(v.check_uuid, put=False, required=True),
    "admin_state_up": v.Attr(v.boolean),
    "mac_address": v.Attr(lambda x, f: v.mac(x)),
    "fixed_ips": v.Attr(fixed_ips),
    "device_id": v.Attr(v.name255), "device_owner": v.Attr(v.name255),
    "security_groups": v.Attr(security_groups),
    "port_security_enabled": v.Attr(v.boolean),
    "allowed_address_pairs": v.Attr(v.nullable(address_pairs)),
    "extra_dhcp_opts": v.Attr(v.nullable(dhcp_opts)),
    "binding:host_id": v.Attr(lambda x, f: v.string(x, f)),
    "binding:vnic_type": v.Attr(vnic_type),
    "binding:profile": v.Attr(profile),
    "dns_name": v.Attr(dns_name),
    "dns_domain": v.Attr(v.name255),
    "propagate_uplink_status": v.Attr(v.boolean),
    "qos_policy_id": v.Attr(v.uuid_or_none),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}

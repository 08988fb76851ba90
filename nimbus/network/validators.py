"""Input checks shared by the resources, with upstream's messages."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from nimbus.network.errors import bad_request, invalid_input

_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def check_uuid(value: Any, field: str) -> str:
    if not is_uuid(value):
        raise invalid_input(f"'{value}' is not a valid UUID")
    return str(value)


def ip(value: Any, field: str = "ip_address") -> IPAddress:
    if not isinstance(value, str) or "/" in value:
        raise invalid_input(f"'{value}' is not a valid IP address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise invalid_input(f"'{value}' is not a valid IP address") from None


def cidr(value: Any, field: str = "cidr", strict: bool = True) -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise invalid_input(f"'{value}' is not a valid IP subnet")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid_input(f"'{value}' is not a valid IP subnet") from None
    if strict and str(net) != _canonical(value):
        raise invalid_input(f"'{value}' isn't a recommended CIDR, '{net}' is recommended")
    return net


def _canonical(value: str) -> str:
    addr, _, plen = value.partition("/")
    try:
        return f"{ipaddress.ip_address(addr)}/{int(plen)}"
    except ValueError:
        return value


def prefix(value: Any) -> IPNetwork:
    """A CIDR, host bits allowed (remote_ip_prefix, allowed address pairs)."""
    if not isinstance(value, str):
        raise invalid_input(f"'{value}' is not a valid IP subnet")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid_input(f"'{value}' is not a valid IP subnet") from None


def mac(value: Any) -> str:
    if not isinstance(value, str) or not _MAC.match(value):
        raise invalid_input(f"'{value}' is not a valid MAC address")
    text = value.lower().replace("-", ":")
    first = int(text[:2], 16)
    if first & 1 or text == "00:00:00:00:00:00":
        raise invalid_input(f"'{value}' is not a valid MAC address")
    return text


def string(value: Any, field: str, max_length: int = 255) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_input(f"'{value}' is not a valid string")
    if len(value) > max_length:
        raise invalid_input(f"'{value}' exceeds maximum length of {max_length}")
    return value


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise invalid_input(f"'{value}' cannot be converted to boolean")


def integer(value: Any, field: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise invalid_input(f"'{value}' is not an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid_input(f"'{value}' is not an integer") from None
    if isinstance(value, float) and value != number:
        raise invalid_input(f"'{value}' is not an integer")
    if low is not None and number < low:
        raise invalid_input(f"'{number}' is too small - must be at least '{low}'")
    if high is not None and number > high:
        raise invalid_input(f"'{number}' is too large - must be no larger than '{high}'")
    return number


def string_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_input(f"'{value}' is not a list")
    return list(value)


def unknown(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise bad_request("Unrecognized attribute(s) '" + ", ".join(extra) + "'")


class Attr:
    """One attribute of a resource body: how to convert it, and where it is accepted."""

    __slots__ = ("convert", "post", "put", "required")

    def __init__(self, convert: Any = None, *, post: bool = True, put: bool = True,
                 required: bool = False) -> None:
        self.convert = convert
        self.post = post
        self.put = put
        self.required = required


def parse(spec: dict[str, Attr], body: Any, kind: str, action: str) -> dict[str, Any]:
    """Check a resource body against its spec and convert each value."""
    if not isinstance(body, dict):
        raise bad_request(f"Invalid input for {kind}: a JSON object is required.")
    unknown(body, set(spec))
    verb = "POST" if action == "create" else "PUT"
    out: dict[str, Any] = {}
    for name, value in body.items():
        attr = spec[name]
        if not (attr.post if action == "create" else attr.put):
            raise bad_request(f"Attribute '{name}' not allowed in {verb}")
        out[name] = attr.convert(value, name) if attr.convert is not None else value
    if action == "create":
        for name, attr in spec.items():
            if attr.required and name not in out:
                raise bad_request(f"Failed to parse request. Required attribute '{name}' "
                                  "not specified")
    return out


def nullable(convert: Any) -> Any:
    def inner(value: Any, field: str) -> Any:
        return None if value is None else convert(value, field)
    return inner


def uuid_or_none(value: Any, field: str) -> str | None:
    return None if value is None else check_uuid(value, field)


def name255(value: Any, field: str) -> str:
    return string(value, field, 255)


def project(value: Any, field: str) -> str:
    return string(value, field, 255)

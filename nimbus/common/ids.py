"""Identifiers as OpenStack formats them."""

import re
import uuid

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A 32-hex id, as Keystone uses for its resources."""
    return uuid.uuid4().hex


def new_uuid() -> str:
    """A dashed UUID, as Nova, Glance, Neutron and Cinder use."""
    return str(uuid.uuid4())


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def is_hex_id(value: str) -> bool:
    return bool(_HEX32.match(value))

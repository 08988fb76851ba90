"""Request validation against JSON schemas, as Nova validates its API (strictly, per
microversion). A small validator for the subset of JSON Schema the compute API uses; the same
schemas are published in the OpenAPI document.

Errors read like Nova's: "Invalid input for field/attribute <path>. Value: <value>. <why>".
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from nimbus.web.errors import BadRequest

Schema = dict[str, Any]

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _printable(ch: str) -> bool:
    """Letters, marks, numbers, punctuation, symbols and horizontal spaces."""
    category = unicodedata.category(ch)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _is_name(value: str, allow_colon: bool = True, edges: bool = False) -> bool:
    if not all(_printable(c) for c in value):
        return False
    if not allow_colon and ":" in value:
        return False
    if edges:  # leading/trailing whitespace allowed, but not only whitespace
        return any(unicodedata.category(c) != "Zs" for c in value)
    return not (unicodedata.category(value[:1] or "a") == "Zs"
                or unicodedata.category(value[-1:] or "a") == "Zs")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value.replace("-", "")) == 32


def _is_ip(value: str, version: int | None = None) -> bool:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or addr.version == version


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_regex(value: str) -> bool:
    try:
        re.compile(value)
    except re.error:
        return False
    return True


FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "uuid": (_is_uuid, "is not a 'uuid'"),
    "name": (_is_name, "printable characters. Can not start or end with whitespace."),
    "name_with_leading_trailing_spaces": (
        lambda v: _is_name(v, edges=True),
        "printable characters with at least one non space character"),
    "az_name": (lambda v: _is_name(v, allow_colon=False),
                "printable characters except :.Can not start or end with whitespace."),
    "az_name_with_leading_trailing_spaces": (
        lambda v: _is_name(v, allow_colon=False, edges=True),
        "printable characters except :, with at least one non space character"),
    "description": (lambda v: all(_printable(c) for c in v), "printable characters only"),
    "ipv4": (lambda v: _is_ip(v, 4), "is not a 'ipv4'"),
    "ipv6": (lambda v: _is_ip(v, 6), "is not a 'ipv6'"),
    "ip": (_is_ip, "is not a valid IP address"),
    "cidr": (_is_cidr, "is not a 'cidr'"),
    "base64": (_is_base64, "is not a 'base64'"),
    "regex": (_is_regex, "is not a 'regex'"),
}


@lru_cache(maxsize=512)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


class Invalid(Exception):
    def __init__(self, path: list[str], value: Any, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.value = value
        self.reason = reason

    def message(self) -> str:
        where = "/".join(self.path)
        if not where:
            return f"Invalid input for field/attribute. Value: {self.value!r}. {self.reason}"
        return (f"Invalid input for field/attribute {where}. Value: {_show(self.value)}. "
                f"{self.reason}")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "…"


def check(schema: Schema, value: Any, path: list[str] | None = None) -> None:
    """Raise Invalid for the first way `value` breaks `schema`."""
    path = path or []
    for sub in schema.get("allOf", ()):
        check(sub, value, path)
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema.get("anyOf") or []
        passed = 0
        first: Invalid | None = None
        for sub in options:
            try:
                check(sub, value, path)
                passed += 1
            except Invalid as exc:
                first = first or exc
        if passed == 0:
            assert first is not None
            raise Invalid(path, value, first.reason)
        if "oneOf" in schema and passed > 1:
            raise Invalid(path, value, f"{_show(value)} is valid under each of the options")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_TYPES[k](value) for k in kinds):
            shown = ", ".join(repr(k) for k in kinds)
            raise Invalid(path, value, f"{_show(value)!r} is not of type {shown}")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(path, value, f"{_show(value)!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        raise Invalid(path, value, f"{schema['const']!r} was expected")
    if isinstance(value, str):
        _check_string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path)
    elif isinstance(value, dict):
        _check_object(schema, value, path)
    elif isinstance(value, list):
        _check_array(schema, value, path)


def _check_string(schema: Schema, value: str, path: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        if schema["minLength"] == 1:
            raise Invalid(path, value, f"{value!r} should be non-empty")
        raise Invalid(path, value, f"{value!r} is too short")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise Invalid(path, value, f"{_show(value)!r} is too long")
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise Invalid(path, value,
                      f"{_show(value)!r} does not match {schema['pattern']!r}")
    fmt = schema.get("format")
    if fmt in FORMATS:
        test, reason = FORMATS[fmt]
        if not test(value):
            raise Invalid(path, value, reason)
    # Numbers given as strings ("512") are checked as numbers too, as Nova does.
    if ("minimum" in schema or "maximum" in schema or "exclusiveMinimum" in schema) and \
            value.strip():
        try:
            number = float(value) if "." in value else int(value)
        except ValueError:
            return
        _check_number(schema, number, path)


def _check_number(schema: Schema, value: float, path: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise Invalid(path, value, f"{value!r} is less than the minimum of "
                                   f"{schema['minimum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise Invalid(path, value, f"{value!r} is less than or equal to the minimum of "
                                   f"{schema['exclusiveMinimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise Invalid(path, value, f"{value!r} is greater than the maximum of "
                                   f"{schema['maximum']}")


def _check_object(schema: Schema, value: dict[str, Any], path: list[str]) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            raise Invalid(path, value, f"'{name}' is a required property")
    props: dict[str, Schema] = schema.get("properties", {})
    patterns: dict[str, Schema] = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        raise Invalid(path, value, f"{_show(value)} does not have enough properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise Invalid(path, value, f"{_show(value)} has too many properties")
    unexpected = []
    for key, item in value.items():
        matched = False
        if key in props:
            check(props[key], item, [*path, key])
            matched = True
        for pat, sub in patterns.items():
            if _pattern(pat).search(key):
                check(sub, item, [*path, key])
                matched = True
        if not matched:
            if extra is False:
                unexpected.append(key)
            elif isinstance(extra, dict):
                check(extra, item, [*path, key])
    if unexpected:
        names = ", ".join(repr(k) for k in sorted(unexpected))
        verb = "were" if len(unexpected) > 1 else "was"
        if patterns and not props:
            raise Invalid(path, value, f"Additional properties are not allowed ({names} "
                                       f"{verb} unexpected)")
        raise Invalid(path, value, f"Additional properties are not allowed ({names} {verb} "
                                   "unexpected)")


def _check_array(schema: Schema, value: list[Any], path: list[str]) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise Invalid(path, value, f"{_show(value)} is too short")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise Invalid(path, value, f"{_show(value)} is too long")
    if schema.get("uniqueItems"):
        seen: list[Any] = []
        for item in value:
            if item in seen:
                raise Invalid(path, value, f"{_show(value)} has non-unique elements")
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            check(items, item, [*path, str(i)])


def validate(schema: Schema, value: Any) -> Any:
    """The value, or BadRequest with Nova's message."""
    try:
        check(schema, value)
    except Invalid as exc:
        raise BadRequest(exc.message()) from None
    return value


def validate_query(schema: Schema, params: dict[str, str]) -> dict[str, str]:
    """Query strings: every value is a string; check what the schema names, and refuse
    others when the schema forbids additional properties."""
    props: dict[str, Schema] = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        unknown = sorted(k for k in params if k not in props)
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            verb = "were" if len(unknown) > 1 else "was"
            raise BadRequest(f"Invalid input for query parameters {unknown[0]}. Value: "
                             f"{params[unknown[0]]}. Additional properties are not allowed "
                             f"({names} {verb} unexpected)")
    for key, sub in props.items():
        if key in params:
            try:
                check({k: v for k, v in sub.items() if k != "type"} | {"type": "string"}
                      if sub.get("type") not in (None, "string") else sub, params[key], [key])
            except Invalid as exc:
                raise BadRequest(f"Invalid input for query parameters {key}. Value: "
                                 f"{params[key]}. {exc.reason}") from None
    return params


# -- building blocks (after Nova's parameter types) --------------------------------------------
BOOLEAN: Schema = {"type": ["boolean", "string"], "enum": [
    True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]}
NAME: Schema = {"type": "string", "format": "name", "minLength": 1, "maxLength": 255}
NAME_EDGES: Schema = {"type": "string", "format": "name_with_leading_trailing_spaces",
                      "minLength": 1, "maxLength": 255}
AZ_NAME: Schema = {"type": "string", "format": "az_name", "minLength": 1, "maxLength": 255}
DESCRIPTION: Schema = {"type": ["string", "null"], "minLength": 0, "maxLength": 255,
                       "format": "description"}
POSITIVE_INT: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 1,
                        "minLength": 1}
NON_NEGATIVE_INT: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]*$",
                            "minimum": 0, "minLength": 1}
SIZE: Schema = {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1,
                "maximum": 0x7FFFFFFF}
SIZE_OR_ZERO: Schema = {**SIZE, "minimum": 0}
UUID: Schema = {"type": "string", "format": "uuid"}
PROJECT_ID: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9-]*$", "minLength": 1,
                      "maxLength": 255}
HOSTNAME: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$",
                    "minLength": 2, "maxLength": 63}
FQDN: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9-._]*$", "minLength": 1,
                "maxLength": 255}
METADATA: Schema = {"type": "object", "patternProperties": {
    "^[a-zA-Z0-9-_:. ]{1,255}$": {"type": "string", "maxLength": 255}},
    "additionalProperties": False}
TAG: Schema = {"type": "string", "pattern": "^[^,/]*$", "minLength": 1, "maxLength": 60}
NON_NEGATIVE_QUERY: Schema = {"type": "string", "pattern": "^[0-9]+$"}


def truthy(value: Any) -> bool:
    """Nova's reading of its boolean parameters."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "on", "yes", "y", "t")

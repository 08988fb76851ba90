"""Request bodies as placement's API reference defines them, as JSON Schema, with a small
validator for the keywords they use.

The same dictionaries document the request bodies in the OpenAPI document, so the fuzzer sends
what the API expects. Messages read as upstream's ("JSON does not validate: ...").
"""

from __future__ import annotations

import copy
import re
import uuid
from functools import lru_cache
from typing import Any

from nimbus.web.errors import BadRequest

Schema = dict[str, Any]

MAX_INT = 2147483647
MAX_FLOAT = 3.40282e38
RC_PATTERN = "^[A-Z0-9_]+$"
CUSTOM_PATTERN = "^CUSTOM_[A-Z0-9_]+$"
UUID_PATTERN = "^[0-9a-fA-F-]{36}$"
GROUP_SUFFIX = "[a-zA-Z0-9_-]{1,64}"

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "number": (int, float), "boolean": (bool,), "null": (type(None),),
}


class Invalid(Exception):
    pass


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _is_type(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[kind])


def _check(value: Any, schema: Schema) -> None:
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            try:
                _check(value, option)
                return
            except Invalid:
                continue
        raise Invalid(f"{value!r} is not valid under any of the given schemas")
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is_type(value, k) for k in names):
            shown = repr(names[0]) if len(names) == 1 else repr(names)
            raise Invalid(f"{value!r} is not of type {shown}")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{value!r} is not one of {schema['enum']!r}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise Invalid(f"{value!r} is too short")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise Invalid(f"{value!r} is too long")
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            raise Invalid(f"{value!r} does not match {schema['pattern']!r}")
        if schema.get("format") == "uuid" and not is_uuid(value):
            raise Invalid(f"{value!r} is not a 'uuid'")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise Invalid(f"{value!r} is less than the minimum of {schema['minimum']!r}")
        if "maximum" in schema and value > schema["maximum"]:
            raise Invalid(f"{value!r} is greater than the maximum of {schema['maximum']!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise Invalid(f"{value!r} is too short")
        if schema.get("uniqueItems"):
            seen: list[Any] = []
            for item in value:
                if item in seen:
                    raise Invalid(f"{value!r} has non-unique elements")
                seen.append(item)
        if "items" in schema:
            for item in value:
                _check(item, schema["items"])
    if isinstance(value, dict):
        _check_object(value, schema)


def _check_object(value: dict[str, Any], schema: Schema) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            raise Invalid(f"{name!r} is a required property")
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        raise Invalid(f"{value!r} does not have enough properties")
    props: Schema = schema.get("properties", {})
    patterns: Schema = schema.get("patternProperties", {})
    extra = []
    for key, item in value.items():
        matched = False
        if key in props:
            _check(item, props[key])
            matched = True
        for pattern, sub in patterns.items():
            if _regex(pattern).search(key):
                _check(item, sub)
                matched = True
        if not matched:
            extra.append(key)
    if extra and schema.get("additionalProperties") is False:
        names = ", ".join(repr(k) for k in extra)
        verb = "were" if len(extra) > 1 else "was"
        raise Invalid(f"Additional properties are not allowed ({names} {verb} unexpected)")


def validate(data: Any, schema: Schema) -> Any:
    try:
        _check(data, schema)
    except Invalid as exc:
        raise BadRequest(f"JSON does not validate: {exc}") from None
    return data


def derive(base: Schema, **changes: Any) -> Schema:
    """A deep copy of a schema with some top-level keys replaced."""
    out = copy.deepcopy(base)
    out.update(changes)
    return out


# -- resource providers ------------------------------------------------------------------------
_NULLABLE_UUID = {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}
PROVIDER_POST: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 200},
                   "uuid": {"type": "string", "format": "uuid"}},
    "required": ["name"], "additionalProperties": False,
}
PROVIDER_POST_1_14 = derive(PROVIDER_POST, properties={
    **PROVIDER_POST["properties"], "parent_provider_uuid": _NULLABLE_UUID})
PROVIDER_PUT = derive(PROVIDER_POST, properties={"name": {"type": "string", "maxLength": 200}})
PROVIDER_PUT_1_14 = derive(PROVIDER_PUT, properties={
    "name": {"type": "string", "maxLength": 200}, "parent_provider_uuid": _NULLABLE_UUID})

# -- inventories -------------------------------------------------------------------------------
_INT = {"type": "integer", "maximum": MAX_INT}
INVENTORY_FIELDS: Schema = {
    "resource_provider_generation": {"type": "integer"},
    "total": {**_INT, "minimum": 1},
    "reserved": {**_INT, "minimum": 0},
    "min_unit": {**_INT, "minimum": 1},
    "max_unit": {**_INT, "minimum": 1},
    "step_size": {**_INT, "minimum": 1},
    "allocation_ratio": {"type": "number", "maximum": MAX_FLOAT},
}
INVENTORY_PUT: Schema = {
    "type": "object", "properties": INVENTORY_FIELDS,
    "required": ["total", "resource_provider_generation"], "additionalProperties": False,
}
INVENTORY_POST: Schema = {
    "type": "object",
    "properties": {**INVENTORY_FIELDS, "resource_class": {"type": "string",
                                                          "pattern": RC_PATTERN}},
    "required": ["total", "resource_class"], "additionalProperties": False,
}
_INVENTORY_RECORD = derive(INVENTORY_PUT, required=["total"])
INVENTORIES_PUT: Schema = {
    "type": "object",
    "properties": {
        "resource_provider_generation": {"type": "integer"},
        "inventories": {"type": "object", "patternProperties": {RC_PATTERN: _INVENTORY_RECORD},
                        "additionalProperties": False},
    },
    "required": ["resource_provider_generation", "inventories"],
    "additionalProperties": False,
}

# -- resource classes and traits ---------------------------------------------------------------
RESOURCE_CLASS: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "pattern": CUSTOM_PATTERN, "maxLength": 255}},
    "required": ["name"], "additionalProperties": False,
}
_TRAIT = {"type": "string", "minLength": 1, "maxLength": 255}
PROVIDER_TRAITS: Schema = {
    "type": "object",
    "properties": {"traits": {"type": "array", "items": _TRAIT},
                   "resource_provider_generation": {"type": "integer"}},
    "required": ["traits", "resource_provider_generation"], "additionalProperties": False,
}

# -- aggregates --------------------------------------------------------------------------------
_AGG_LIST = {"type": "array", "items": {"type": "string", "format": "uuid"},
             "uniqueItems": True}
AGGREGATES_1_1: Schema = dict(_AGG_LIST)
AGGREGATES_1_19: Schema = {
    "type": "object",
    "properties": {"aggregates": _AGG_LIST,
                   "resource_provider_generation": {"type": "integer"}},
    "required": ["aggregates", "resource_provider_generation"],
    "additionalProperties": False,
}

# -- allocations -------------------------------------------------------------------------------
_AMOUNTS = {"type": "object", "minProperties": 1,
            "patternProperties": {RC_PATTERN: {"type": "integer", "minimum": 1}},
            "additionalProperties": False}
ALLOCATION_1_0: Schema = {
    "type": "object",
    "properties": {"allocations": {"type": "array", "minItems": 1, "items": {
        "type": "object",
        "properties": {
            "resource_provider": {"type": "object",
                                  "properties": {"uuid": {"type": "string", "format": "uuid"}},
                                  "required": ["uuid"], "additionalProperties": False},
            "resources": _AMOUNTS,
        },
        "required": ["resource_provider", "resources"], "additionalProperties": False}}},
    "required": ["allocations"], "additionalProperties": False,
}
_OWNER = {"type": "string", "minLength": 1, "maxLength": 255}
ALLOCATION_1_8 = derive(ALLOCATION_1_0, properties={
    **ALLOCATION_1_0["properties"], "project_id": _OWNER, "user_id": _OWNER},
    required=["allocations", "project_id", "user_id"])
ALLOCATION_1_12: Schema = {
    "type": "object",
    "properties": {
        "allocations": {"type": "object", "minProperties": 1, "patternProperties": {
            UUID_PATTERN: {"type": "object",
                           "properties": {"generation": {"type": "integer"},
                                          "resources": _AMOUNTS},
                           "required": ["resources"], "additionalProperties": False}},
            "additionalProperties": False},
        "project_id": _OWNER, "user_id": _OWNER,
    },
    "required": ["allocations", "project_id", "user_id"], "additionalProperties": False,
}
_DELETABLE = copy.deepcopy(ALLOCATION_1_12)
_DELETABLE["properties"]["allocations"]["minProperties"] = 0
_GENERATION = {"type": ["integer", "null"]}
ALLOCATION_1_28 = derive(_DELETABLE, properties={
    **_DELETABLE["properties"], "consumer_generation": _GENERATION},
    required=[*_DELETABLE["required"], "consumer_generation"])
_MAPPINGS = {"type": "object", "minProperties": 1, "patternProperties": {
    f"^{GROUP_SUFFIX}$|^$": {"type": "array", "minItems": 1,
                             "items": {"type": "string", "format": "uuid"}}}}
ALLOCATION_1_34 = derive(ALLOCATION_1_28, properties={
    **ALLOCATION_1_28["properties"], "mappings": _MAPPINGS})
ALLOCATION_1_38 = derive(ALLOCATION_1_34, properties={
    **ALLOCATION_1_34["properties"],
    "consumer_type": {"type": "string", "pattern": RC_PATTERN, "minLength": 1,
                      "maxLength": 255}},
    required=[*ALLOCATION_1_34["required"], "consumer_type"])


def _many(one: Schema) -> Schema:
    return {"type": "object", "minProperties": 1, "additionalProperties": False,
            "patternProperties": {UUID_PATTERN: one}}


ALLOCATIONS_POST_1_13 = _many(_DELETABLE)
ALLOCATIONS_POST_1_28 = _many(ALLOCATION_1_28)
ALLOCATIONS_POST_1_34 = _many(ALLOCATION_1_34)
ALLOCATIONS_POST_1_38 = _many(ALLOCATION_1_38)


def put_allocation_schema(minor: int) -> Schema:
    if minor >= 38:
        return ALLOCATION_1_38
    if minor >= 34:
        return ALLOCATION_1_34
    if minor >= 28:
        return ALLOCATION_1_28
    if minor >= 12:
        return ALLOCATION_1_12
    if minor >= 8:
        return ALLOCATION_1_8
    return ALLOCATION_1_0


def post_allocations_schema(minor: int) -> Schema:
    if minor >= 38:
        return ALLOCATIONS_POST_1_38
    if minor >= 34:
        return ALLOCATIONS_POST_1_34
    if minor >= 28:
        return ALLOCATIONS_POST_1_28
    return ALLOCATIONS_POST_1_13


# -- reshaper ----------------------------------------------------------------------------------
def reshaper_schema(minor: int) -> Schema:
    allocations = derive(post_allocations_schema(max(minor, 28)), minProperties=0)
    return {
        "type": "object",
        "properties": {
            "inventories": {"type": "object", "minProperties": 1,
                            "patternProperties": {UUID_PATTERN: INVENTORIES_PUT},
                            "additionalProperties": False},
            "allocations": allocations,
        },
        "required": ["inventories", "allocations"], "additionalProperties": False,
    }


def is_custom_name(name: str) -> bool:
    return len(name) <= 255 and bool(_regex(CUSTOM_PATTERN).search(name))


def validate_rc_name(name: str) -> bool:
    return bool(_regex(RC_PATTERN).search(name))

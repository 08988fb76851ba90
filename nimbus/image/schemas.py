"""The JSON schemas Glance publishes under /v2/schemas (clients such as glanceclient read them)."""

from __future__ import annotations

from typing import Any

from nimbus.image import images

NULL_STR = ["null", "string"]


def image() -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string", "description": "An identifier for the image",
               "pattern": images.UUID_RE.pattern.strip("^$")},
        "name": {"type": NULL_STR, "maxLength": 255,
                 "description": "Descriptive name for the image"},
        "status": {"type": "string", "readOnly": True, "enum": images.STATUSES,
                   "description": "Status of the image"},
        "visibility": {"type": "string", "enum": images.VISIBILITIES,
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description": "If true, image will not appear in "
                                                        "default image list response."},
        "checksum": {"type": NULL_STR, "readOnly": True, "maxLength": 32,
                     "description": "md5 hash of image contents."},
        "os_hash_algo": {"type": NULL_STR, "readOnly": True, "maxLength": 64,
                         "description": "Algorithm to calculate the os_hash_value"},
        "os_hash_value": {"type": NULL_STR, "readOnly": True, "maxLength": 128,
                          "description": "Hexdigest of the image contents using the algorithm "
                                         "specified by the os_hash_algo"},
        "owner": {"type": NULL_STR, "maxLength": 255, "description": "Owner of the image"},
        "size": {"type": ["null", "integer"], "readOnly": True,
                 "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                         "description": "Virtual size of image in bytes"},
        "container_format": {"type": NULL_STR, "enum": [None, *images.CONTAINER_FORMATS],
                             "description": "Format of the container"},
        "disk_format": {"type": NULL_STR, "enum": [None, *images.DISK_FORMATS],
                        "description": "Format of the disk"},
        "created_at": {"type": "string", "readOnly": True,
                       "description": "Date and time of image registration"},
        "updated_at": {"type": "string", "readOnly": True,
                       "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                 "description": "List of strings related to the image"},
        "direct_url": {"type": "string", "readOnly": True,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to "
                                                      "boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required "
                                                       "to boot image."},
        "self": {"type": "string", "readOnly": True, "description": "An image self url"},
        "file": {"type": "string", "readOnly": True, "description": "An image file url"},
        "stores": {"type": "string", "readOnly": True,
                   "description": "Store in which image data resides. May be a "
                                  "comma-separated list of store identifiers."},
        "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
        "locations": {"type": "array", "items": {"type": "object", "properties": {
            "url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}},
            "required": ["url", "metadata"]},
            "description": "A set of URLs to access the image file kept in external store"},
    }
    return {"name": "image", "properties": props, "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def collection(name: str, item: dict[str, Any], *, paged: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {name: {"type": "array", "items": item},
                             "schema": {"type": "string"}}
    links = [{"rel": "describedby", "href": "{schema}"}]
    if paged:
        props.update(first={"type": "string"}, next={"type": "string"})
        links = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                 *links]
    return {"name": name, "properties": props, "links": links}


def member() -> dict[str, Any]:
    return {"name": "member", "properties": {
        "created_at": {"type": "string", "description": "Date and time of image member "
                                                        "creation"},
        "image_id": {"type": "string", "description": "An identifier for the image",
                     "pattern": images.UUID_RE.pattern.strip("^$")},
        "member_id": {"type": "string", "description": "An identifier for the image member "
                                                       "(tenantId)"},
        "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
                   "description": "The status of this image member"},
        "updated_at": {"type": "string", "description": "Date and time of last modification "
                                                        "of image member"},
        "schema": {"type": "string", "readOnly": True}}}


def task() -> dict[str, Any]:
    names = ("id", "type", "status", "owner", "message", "created_at", "updated_at",
             "expires_at", "self", "schema", "image_id", "user_id", "request_id")
    props: dict[str, Any] = {k: {"type": "string"} for k in names}
    props["input"] = {"type": ["null", "object"]}
    props["result"] = {"type": ["null", "object"]}
    props["status"] = {"type": "string", "enum": ["pending", "processing", "success",
                                                  "failure"]}
    return {"name": "task", "properties": props}


def _metadef_property() -> dict[str, Any]:
    return {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 80}, "title": {"type": "string"},
        "description": {"type": "string"},
        "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object",
                                            "string", None]},
        "enum": {"type": "array"}, "default": {}, "readonly": {"type": "boolean"},
        "minimum": {"type": "number"}, "maximum": {"type": "number"},
        "maxLength": {"type": "integer"}, "minLength": {"type": "integer"},
        "pattern": {"type": "string"}, "items": {"type": "object"},
        "operators": {"type": "array", "items": {"type": "string"}}},
        "required": ["title", "type"]}


def metadef(kind: str) -> dict[str, Any]:
    stamp = {"created_at": {"type": "string", "readOnly": True},
             "updated_at": {"type": "string", "readOnly": True}}
    if kind == "namespace":
        props = {"namespace": {"type": "string", "maxLength": 80},
                 "display_name": {"type": "string", "maxLength": 80},
                 "description": {"type": "string", "maxLength": 500},
                 "visibility": {"type": "string", "enum": ["public", "private"]},
                 "protected": {"type": "boolean"}, "owner": {"type": "string"},
                 "self": {"type": "string"}, "schema": {"type": "string"},
                 "resource_type_associations": {"type": "array"},
                 "properties": {"type": "object"}, "objects": {"type": "array"},
                 "tags": {"type": "array"}, **stamp}
        return {"name": "namespace", "properties": props, "required": ["namespace"],
                "additionalProperties": False}
    if kind == "resource_type":
        return {"name": "resource_type_association", "properties": {
            "name": {"type": "string", "maxLength": 80},
            "prefix": {"type": "string", "maxLength": 80},
            "properties_target": {"type": "string", "maxLength": 80}, **stamp},
            "required": ["name"], "additionalProperties": False}
    if kind == "object":
        return {"name": "object", "properties": {
            "name": {"type": "string", "maxLength": 80}, "description": {"type": "string"},
            "required": {"type": "array", "items": {"type": "string"}},
            "properties": {"type": "object", "additionalProperties": _metadef_property()},
            "schema": {"type": "string"}, "self": {"type": "string"}, **stamp},
            "required": ["name"], "additionalProperties": False}
    if kind == "property":
        body = _metadef_property()
        body["properties"]["name"] = {"type": "string", "maxLength": 80}
        return {"name": "property", **body, "required": ["name", "title", "type"]}
    return {"name": "tag", "properties": {"name": {"type": "string", "maxLength": 255},
                                          **stamp},
            "required": ["name"], "additionalProperties": False}


def metadef_collection(kind: str) -> dict[str, Any]:
    if kind == "namespaces":
        return collection("namespaces", metadef("namespace"))
    if kind == "resource_types":
        return collection("resource_type_associations", metadef("resource_type"), paged=False)
    if kind == "objects":
        return collection("objects", metadef("object"), paged=False)
    if kind == "properties":
        return {"name": "properties", "properties": {"properties": {
            "type": "object", "additionalProperties": metadef("property")}}}
    return collection("tags", metadef("tag"), paged=False)


def get(path: str) -> dict[str, Any] | None:
    simple = {"image": image, "member": member, "task": task}
    if path in simple:
        return simple[path]()
    if path == "images":
        return collection("images", image())
    if path == "members":
        return collection("members", member(), paged=False)
    if path == "tasks":
        return collection("tasks", task())
    if path.startswith("metadefs/"):
        kind = path.split("/", 1)[1]
        if kind in ("namespace", "resource_type", "object", "property", "tag"):
            return metadef(kind)
        if kind in ("namespaces", "resource_types", "objects", "properties", "tags"):
            return metadef_collection(kind)
    return None

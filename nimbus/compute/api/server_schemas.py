"""Request schemas of /servers, per microversion (after Nova's)."""

from __future__ import annotations

import copy
from typing import Any

from nimbus.compute.api import validation as v

Schema = dict[str, Any]

IMAGE_ID_OR_EMPTY: Schema = {"oneOf": [{"type": "string", "format": "uuid"},
                                       {"type": "string", "maxLength": 0}]}
FLAVOR_REF: Schema = {"type": ["string", "integer"], "minLength": 1}
IP: Schema = {"type": "string", "format": "ip"}
PERSONALITY: Schema = {"type": "array", "items": {"type": "object", "properties": {
    "path": {"type": "string"}, "contents": {"type": "string", "format": "base64"}},
    "additionalProperties": False}}
USER_DATA: Schema = {"type": "string", "format": "base64", "maxLength": 65535}
_LEGACY_BDM: Schema = {"type": "object", "properties": {
    "virtual_name": {"type": "string", "maxLength": 255},
    "volume_id": v.UUID, "snapshot_id": v.UUID, "volume_size": v.SIZE,
    "device_name": {"type": "string", "minLength": 1, "maxLength": 255,
                    "pattern": "^[a-zA-Z0-9._/-]*$"},
    "delete_on_termination": v.BOOLEAN, "no_device": {},
    "connection_info": {"type": "string", "maxLength": 16777215}},
    "additionalProperties": False}
_BDM_V2 = copy.deepcopy(_LEGACY_BDM)
_BDM_V2["properties"].update({
    "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "uuid": {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[a-zA-Z0-9._-]*$"},
    "image_id": v.UUID,
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "guest_format": {"type": "string", "maxLength": 255},
    "device_type": {"type": "string", "maxLength": 255},
    "disk_bus": {"type": "string", "maxLength": 255},
    "boot_index": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"},
})
HINTS: Schema = {"type": "object", "properties": {
    "group": {"oneOf": [{"type": "array", "items": {"type": "string", "format": "uuid"}},
                        {"type": "string", "format": "uuid"}]},
    "different_host": {"oneOf": [{"type": "string", "format": "uuid"},
                                 {"type": "array", "items": v.UUID}]},
    "same_host": {"type": ["string", "array"], "items": v.UUID},
    "query": {"type": ["string", "object"]},
    "target_cell": v.NAME,
    "different_cell": {"type": ["string", "array"], "items": {"type": "string"}},
    "build_near_host_ip": IP,
    "cidr": {"type": "string", "pattern": "^/[0-9a-f.:]+$"}},
    "additionalProperties": True}

CREATE: Schema = {"type": "object", "properties": {
    "server": {"type": "object", "properties": {
        "name": v.NAME, "imageRef": IMAGE_ID_OR_EMPTY, "flavorRef": FLAVOR_REF,
        "adminPass": {"type": "string"}, "metadata": v.METADATA,
        "networks": {"type": "array", "items": {"type": "object", "properties": {
            "fixed_ip": IP, "port": {"type": ["string", "null"], "format": "uuid"},
            "uuid": {"type": "string"}}, "additionalProperties": False}},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "personality": PERSONALITY, "availability_zone": v.NAME,
        "block_device_mapping": {"type": "array", "items": _LEGACY_BDM},
        "block_device_mapping_v2": {"type": "array", "items": _BDM_V2},
        "config_drive": v.BOOLEAN, "key_name": v.NAME,
        "min_count": v.POSITIVE_INT, "max_count": v.POSITIVE_INT,
        "return_reservation_id": v.BOOLEAN,
        "security_groups": {"type": "array", "items": {"type": "object", "properties": {
            "name": v.NAME}, "additionalProperties": False}},
        "user_data": USER_DATA},
        "required": ["name", "flavorRef"], "additionalProperties": False},
    "os:scheduler_hints": HINTS, "OS-SCH-HNT:scheduler_hints": HINTS},
    "required": ["server"], "additionalProperties": False}


def _server(schema: Schema) -> Schema:
    props: Schema = schema["properties"]["server"]["properties"]
    return props


CREATE_219 = copy.deepcopy(CREATE)
_server(CREATE_219)["description"] = v.DESCRIPTION
CREATE_232 = copy.deepcopy(CREATE_219)
_server(CREATE_232)["networks"]["items"]["properties"]["tag"] = v.TAG
_server(CREATE_232)["block_device_mapping_v2"]["items"]["properties"]["tag"] = v.TAG
CREATE_233 = copy.deepcopy(CREATE_219)
_server(CREATE_233)["networks"]["items"]["properties"]["tag"] = v.TAG
_NETWORK_ITEM: Schema = {"type": "object", "properties": {
    "fixed_ip": IP, "port": {"type": ["string", "null"], "format": "uuid"},
    "uuid": {"type": "string", "format": "uuid"}}, "additionalProperties": False}
CREATE_237 = copy.deepcopy(CREATE_233)
CREATE_237["properties"]["server"]["required"].append("networks")
_server(CREATE_237)["networks"] = {"oneOf": [
    {"type": "array", "items": _NETWORK_ITEM},
    {"type": "string", "enum": ["none", "auto"]}]}
CREATE_242 = copy.deepcopy(CREATE_237)
_server(CREATE_242)["networks"]["oneOf"][0]["items"]["properties"]["tag"] = v.TAG
_server(CREATE_242)["block_device_mapping_v2"]["items"]["properties"]["tag"] = v.TAG
CREATE_252 = copy.deepcopy(CREATE_242)
_server(CREATE_252)["tags"] = {"type": "array", "items": v.TAG, "maxItems": 50}
CREATE_257 = copy.deepcopy(CREATE_252)
_server(CREATE_257).pop("personality")
CREATE_263 = copy.deepcopy(CREATE_257)
TRUSTED_CERTS: Schema = {"type": ["array", "null"], "minItems": 1, "maxItems": 50,
                         "uniqueItems": True, "items": {"type": "string", "minLength": 1}}
_server(CREATE_263)["trusted_image_certificates"] = TRUSTED_CERTS
CREATE_267 = copy.deepcopy(CREATE_263)
_server(CREATE_267)["block_device_mapping_v2"]["items"]["properties"]["volume_type"] = {
    "type": ["string", "null"], "minLength": 0, "maxLength": 255}
CREATE_274 = copy.deepcopy(CREATE_267)
_server(CREATE_274)["host"] = v.FQDN
_server(CREATE_274)["hypervisor_hostname"] = v.FQDN
CREATE_290 = copy.deepcopy(CREATE_274)
_server(CREATE_290)["hostname"] = v.HOSTNAME
CREATE_294 = copy.deepcopy(CREATE_290)
_server(CREATE_294)["hostname"] = v.FQDN
CREATE_2102 = copy.deepcopy(CREATE_294)


def create_schema(at: Any) -> Schema:
    for minor, schema in ((94, CREATE_294), (90, CREATE_290), (74, CREATE_274),
                          (67, CREATE_267), (63, CREATE_263), (57, CREATE_257),
                          (52, CREATE_252), (42, CREATE_242), (37, CREATE_237),
                          (33, CREATE_233), (32, CREATE_232), (19, CREATE_219)):
        if at(minor):
            return schema
    return CREATE


UPDATE: Schema = {"type": "object", "properties": {"server": {
    "type": "object", "properties": {
        "name": v.NAME, "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"}},
    "additionalProperties": False}}, "required": ["server"], "additionalProperties": False}
UPDATE_219 = copy.deepcopy(UPDATE)
_server(UPDATE_219)["description"] = v.DESCRIPTION
UPDATE_290 = copy.deepcopy(UPDATE_219)
_server(UPDATE_290)["hostname"] = v.HOSTNAME
UPDATE_294 = copy.deepcopy(UPDATE_290)
_server(UPDATE_294)["hostname"] = v.FQDN
UPDATE_2104 = copy.deepcopy(UPDATE_294)
_server(UPDATE_2104)["pinned_availability_zone"] = {"oneOf": [
    {"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}]}


def update_schema(at: Any) -> Schema:
    for minor, schema in ((104, UPDATE_2104), (94, UPDATE_294), (90, UPDATE_290),
                          (19, UPDATE_219)):
        if at(minor):
            return schema
    return UPDATE


SORT_KEYS = sorted(k for k in (
    "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
    "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
    "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by",
    "node", "power_state", "progress", "project_id", "ramdisk_id", "root_device_name",
    "task_state", "terminated_at", "updated_at", "user_id", "uuid", "vm_state"))
IGNORED_SORT_KEYS = ["architecture", "cell_name", "cleaned", "default_ephemeral_device",
                     "default_swap_device", "deleted", "deleted_at", "disable_terminate",
                     "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
                     "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
                     "shutdown_terminate", "user_data", "vcpus", "vm_mode"]
LIST_FILTERS = (
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id",
    "ramdisk_id", "hostname", "key_name", "power_state", "vm_state", "task_state", "host",
    "node", "flavor", "reservation_id", "launched_at", "terminated_at", "availability_zone",
    "name", "display_name", "description", "display_description", "locked_by", "uuid",
    "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6", "auto_disk_config",
    "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status",
    "changes-since", "ip", "ip6", "created_at", "limit", "marker", "block_device_mapping",
    "services", "metadata", "system_metadata", "info_cache", "security_groups", "pci_devices")
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")

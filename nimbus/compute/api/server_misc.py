"""Diagnostics, server external events, remote consoles (and their tokens), the server
password, and the legacy extensions list."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.bus import BusTimeout, RemoteError
from nimbus.compute import instances, rpc, states
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller, body_doc, caller
from nimbus.compute.api.server_actions import ACTIONS, target
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

router = APIRouter()


@router.get("/v2.1/servers/{server_id}/diagnostics")
async def diagnostics(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-server-diagnostics", target(inst))
    if not inst.host or inst.vm_state in (states.BUILDING, states.SHELVED_OFFLOADED):
        raise Conflict(f"Cannot 'get_diagnostics' instance {server_id} while it is in "
                       f"vm_state {inst.vm_state}")
    try:
        data: dict[str, Any] = await c.svc.cloud.bus.call(
            rpc.agent(inst.host), "get_diagnostics", instance=instances.to_agent(inst),
            timeout=30)
    except (BusTimeout, RemoteError) as exc:
        raise Conflict(f"Instance {server_id} is not ready: {exc}") from None
    if c.at(48):
        return json_response(data)
    legacy: dict[str, Any] = {f"cpu{cpu['id']}_time": cpu["time"]
                              for cpu in data.get("cpu_details", [])}
    legacy["memory"] = (data.get("memory_details") or {}).get("maximum", 0)
    for i, nic in enumerate(data.get("nic_details", [])):
        for key in ("rx_octets", "rx_errors", "rx_drop", "rx_packets", "tx_octets",
                    "tx_errors", "tx_drop", "tx_packets"):
            legacy[f"tap{i}_{key}"] = nic.get(key)
    for i, disk in enumerate(data.get("disk_details", [])):
        name = "vd" + chr(ord("a") + i)
        legacy[f"{name}_read"] = disk.get("read_bytes")
        legacy[f"{name}_read_req"] = disk.get("read_requests")
        legacy[f"{name}_write"] = disk.get("write_bytes")
        legacy[f"{name}_write_req"] = disk.get("write_requests")
        legacy[f"{name}_errors"] = disk.get("errors_count")
    return json_response(legacy)


EVENT_NAMES = ["network-changed", "network-vif-plugged", "network-vif-unplugged",
               "network-vif-deleted"]


def _event_names(c: Caller) -> list[str]:
    names = list(EVENT_NAMES)
    for minor, name in ((51, "volume-extended"), (76, "power-update"),
                        (82, "accelerator-request-bound"), (93, "volume-reimaged")):
        if c.at(minor):
            names.append(name)
    return names


def _events_schema(names: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {"events": {
        "type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "server_uuid": v.UUID, "name": {"type": "string", "enum": names},
            "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
            "tag": {"type": "string", "maxLength": 255}},
            "required": ["server_uuid", "name"], "additionalProperties": False}}},
        "required": ["events"], "additionalProperties": False}


@router.post("/v2.1/os-server-external-events",
             openapi_extra=body_doc(_events_schema(EVENT_NAMES)))
async def external_events(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-server-external-events:create", {})
    body = await c.body(_events_schema(_event_names(c)))
    events = [{**e, "status": e.get("status", "completed")} for e in body["events"]]
    if c.svc.conductor is None:
        raise Conflict("The conductor is not running here.")
    results = await c.svc.conductor.route_events(events)
    found = [r for r in results if r["code"] == 200]
    if not found:
        raise NotFound("No instances found for any event")
    status = 200 if len(found) == len(results) else 207
    return json_response({"events": results}, status)


# -- consoles -------------------------------------------------------------------------------------
PROTOCOLS = {"vnc": ["novnc", "xvpvnc"], "spice": ["spice-html5", "spice-direct"],
             "rdp": ["rdp-html5"], "serial": ["serial"], "mks": ["webmks"]}
CONSOLE = {"type": "object", "properties": {"remote_console": {
    "type": "object", "properties": {
        "protocol": {"type": "string", "enum": list(PROTOCOLS)},
        "type": {"type": "string", "enum": sorted({t for ts in PROTOCOLS.values()
                                                   for t in ts})}},
    "required": ["protocol", "type"], "additionalProperties": False}},
    "required": ["remote_console"], "additionalProperties": False}


async def _console(c: Caller, server_id: str, protocol: str, kind: str) -> dict[str, Any]:
    if kind not in PROTOCOLS.get(protocol, []) or (kind == "spice-direct" and not c.at(99)):
        raise BadRequest(f"Unsupported console type {kind}")
    if protocol in ("rdp", "mks"):
        raise BadRequest(f"Unsupported console type {kind}")
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-remote-consoles", target(inst))
    if inst.vm_state != states.ACTIVE or not inst.host:
        raise Conflict(f"Instance {server_id} is not ready")
    token = secrets.token_urlsafe(24)
    c.svc.console_tokens[token] = {"instance_uuid": inst.uuid, "host": inst.host,
                                   "port": 5900, "internal_access_path": None,
                                   "protocol": protocol}
    paths = {"novnc": "vnc_auto.html", "xvpvnc": "console", "spice-html5": "spice_auto.html",
             "spice-direct": "spice", "serial": "serial"}
    scheme = "ws" if kind == "serial" else "http"
    return {"protocol": protocol, "type": kind,
            "url": f"{scheme}://127.0.0.1:6080/{paths[kind]}?path=%3Ftoken%3D{token}"}


@router.post("/v2.1/servers/{server_id}/remote-consoles", openapi_extra=body_doc(CONSOLE))
async def remote_console(server_id: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    body = (await c.body(CONSOLE))["remote_console"]
    return json_response({"remote_console": await _console(c, server_id, body["protocol"],
                                                           body["type"])})


def _legacy_console(protocol: str) -> Any:
    async def handler(c: Caller, server_id: str, params: Any) -> Response:
        if c.at(6):
            raise BadRequest("There is no such action")
        kind = (params or {}).get("type", "")
        console = await _console(c, server_id, protocol, kind)
        return json_response({"console": {"type": kind, "url": console["url"]}})
    return handler


for _name, _protocol in (("os-getVNCConsole", "vnc"), ("os-getSPICEConsole", "spice"),
                         ("os-getSerialConsole", "serial")):
    ACTIONS[_name] = (_legacy_console(_protocol), {"type": "object", "properties": {
        "type": {"type": "string"}}, "required": ["type"], "additionalProperties": False}, 1)


@router.get("/v2.1/os-console-auth-tokens/{token}")
async def console_token(token: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-console-auth-tokens", {})
    info = c.svc.console_tokens.get(token)
    if info is None:
        raise NotFound("The token does not exist or has expired")
    if not c.at(31) and info["protocol"] != "rdp":
        raise BadRequest("The requested console type details are not accessible")
    out = {k: val for k, val in info.items() if k != "protocol"}
    if c.at(99):
        out["tls_port"] = None
    return json_response({"console": out})


# -- server password ------------------------------------------------------------------------------
@router.get("/v2.1/servers/{server_id}/os-server-password")
async def show_password(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-server-password:show", target(inst))
    return json_response({"password": (inst.system_metadata or {}).get("password", "")})


@router.delete("/v2.1/servers/{server_id}/os-server-password")
async def clear_password(server_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-server-password:clear", target(inst))
        meta = dict(inst.system_metadata or {})
        meta.pop("password", None)
        instances.apply(inst, {"system_metadata": meta})
    return Response(status_code=204)


# -- extensions -----------------------------------------------------------------------------------
EXTENSIONS = [
    ("Multinic", "NMN"), ("DiskConfig", "OS-DCF"), ("ExtendedAvailabilityZone", "OS-EXT-AZ"),
    ("ImageSize", "OS-EXT-IMG-SIZE"), ("ExtendedIps", "OS-EXT-IPS"),
    ("ExtendedIpsMac", "OS-EXT-IPS-MAC"), ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR"),
    ("ExtendedStatus", "OS-EXT-STS"), ("FlavorDisabled", "OS-FLV-DISABLED"),
    ("FlavorExtraData", "OS-FLV-EXT-DATA"), ("SchedulerHints", "OS-SCH-HNT"),
    ("ServerUsage", "OS-SRV-USG"), ("AccessIPs", "os-access-ips"),
    ("AdminPassword", "os-admin-password"), ("Agents", "os-agents"),
    ("Aggregates", "os-aggregates"),
    ("AssistedVolumeSnapshots", "os-assisted-volume-snapshots"),
    ("AttachInterfaces", "os-attach-interfaces"),
    ("BareMetalExtStatus", "os-baremetal-ext-status"),
    ("BareMetalNodes", "os-baremetal-nodes"),
    ("BlockDeviceMapping", "os-block-device-mapping"),
    ("BlockDeviceMappingV2Boot", "os-block-device-mapping-v2-boot"),
    ("CellCapacities", "os-cell-capacities"), ("Certificates", "os-certificates"),
    ("ConfigDrive", "os-config-drive"), ("ConsoleAuthTokens", "os-console-auth-tokens"),
    ("ConsoleOutput", "os-console-output"), ("Consoles", "os-consoles"),
    ("CreateBackup", "os-create-backup"), ("Createserverext", "os-create-server-ext"),
    ("DeferredDelete", "os-deferred-delete"), ("Evacuate", "os-evacuate"),
    ("ExtendedHypervisors", "os-extended-hypervisors"),
    ("ExtendedNetworks", "os-extended-networks"), ("ExtendedServices", "os-extended-services"),
    ("ExtendedServicesDelete", "os-extended-services-delete"),
    ("ExtendedStatus", "os-extended-status"), ("ExtendedVolumes", "os-extended-volumes"),
    ("FixedIPs", "os-fixed-ips"), ("FlavorAccess", "os-flavor-access"),
    ("FlavorExtraSpecs", "os-flavor-extra-specs"), ("FlavorManage", "os-flavor-manage"),
    ("FlavorRxtx", "os-flavor-rxtx"), ("FlavorSwap", "os-flavor-swap"),
    ("FloatingIpDns", "os-floating-ip-dns"), ("FloatingIpPools", "os-floating-ip-pools"),
    ("FloatingIps", "os-floating-ips"), ("FloatingIpsBulk", "os-floating-ips-bulk"),
    ("Fping", "os-fping"), ("HideServerAddresses", "os-hide-server-addresses"),
    ("Hosts", "os-hosts"), ("HypervisorStatus", "os-hypervisor-status"),
    ("Hypervisors", "os-hypervisors"),
    ("OSInstanceUsageAuditLog", "os-instance_usage_audit_log"), ("Keypairs", "os-keypairs"),
    ("LockServer", "os-lock-server"), ("MigrateServer", "os-migrate-server"),
    ("Migrations", "os-migrations"), ("MultipleCreate", "os-multiple-create"),
    ("Networks", "os-networks"), ("NetworkAssociationSupport", "os-networks-associate"),
    ("PauseServer", "os-pause-server"), ("Personality", "os-personality"),
    ("QuotaClasses", "os-quota-class-sets"), ("Quotas", "os-quota-sets"),
    ("Rescue", "os-rescue"), ("SecurityGroupDefaultRules", "os-security-group-default-rules"),
    ("SecurityGroups", "os-security-groups"),
    ("ServerExternalEvents", "os-server-external-events"),
    ("ServerGroupQuotas", "os-server-group-quotas"), ("ServerGroups", "os-server-groups"),
    ("ServerPassword", "os-server-password"), ("ServerSortKeys", "os-server-sort-keys"),
    ("ServerStartStop", "os-server-start-stop"), ("Services", "os-services"),
    ("Shelve", "os-shelve"), ("SimpleTenantUsage", "os-simple-tenant-usage"),
    ("SuspendServer", "os-suspend-server"), ("OSTenantNetworks", "os-tenant-networks"),
    ("UserData", "os-user-data"), ("UserQuotas", "os-user-quotas"),
    ("VirtualInterfaces", "os-virtual-interfaces"),
    ("VolumeAttachmentUpdate", "os-volume-attachment-update"), ("Volumes", "os-volumes"),
]


def _extension(name: str, alias: str) -> dict[str, Any]:
    return {"name": name, "alias": alias, "description": f"{name} support.", "links": [],
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
            "updated": "2014-12-03T00:00:00Z"}


@router.get("/v2.1/extensions")
async def list_extensions(c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-extensions", {})
    return json_response({"extensions": [_extension(n, a) for n, a in EXTENSIONS]})


@router.get("/v2.1/extensions/{alias}")
async def show_extension(alias: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("os_compute_api:os-extensions", {})
    for name, known in EXTENSIONS:
        if known == alias:
            return json_response({"extension": _extension(name, known)})
    raise NotFound("The resource could not be found.")

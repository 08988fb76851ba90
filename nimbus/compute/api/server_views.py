"""How a server looks at each microversion (Nova's servers view)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from nimbus.common.timeutils import aware, isotime
from nimbus.compute import hosts, instances, states
from nimbus.compute.models import Instance, InstanceFault, Service

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from nimbus.compute.api.common import Caller

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
FAULT_STATUSES = ("ERROR", "DELETED")
ESA = "os_compute_api:os-extended-server-attributes"


def host_id(inst: Instance) -> str:
    if not inst.host:
        return ""
    return hashlib.sha224((inst.project_id + inst.host).encode()).hexdigest()


def status(inst: Instance) -> str:
    if inst.deleted:
        return "DELETED" if inst.vm_state != states.SOFT_DELETED else "SOFT_DELETED"
    return states.status(inst.vm_state, inst.task_state)


def addresses(inst: Instance, extended: bool = True) -> dict[str, list[dict[str, Any]]]:
    if inst.vm_state == states.BUILDING:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for vif in inst.network_info or []:
        label = str(vif.get("network_name") or vif.get("network_id"))
        entries = out.setdefault(label, [])
        for ip in vif.get("fixed_ips", []):
            entry: dict[str, Any] = {"version": ip.get("version", 4), "addr": ip["ip_address"]}
            if extended:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = vif.get("mac_address")
            entries.append(entry)
        for fip in vif.get("floating_ips", []):
            entry = {"version": 4, "addr": fip}
            if extended:
                entry["OS-EXT-IPS:type"] = "floating"
                entry["OS-EXT-IPS-MAC:mac_addr"] = vif.get("mac_address")
            entries.append(entry)
    return out


def flavor_view(c: Caller, inst: Instance, show_specs: bool) -> dict[str, Any]:
    flavor = inst.flavor or {}
    if c.at(47):
        out: dict[str, Any] = {"vcpus": flavor.get("vcpus"), "ram": flavor.get("memory_mb"),
                               "disk": flavor.get("root_gb"),
                               "ephemeral": flavor.get("ephemeral_gb"),
                               "swap": flavor.get("swap"),
                               "original_name": flavor.get("name")}
        if show_specs:
            out["extra_specs"] = flavor.get("extra_specs") or {}
        return out
    fid = flavor.get("flavorid", "")
    return {"id": str(fid), "links": [{"rel": "bookmark", "href": f"{c.base}/flavors/{fid}"}]}


def image_view(c: Caller, inst: Instance) -> Any:
    if not inst.image_ref:
        return ""
    image_id = inst.image_ref.rstrip("/").rsplit("/", 1)[-1]
    out: dict[str, Any] = {"id": image_id, "links": [
        {"rel": "bookmark", "href": f"{c.base}/images/{image_id}"}]}
    if c.at(98):
        props = (inst.image_meta or {}).get("properties") or {}
        out["properties"] = {k: v for k, v in props.items() if v is not None}
    return out


def fault_view(c: Caller, fault: InstanceFault | None) -> dict[str, Any] | None:
    if fault is None:
        return None
    out: dict[str, Any] = {"code": fault.code, "created": isotime(fault.created_at),
                           "message": fault.message}
    if fault.details and (c.ctx.is_admin or fault.code != 500):
        out["details"] = fault.details
    return out


class Extras:
    """What a page of servers needs beyond the rows: tags, faults, groups, host states."""

    def __init__(self) -> None:
        self.tags: dict[str, list[str]] = {}
        self.faults: dict[str, InstanceFault] = {}
        self.groups: dict[str, list[str]] = {}
        self.host_status: dict[str, str] = {}

    @classmethod
    async def load(cls, c: Caller, session: AsyncSession, rows: list[Instance],
                   known: instances.Extras | None = None) -> Extras:
        """`known`: tags and groups already read with the rows (instances.get_with_extras)."""
        extras = cls()
        uuids = [r.uuid for r in rows]
        if not uuids:
            return extras
        if known is None:
            known = await instances.tags_and_groups(session, uuids, tags=c.at(26),
                                                    groups=c.at(71))
        extras.tags = known.tags or {}
        extras.groups = {u: g for u, g in (known.groups or {}).items() if g}
        extras.faults = await instances.latest_faults(
            session, [r.uuid for r in rows if status(r) in FAULT_STATUSES])
        if c.at(16):
            services = await c.svc.compute_services()
            for r in rows:
                extras.host_status[r.uuid] = _host_status(c, r, services.get(r.host or ""))
        return extras


def _host_status(c: Caller, inst: Instance, service: Service | None) -> str:
    if not inst.host:
        return ""
    if service is None:
        return "UNKNOWN"
    if service.forced_down:
        return "DOWN"
    if not hosts.is_up(service, c.svc.settings):
        return "UNKNOWN" if service.last_seen_up is None else "DOWN"
    if service.disabled:
        return "MAINTENANCE"
    return "UP"


def basic(c: Caller, inst: Instance) -> dict[str, Any]:
    return {"id": inst.uuid, "name": inst.display_name, "links": c.links("servers", inst.uuid)}


def show(c: Caller, inst: Instance, extras: Extras, *, show_esa: bool | None = None,
         show_specs: bool | None = None, show_host_status: bool | None = None,
         show_groups: bool = False, full: bool = True,
         keypair: bool | None = None) -> dict[str, Any]:
    """Nova's show view. `full` False is the reply of update and rebuild before 2.75:
    no zone, config drive, keypair, usage, security groups, extended status, volumes,
    extended attributes, host status or extended addresses."""
    target = {"project_id": inst.project_id, "user_id": inst.user_id}
    if show_specs is None:
        show_specs = c.at(47) and c.allowed("os_compute_api:servers:show:flavor-extra-specs",
                                            target)
    if not full:
        show_esa, show_host_status = False, False
    if show_esa is None:
        show_esa = c.allowed(ESA, target)
    shown = status(inst)
    server: dict[str, Any] = {
        "accessIPv4": inst.access_ip_v4 or "", "accessIPv6": inst.access_ip_v6 or "",
        "addresses": addresses(inst, extended=full), "created": isotime(inst.created_at),
        "flavor": flavor_view(c, inst, show_specs), "hostId": host_id(inst), "id": inst.uuid,
        "image": image_view(c, inst), "links": c.links("servers", inst.uuid),
        "metadata": inst.metadata_ or {}, "name": inst.display_name, "status": shown,
        "tenant_id": inst.project_id, "user_id": inst.user_id,
        "updated": isotime(inst.updated_at),
        "OS-DCF:diskConfig": "AUTO" if inst.auto_disk_config else "MANUAL",
    }
    if shown in FAULT_STATUSES:
        fault = fault_view(c, extras.faults.get(inst.uuid))
        if fault:
            server["fault"] = fault
    if shown in PROGRESS_STATUSES:
        server["progress"] = inst.progress or 0
    if full:
        server["OS-EXT-AZ:availability_zone"] = inst.availability_zone or ""
        server["config_drive"] = inst.config_drive or ""
    if full if keypair is None else keypair:
        server["key_name"] = inst.key_name
    if full:
        for key in ("launched_at", "terminated_at"):
            value = getattr(inst, key)
            server["OS-SRV-USG:" + key] = aware(value).strftime("%Y-%m-%dT%H:%M:%S.%f") \
                if value else None
    if full and inst.network_info and inst.security_groups:
        server["security_groups"] = [{"name": n} for n in inst.security_groups]
    if show_esa:
        server["OS-EXT-SRV-ATTR:host"] = inst.host
        server["OS-EXT-SRV-ATTR:instance_name"] = instances.instance_name(inst)
        server["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst.node
        if c.at(3):
            server.update({
                "OS-EXT-SRV-ATTR:hostname": inst.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": inst.kernel_id or "",
                "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                "OS-EXT-SRV-ATTR:ramdisk_id": inst.ramdisk_id or "",
                "OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                "OS-EXT-SRV-ATTR:root_device_name": inst.root_device_name,
                "OS-EXT-SRV-ATTR:user_data": inst.user_data,
            })
    if full:
        server["OS-EXT-STS:task_state"] = inst.task_state
        server["OS-EXT-STS:vm_state"] = inst.vm_state
        server["OS-EXT-STS:power_state"] = inst.power_state
        server["os-extended-volumes:volumes_attached"] = [
            {"id": b["volume_id"], **({"delete_on_termination": bool(
                b.get("delete_on_termination"))} if c.at(3) else {})}
            for b in inst.block_device_mapping or [] if b.get("volume_id")]
    if c.at(9):
        server["locked"] = bool(inst.locked)
    if c.at(16):
        if show_host_status is None:
            show_host_status = c.allowed("os_compute_api:servers:show:host_status", target)
        if show_host_status and inst.uuid in extras.host_status:
            server["host_status"] = extras.host_status[inst.uuid]
    if c.at(19):
        server["description"] = inst.display_description
    if c.at(26):
        server["tags"] = extras.tags.get(inst.uuid, [])
    if c.at(63):
        server["trusted_image_certificates"] = inst.trusted_certs or None
    if show_groups and c.at(71):
        server["server_groups"] = extras.groups.get(inst.uuid, [])
    if c.at(73):
        server["locked_reason"] = inst.locked_reason
    if c.at(90) and not show_esa:
        server["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
    if c.at(96):
        server["pinned_availability_zone"] = inst.pinned_availability_zone
    if c.at(100):
        server["scheduler_hints"] = inst.scheduler_hints or {}
    return server


async def render_one(c: Caller, session: AsyncSession, inst: Instance,
                     known: instances.Extras | None = None) -> dict[str, Any]:
    extras = await Extras.load(c, session, [inst], known)
    return show(c, inst, extras, show_groups=True)


async def refresh(c: Caller, uuid: str, *, keypair: bool | None = None) -> dict[str, Any]:
    """The server as it is now, as update and rebuild answer (all of it from 2.75)."""
    async with c.svc.db.session() as session:
        inst = await instances.get(session, uuid, c.ctx)
        extras = await Extras.load(c, session, [inst])
        return show(c, inst, extras, show_groups=c.at(71), full=c.at(75),
                    keypair=True if c.at(75) else keypair)

"""Life-cycle steps shared by the API and the conductor: building the request spec of an
instance, finishing a delete (nothing left behind), and putting an instance in ERROR."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from nimbus.clients.image import ImageClient
from nimbus.clients.network import NetworkClient
from nimbus.clients.placement import PlacementClient
from nimbus.common.timeutils import utcnow
from nimbus.compute import instances, states
from nimbus.compute.models import (
    Instance,
    InstanceTag,
    Migration,
    ServerGroup,
    ServerGroupMember,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from nimbus.cloud import Cloud
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)


async def request_spec(session: AsyncSession, inst: Instance) -> dict[str, Any]:
    group = None
    if (inst.scheduler_hints or {}).get("group"):
        group = (await session.execute(select(ServerGroup).join(
            ServerGroupMember, ServerGroupMember.group_id == ServerGroup.id).where(
            ServerGroupMember.instance_uuid == inst.uuid))).scalars().first()
    dest = inst.requested_destination or {}
    return {
        "project_id": inst.project_id, "user_id": inst.user_id, "flavor": inst.flavor,
        "image_meta": inst.image_meta or {}, "availability_zone": inst.pinned_availability_zone,
        "force_host": dest.get("force_host"), "force_node": dest.get("force_node"),
        "requested_host": dest.get("host"), "requested_node": dest.get("node"),
        "scheduler_hints": inst.scheduler_hints or {},
        "ignore_hosts": list(inst.retry_hosts or []),
        "is_bfv": instances.is_volume_backed(inst),
        "group": {"uuid": group.uuid, "policy": group.policy, "rules": group.rules or {}}
        if group is not None else None,
    }


def has_service(cloud: Cloud, name: str) -> bool:
    settings = cloud.settings
    return name in settings.services or name in settings.service_urls


async def release_ports(cloud: Cloud, inst_uuid: str,
                        network_info: list[dict[str, Any]]) -> None:
    """Delete the ports compute made for the server; unbind the ones the user brought."""
    if not has_service(cloud, "network"):
        return
    client = cloud.clients.get(NetworkClient)
    preexisting = {v["port_id"] for v in network_info if v.get("preexisting")}
    try:
        ports = await client.ports({"device_id": inst_uuid})
    except Exception:
        LOG.warning("could not list the ports of %s", inst_uuid, exc_info=True)
        ports = [{"id": v["port_id"]} for v in network_info]
    for port in ports:
        try:
            if port["id"] in preexisting:
                await client.update_port(port["id"], {
                    "device_id": "", "device_owner": "", "binding:host_id": None})
            else:
                await client.delete_port(port["id"])
        except Exception:
            LOG.warning("could not release port %s of %s", port["id"], inst_uuid,
                        exc_info=True)


async def release_allocations(svc: ComputeService, consumers: list[str]) -> None:
    if not has_service(svc.cloud, "placement"):
        return
    client = svc.cloud.clients.get(PlacementClient)
    for consumer in consumers:
        try:
            await client.delete_allocations(consumer)
        except Exception:
            LOG.warning("could not delete the allocations of %s", consumer, exc_info=True)


async def mark_deleted(session: AsyncSession, inst: Instance, request_id: str | None,
                       changes: instances.Changes) -> list[str]:
    """Mark the instance deleted in this transaction; returns what to free afterwards: the
    placement consumers (its own, its unfinished migrations') and, prefixed "image:", the
    image a shelved server was kept in."""
    migrations = (await session.scalars(select(Migration).where(
        Migration.instance_uuid == inst.uuid,
        Migration.status.not_in(("confirmed", "reverted", "error", "failed",
                                 "completed", "cancelled"))))).all()
    for m in migrations:
        m.status = "error" if m.status != "finished" else "confirmed"
    now = utcnow()
    instances.apply(inst, {"vm_state": states.DELETED, "task_state": None,
                           "power_state": states.NOSTATE, "terminated_at": now,
                           "deleted": True, "deleted_at": now}, changes)
    await session.execute(delete(ServerGroupMember).where(
        ServerGroupMember.instance_uuid == inst.uuid))
    await session.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == inst.uuid))
    await instances.record_event(session, inst.uuid, request_id, "compute_terminate_instance",
                                 host=inst.host)
    shelved = (inst.system_metadata or {}).get("shelved_image_id")
    return [inst.uuid, *(m.uuid for m in migrations), *([f"image:{shelved}"] if shelved else [])]


async def release(svc: ComputeService, uuid: str, consumers: list[str],
                  network_info: list[dict[str, Any]], payload: dict[str, Any],
                  changes: instances.Changes, *, ports: bool) -> None:
    """After a delete committed: free allocations and (when `ports`) ports; announce it."""
    images = [c.split(":", 1)[1] for c in consumers if c.startswith("image:")]
    await release_allocations(svc, [c for c in consumers if not c.startswith("image:")])
    for image_id in images:
        try:
            await svc.cloud.clients.get(ImageClient).delete(image_id)
        except Exception:
            LOG.warning("could not delete shelved image %s", image_id, exc_info=True)
    if ports:
        await release_ports(svc.cloud, uuid, network_info)
    await changes.send(svc)
    await svc.notify("compute.instance.delete.end", payload)


async def finish_delete(svc: ComputeService, uuid: str, request_id: str | None, *,
                        ports: bool) -> bool:
    """Mark the instance deleted and free what it held. False if it was already gone."""
    changes = instances.Changes()
    async with svc.db.transaction() as session:
        inst = (await session.scalars(select(Instance).where(
            Instance.uuid == uuid, Instance.deleted.is_(False)))).first()
        if inst is None:
            return False
        network_info = list(inst.network_info or [])
        consumers = await mark_deleted(session, inst, request_id, changes)
        payload = instances.state_payload(inst)
    await release(svc, uuid, consumers, network_info, payload, changes, ports=ports)
    return True


async def set_error(svc: ComputeService, uuid: str, message: str, *,
                    request_id: str | None = None, event: str | None = None,
                    details: str | None = None, host: str | None = None,
                    code: int = 500) -> None:
    changes = instances.Changes()
    async with svc.db.transaction() as session:
        inst = (await session.scalars(select(Instance).where(
            Instance.uuid == uuid, Instance.deleted.is_(False)))).first()
        if inst is None:
            return
        instances.apply(inst, {"vm_state": states.ERROR, "task_state": None}, changes)
        instances.add_fault(session, inst, message, code=code, details=details, host=host)
        if event:
            await instances.record_event(session, uuid, request_id, event, error=message,
                                         host=host, details=message)
        payload = {**instances.state_payload(inst), "fault": message}
    await changes.send(svc)
    await svc.notify("compute.instance.create.error" if event and "build" in event
                     else "compute.instance.error", payload, )

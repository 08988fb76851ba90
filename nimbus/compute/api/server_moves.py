"""Server actions that move or remake a server: resize (confirm, revert), migrate,
live-migrate, evacuate, rebuild, shelve (offload, unshelve), createImage, createBackup."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from nimbus.clients.base import RemoteApiError
from nimbus.clients.image import ImageClient
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import utcnow
from nimbus.compute import flavors, hosts, instances, lifecycle, quotas, rpc, states
from nimbus.compute.api import server_schemas as schemas
from nimbus.compute.api import server_views as views
from nimbus.compute.api import validation as v
from nimbus.compute.api.common import Caller
from nimbus.compute.api.server_actions import action, check_lock, check_state, target
from nimbus.compute.create import Creator, boot_images, canonical_ip
from nimbus.compute.models import ComputeNode, Instance, Migration, Service
from nimbus.web.errors import BadRequest, Conflict, NotFound
from nimbus.web.responses import json_response

DISK_CONFIG = {"type": "string", "enum": ["AUTO", "MANUAL"]}
FLAVOR_REF = {"type": ["string", "integer"], "minLength": 1}


async def _service(session: AsyncSession, host: str | None) -> Service | None:
    if not host:
        return None
    return (await session.scalars(select(Service).where(
        Service.host == host, Service.binary == hosts.COMPUTE_BINARY))).first()


async def _host_exists(session: AsyncSession, host: str) -> bool:
    return (await session.scalars(select(ComputeNode.id).where(
        ComputeNode.host == host))).first() is not None


def _migration(inst: Instance, kind: str, c: Caller, new_flavor: dict[str, Any] | None,
               status: str = "pre-migrating") -> Migration:
    now = utcnow()
    return Migration(uuid=new_uuid(), instance_uuid=inst.uuid, migration_type=kind,
                     status=status, source_compute=inst.host, source_node=inst.node,
                     source_node_uuid=inst.node_uuid,
                     old_flavor_id=(inst.flavor or {}).get("id"),
                     new_flavor_id=(new_flavor or inst.flavor or {}).get("id"),
                     user_id=c.ctx.user_id, project_id=c.ctx.project_id, created_at=now,
                     updated_at=now)


async def _to_conductor(c: Caller, method: str, **kwargs: Any) -> None:
    await c.svc.cloud.bus.cast(rpc.CONDUCTOR, "moves", step=method, kwargs={
        **kwargs, "request_id": c.ctx.global_request_id or c.ctx.request_id})


# -- resize and cold migration --------------------------------------------------------------------
async def _start_move(c: Caller, server_id: str, kind: str, rule: str, method: str,
                      flavor_ref: str | None = None, host: str | None = None,
                      disk_config: str | None = None) -> None:
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce(rule, target(inst))
        check_lock(c, inst)
        check_state(inst, method, [states.ACTIVE, states.STOPPED])
        service = await _service(session, inst.host)
        if service is None or not hosts.is_up(service, c.svc.settings):
            raise Conflict(f"Compute service of {inst.host} is unavailable at this time.")
        new = inst.flavor
        if flavor_ref is not None:
            row = await flavors.find(session, flavor_ref)
            if row is None or row.disabled or not await flavors.can_use(session, c.ctx, row):
                raise BadRequest(f"Unable to find flavor: {flavor_ref}" if row is None
                                 else "Invalid flavorRef provided.")
            if row.flavorid == (inst.flavor or {}).get("flavorid"):
                raise BadRequest("When resizing, instances must change flavor!")
            if row.root_gb < inst.root_gb and not instances.is_volume_backed(inst):
                raise BadRequest("Resize error: Unable to resize disk down.")
            specs = (await flavors.extra_specs(session, [row.id]))[row.id]
            new = flavors.snapshot(row, specs)
            await quotas.enforce_delta(session, inst.project_id, inst.user_id,
                                       new["vcpus"] - inst.vcpus,
                                       new["memory_mb"] - inst.memory_mb)
        if host is not None:
            if not await _host_exists(session, host):
                raise BadRequest(f"Compute host {host} could not be found.")
            if host == inst.host:
                raise BadRequest(f"Unable to migrate instance ({server_id}) to current host "
                                 f"({host}).")
        mig = _migration(inst, kind, c, new)
        session.add(mig)
        updates: dict[str, Any] = {"task_state": states.RESIZE_PREP, "new_flavor": new,
                                   "old_flavor": inst.flavor}
        if disk_config is not None:
            updates["auto_disk_config"] = disk_config == "AUTO"
        instances.apply(inst, updates, changes)
        instances.start_action(session, inst, "resize" if kind == "resize" else "migrate",
                               c.ctx)
    await changes.send(c.svc)
    await _to_conductor(c, "resize", uuid=server_id, migration_uuid=mig.uuid, host=host)


@action("resize", {"type": "object", "properties": {"flavorRef": FLAVOR_REF,
                                                     "OS-DCF:diskConfig": DISK_CONFIG},
                   "required": ["flavorRef"], "additionalProperties": False})
async def resize(c: Caller, server_id: str, params: Any) -> Response:
    await _start_move(c, server_id, "resize", "os_compute_api:servers:resize", "resize",
                      flavor_ref=str(params["flavorRef"]),
                      disk_config=params.get("OS-DCF:diskConfig"))
    return Response(status_code=202)


@action("migrate", {"type": ["object", "null"], "properties": {
    "host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}},
    "additionalProperties": False})
async def migrate(c: Caller, server_id: str, params: Any) -> Response:
    host = (params or {}).get("host")
    if host is not None and not c.at(56):
        raise BadRequest("Invalid input for field/attribute migrate. Value: "
                         f"{params}. {params} is not of type 'null'")
    if host is not None:
        c.enforce("os_compute_api:os-migrate-server:migrate:host", {})
    await _start_move(c, server_id, "migration", "os_compute_api:os-migrate-server:migrate",
                      "migrate", host=host)
    return Response(status_code=202)


async def _resized(c: Caller, server_id: str, rule: str, method: str,
                   status: str) -> tuple[Instance, Migration]:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce(rule, target(inst))
        check_lock(c, inst)
        check_state(inst, method, [states.RESIZED])
        mig = (await session.scalars(select(Migration).where(
            Migration.instance_uuid == inst.uuid, Migration.status == "finished").order_by(
            Migration.id.desc()))).first()
        if mig is None:
            raise BadRequest("Instance has not been resized.")
        mig.status = status
        mig.updated_at = utcnow()
        if method == "revertResize":
            instances.apply(inst, {"task_state": states.RESIZE_REVERTING})
        instances.start_action(session, inst, "confirmResize" if method == "confirmResize"
                               else "revertResize", c.ctx)
    return inst, mig


@action("confirmResize")
async def confirm_resize(c: Caller, server_id: str, params: Any) -> Response:
    from nimbus.compute.conductor.moves import migration_dict

    inst, mig = await _resized(c, server_id, "os_compute_api:servers:confirm_resize",
                               "confirmResize", "confirming")
    await c.svc.cloud.bus.cast(rpc.agent(mig.source_compute or ""), "confirm_resize",
                               instance=instances.to_agent(inst), migration=migration_dict(mig),
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    return Response(status_code=204)


@action("revertResize")
async def revert_resize(c: Caller, server_id: str, params: Any) -> Response:
    from nimbus.compute.conductor.moves import migration_dict

    inst, mig = await _resized(c, server_id, "os_compute_api:servers:revert_resize",
                               "revertResize", "reverting")
    await c.svc.cloud.bus.cast(rpc.agent(mig.dest_compute or ""), "revert_resize",
                               instance=instances.to_agent(inst), migration=migration_dict(mig),
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    return Response(status_code=202)


# -- live migration and evacuation ----------------------------------------------------------------
LIVE: dict[str, Any] = {"type": "object", "properties": {
    "block_migration": {"oneOf": [v.BOOLEAN, {"type": "string", "enum": ["auto"]}]},
    "disk_over_commit": v.BOOLEAN, "force": v.BOOLEAN,
    "host": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}},
    "required": ["block_migration"], "additionalProperties": False}


@action("os-migrateLive", LIVE)
async def live_migrate(c: Caller, server_id: str, params: Any) -> Response:
    if not c.at(25) and "disk_over_commit" not in params:
        raise BadRequest("Invalid input for field/attribute os-migrateLive. Value: "
                         f"{params}. 'disk_over_commit' is a required property")
    if c.at(25) and "disk_over_commit" in params:
        raise BadRequest("Invalid input for field/attribute os-migrateLive. Additional "
                         "properties are not allowed ('disk_over_commit' was unexpected)")
    if params["block_migration"] == "auto" and not c.at(25):
        raise BadRequest("Invalid input for field/attribute block_migration. Value: auto.")
    if "force" in params and not (c.at(30) and not c.at(68)):
        raise BadRequest("Invalid input for field/attribute os-migrateLive. Additional "
                         "properties are not allowed ('force' was unexpected)")
    host = params.get("host")
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce("os_compute_api:os-migrate-server:migrate_live", target(inst))
        check_lock(c, inst)
        check_state(inst, "os-migrateLive", [states.ACTIVE, states.PAUSED_VM])
        if host is not None:
            if not await _host_exists(session, host):
                raise BadRequest(f"Compute host {host} could not be found.")
            if host == inst.host:
                raise BadRequest(f"Unable to migrate instance ({server_id}) to current host "
                                 f"({host}).")
        mig = _migration(inst, "live-migration", c, None, status="accepted")
        session.add(mig)
        instances.apply(inst, {"task_state": states.MIGRATING}, changes)
        instances.start_action(session, inst, "live-migration", c.ctx)
    await changes.send(c.svc)
    await _to_conductor(c, "live_migrate", uuid=server_id, migration_uuid=mig.uuid, host=host)
    return Response(status_code=202)


EVACUATE: dict[str, Any] = {"type": "object", "properties": {
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "onSharedStorage": v.BOOLEAN, "adminPass": {"type": "string"}, "force": v.BOOLEAN},
    "additionalProperties": False}


@action("evacuate", EVACUATE)
async def evacuate(c: Caller, server_id: str, params: Any) -> Response:
    if c.at(14) and "onSharedStorage" in params:
        raise BadRequest("Invalid input for field/attribute evacuate. Additional properties "
                         "are not allowed ('onSharedStorage' was unexpected)")
    if not c.at(14) and "onSharedStorage" not in params:
        raise BadRequest("Invalid input for field/attribute evacuate. 'onSharedStorage' is a "
                         "required property")
    if "force" in params and not (c.at(29) and not c.at(68)):
        raise BadRequest("Invalid input for field/attribute evacuate. Additional properties "
                         "are not allowed ('force' was unexpected)")
    host = params.get("host")
    password = params.get("adminPass") or secrets.token_urlsafe(9)[:12]
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce("os_compute_api:os-evacuate", target(inst))
        check_state(inst, "evacuate", [states.ACTIVE, states.STOPPED, states.ERROR])
        if host is not None:
            if not await _host_exists(session, host):
                raise NotFound(f"Compute host {host} could not be found.")
            if host == inst.host:
                raise BadRequest("The target host can't be the same one.")
        service = await _service(session, inst.host)
        if service is not None and hosts.is_up(service, c.svc.settings):
            raise BadRequest(f"Compute service of {inst.host} is still in use.")
        mig = _migration(inst, "evacuation", c, None, status="accepted")
        session.add(mig)
        instances.apply(inst, {"task_state": states.REBUILDING}, changes)
        instances.start_action(session, inst, "evacuate", c.ctx)
    await changes.send(c.svc)
    await _to_conductor(c, "evacuate", uuid=server_id, migration_uuid=mig.uuid, host=host,
                        admin_password=password, stop=c.at(95) and inst.vm_state == states.STOPPED)
    if c.at(14):
        return Response(status_code=200)
    return json_response({"adminPass": password})


# -- rebuild --------------------------------------------------------------------------------------
REBUILD: dict[str, Any] = {"type": "object", "properties": {
    "name": v.NAME, "imageRef": v.UUID, "adminPass": {"type": "string"},
    "metadata": v.METADATA, "preserve_ephemeral": v.BOOLEAN,
    "OS-DCF:diskConfig": DISK_CONFIG, "accessIPv4": {"type": "string", "format": "ipv4"},
    "accessIPv6": {"type": "string", "format": "ipv6"}, "personality": schemas.PERSONALITY},
    "required": ["imageRef"], "additionalProperties": False}


def _rebuild_schema(c: Caller) -> dict[str, Any]:
    schema = copy.deepcopy(REBUILD)
    props = schema["properties"]
    if c.at(19):
        props["description"] = v.DESCRIPTION
    if c.at(54):
        props["key_name"] = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 255},
                                       {"type": "null"}]}
    if c.at(57):
        props.pop("personality")
        props["user_data"] = {"type": ["string", "null"], "format": "base64",
                              "maxLength": 65535}
    if c.at(63):
        props["trusted_image_certificates"] = schemas.TRUSTED_CERTS
    if c.at(90):
        props["hostname"] = v.FQDN if c.at(94) else v.HOSTNAME
    return schema


@action("rebuild")
async def rebuild(c: Caller, server_id: str, params: Any) -> Response:
    v.validate({"type": "object", "properties": {"rebuild": _rebuild_schema(c)}},
               {"rebuild": params})
    creator = Creator(c.svc, c.ctx, c.at, lambda rule: c.allowed(rule))
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        flavor = dict(inst.flavor or {})
    image_ref, meta, _ = await creator.image({"imageRef": params["imageRef"]}, flavor)
    password = params.get("adminPass") or secrets.token_urlsafe(9)[:12]
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce("os_compute_api:servers:rebuild", target(inst))
        check_lock(c, inst)
        check_state(inst, "rebuild", [states.ACTIVE, states.STOPPED, states.ERROR])
        if not inst.host:
            raise Conflict(f"Instance {server_id} is not ready")
        updates: dict[str, Any] = {"task_state": states.REBUILDING, "image_ref": image_ref,
                                   "image_meta": meta, **boot_images(meta)}
        for key, attr in (("name", "display_name"), ("description", "display_description"),
                          ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                          ("user_data", "user_data"), ("hostname", "hostname"),
                          ("trusted_image_certificates", "trusted_certs")):
            if key in params:
                updates[attr] = canonical_ip(params[key]) if key.startswith("access") \
                    else params[key]
        if "metadata" in params:
            updates["metadata_"] = params["metadata"]
        if "OS-DCF:diskConfig" in params:
            updates["auto_disk_config"] = params["OS-DCF:diskConfig"] == "AUTO"
        if "key_name" in params:
            if params["key_name"] is None:
                updates.update(key_name=None, key_data=None)
            else:
                from nimbus.compute.models import KeyPair

                kp = (await session.scalars(select(KeyPair).where(
                    KeyPair.user_id == inst.user_id, KeyPair.name == params["key_name"]))
                      ).first()
                if kp is None:
                    raise BadRequest("Invalid key_name provided.")
                updates.update(key_name=kp.name, key_data=kp.public_key)
        instances.apply(inst, updates, changes)
        instances.start_action(session, inst, "rebuild", c.ctx)
        payload = instances.to_agent(inst)
        host = inst.host
    await changes.send(c.svc)
    await c.svc.cloud.bus.cast(rpc.agent(host), "rebuild_instance", instance=payload,
                               admin_password=password,
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    body = await views.refresh(c, server_id, keypair=c.at(54))
    body["adminPass"] = password
    if c.at(57):
        body["user_data"] = params.get("user_data", payload.get("user_data"))
    body.pop("OS-EXT-SRV-ATTR:user_data", None)
    return json_response({"server": body}, 202)


# -- images ---------------------------------------------------------------------------------------
IMAGE: dict[str, Any] = {"type": "object", "properties": {"name": v.NAME,
                                                          "metadata": v.METADATA},
                         "required": ["name"], "additionalProperties": False}
BACKUP: dict[str, Any] = {"type": "object", "properties": {
    "name": v.NAME, "backup_type": {"type": "string"}, "rotation": v.NON_NEGATIVE_INT,
    "metadata": v.METADATA}, "required": ["name", "backup_type", "rotation"],
    "additionalProperties": False}
SNAPSHOT_STATES = [states.ACTIVE, states.STOPPED, states.PAUSED_VM, states.SUSPENDED_VM]


async def _image_for(c: Caller, inst: Instance, name: str, extra: dict[str, str]) -> str:
    if not lifecycle.has_service(c.svc.cloud, "image"):
        raise Conflict("The image service is not available.")
    meta = inst.image_meta or {}
    body: dict[str, Any] = {
        "name": name, "container_format": meta.get("container_format") or "bare",
        "disk_format": meta.get("disk_format") or "raw",
        "min_ram": int(meta.get("min_ram") or 0), "min_disk": int(meta.get("min_disk") or 0),
        "instance_uuid": inst.uuid, "base_image_ref": inst.image_ref or "",
        "user_id": inst.user_id, "owner_project_name": "", **extra}
    body.pop("owner_project_name")
    for key, value in (meta.get("properties") or {}).items():
        body.setdefault(key, value)
    try:
        image = await c.svc.cloud.clients.get(ImageClient).create(body, ctx=c.ctx)
    except RemoteApiError as exc:
        raise BadRequest(f"Could not create the image: {exc.message}") from None
    image_id: str = image["id"]
    return image_id


async def _snapshot(c: Caller, server_id: str, rule: str, name: str,
                    extra: dict[str, str], backup: dict[str, Any] | None) -> str:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce(rule, target(inst))
        check_lock(c, inst)
        check_state(inst, "createImage" if backup is None else "createBackup", SNAPSHOT_STATES)
        if instances.is_volume_backed(inst):
            raise BadRequest("Snapshots of volume-backed servers are not available.")
    image_id = await _image_for(c, inst, name, extra)
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        if not await instances.set_state_if(
                session, inst.uuid, expect_vm=SNAPSHOT_STATES, expect_task=[None],
                values={"task_state": states.IMAGE_BACKUP if backup
                        else states.IMAGE_SNAPSHOT}):
            await c.svc.cloud.clients.get(ImageClient).delete(image_id)
            raise Conflict(f"Cannot 'createImage' instance {server_id} while it is in "
                           f"task_state {inst.task_state}")
        instances.start_action(session, inst, "createBackup" if backup else "createImage",
                               c.ctx)
        payload = instances.to_agent(inst)
        host = inst.host
    await changes.send(c.svc)
    await c.svc.cloud.bus.cast(rpc.agent(host or ""), "snapshot_instance", instance=payload,
                               image_id=image_id, backup=backup,
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    return image_id


def _image_response(c: Caller, image_id: str) -> Response:
    if c.at(45):
        return json_response({"image_id": image_id}, 202)
    return Response(status_code=202, headers={
        "Location": f"{c.svc.cloud.endpoint_url('image')}/v2/images/{image_id}"})


@action("createImage", IMAGE)
async def create_image(c: Caller, server_id: str, params: Any) -> Response:
    extra = {"image_type": "snapshot", **(params.get("metadata") or {})}
    image_id = await _snapshot(c, server_id, "os_compute_api:servers:create_image",
                               params["name"], extra, None)
    return _image_response(c, image_id)


@action("createBackup", BACKUP)
async def create_backup(c: Caller, server_id: str, params: Any) -> Response:
    extra = {"image_type": "backup", "backup_type": params["backup_type"],
             **(params.get("metadata") or {})}
    image_id = await _snapshot(c, server_id, "os_compute_api:os-create-backup",
                               params["name"], extra, {"type": params["backup_type"],
                                                       "rotation": int(params["rotation"])})
    return _image_response(c, image_id)


# -- shelve ---------------------------------------------------------------------------------------
@action("shelve")
async def shelve(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.session() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-shelve:shelve", target(inst))
        check_lock(c, inst)
        check_state(inst, "shelve", [states.ACTIVE, states.STOPPED, states.PAUSED_VM,
                                     states.SUSPENDED_VM])
    image_id = None
    if not instances.is_volume_backed(inst) and lifecycle.has_service(c.svc.cloud, "image"):
        image_id = await _image_for(c, inst, f"{inst.display_name}-shelved",
                                    {"image_type": "snapshot"})
    offload = c.svc.settings.shelved_offload_time == 0
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        meta = dict(inst.system_metadata or {})
        if image_id:
            meta["shelved_image_id"] = image_id
        instances.apply(inst, {"task_state": states.SHELVING, "system_metadata": meta})
        instances.start_action(session, inst, "shelve", c.ctx)
        payload = instances.to_agent(inst)
    await c.svc.cloud.bus.cast(rpc.agent(inst.host or ""), "shelve_instance", instance=payload,
                               image_id=image_id, offload=offload,
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    return Response(status_code=202)


@action("shelveOffload")
async def shelve_offload(c: Caller, server_id: str, params: Any) -> Response:
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx)
        c.enforce("os_compute_api:os-shelve:shelve_offload", target(inst))
        check_state(inst, "shelveOffload", [states.SHELVED])
        instances.apply(inst, {"task_state": states.SHELVING_OFFLOADING})
        instances.start_action(session, inst, "shelveOffload", c.ctx)
        payload = instances.to_agent(inst)
    await c.svc.cloud.bus.cast(rpc.agent(inst.host or ""), "shelve_offload_instance",
                               instance=payload,
                               request_id=c.ctx.global_request_id or c.ctx.request_id)
    return Response(status_code=202)


UNSHELVE_277 = {"type": ["object", "null"], "properties": {"availability_zone": v.NAME},
                "required": ["availability_zone"], "additionalProperties": False}
UNSHELVE_291 = {"type": ["object", "null"], "properties": {
    "availability_zone": {"type": ["string", "null"]}, "host": v.FQDN},
    "additionalProperties": False}


@action("unshelve")
async def unshelve(c: Caller, server_id: str, params: Any) -> Response:
    if c.at(77):
        schema = UNSHELVE_291 if c.at(91) else UNSHELVE_277
        v.validate({"type": "object", "properties": {"unshelve": schema}}, {"unshelve": params})
    params = params if c.at(77) and isinstance(params, dict) else {}
    if "host" in params:
        c.enforce("os_compute_api:os-shelve:unshelve_to_host", {})
    changes = instances.Changes()
    async with c.svc.db.transaction() as session:
        inst = await instances.get(session, server_id, c.ctx, for_update=True)
        c.enforce("os_compute_api:os-shelve:unshelve", target(inst))
        check_lock(c, inst)
        check_state(inst, "unshelve", [states.SHELVED, states.SHELVED_OFFLOADED])
        offloaded = inst.vm_state == states.SHELVED_OFFLOADED
        if not offloaded and (params.get("availability_zone") or params.get("host")):
            raise Conflict("The server is not offloaded: it cannot move.")
        if params.get("host") and not await _host_exists(session, params["host"]):
            raise BadRequest(f"Compute host {params['host']} could not be found.")
        instances.apply(inst, {"task_state": states.UNSHELVING}, changes)
        instances.start_action(session, inst, "unshelve", c.ctx)
        payload = instances.to_agent(inst)
    await changes.send(c.svc)
    request_id = c.ctx.global_request_id or c.ctx.request_id
    if offloaded:
        await _to_conductor(c, "unshelve", uuid=server_id, zone=params.get("availability_zone"),
                            host=params.get("host"))
    else:
        await c.svc.cloud.bus.cast(rpc.agent(inst.host or ""), "unshelve_instance",
                                   instance=payload, request_id=request_id)
    return Response(status_code=202)

"""POST /servers without the HTTP: check everything the request names (flavor, image,
networks, ports, security groups, keypair, zone, host, server group, quotas), record the
instances as BUILD/scheduling in one transaction, and hand them to the conductor."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from nimbus.clients.base import RemoteApiError
from nimbus.clients.image import ImageClient
from nimbus.clients.network import NetworkClient
from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import utcnow
from nimbus.compute import flavors, hosts, instances, lifecycle, quotas, rpc, states
from nimbus.compute.errors import QuotaExceeded
from nimbus.compute.models import (
    ComputeNode,
    FlavorProject,
    Instance,
    InstanceAction,
    InstanceTag,
    KeyPair,
    ServerGroup,
    ServerGroupMember,
)
from nimbus.web.errors import BadRequest, Conflict, Forbidden

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from nimbus.compute.service import ComputeService

CORE_IMAGE_FIELDS = {
    "id", "name", "status", "visibility", "owner", "size", "virtual_size", "checksum",
    "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "protected", "os_hidden",
    "disk_format", "container_format", "created_at", "updated_at", "tags", "file", "self",
    "schema", "direct_url", "locations", "stores",
}


@dataclass
class Created:
    uuids: list[str]
    reservation_id: str
    admin_password: str
    security_groups: list[dict[str, str]] = field(default_factory=list)
    auto_disk_config: bool = False


def sanitize_hostname(name: str, default: str) -> str:
    text = name.lower()
    text = re.sub(r"[ _]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text, flags=re.ASCII)
    text = text.strip(".-")[:63].strip(".-")
    return text or default


def canonical_ip(value: str | None) -> str | None:
    """Access addresses as Nova stores them (IPv6 compressed)."""
    if not value:
        return value
    import ipaddress

    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return value


def boot_images(meta: dict[str, Any]) -> dict[str, str]:
    """The instance's kernel_id and ramdisk_id: those its image names (a directly booted
    image), shown as OS-EXT-SRV-ATTR:kernel_id/ramdisk_id and in the EC2 metadata."""
    props = meta.get("properties") or {}
    return {"kernel_id": str(props.get("kernel_id") or ""),
            "ramdisk_id": str(props.get("ramdisk_id") or "")}


def image_meta(image: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in image.items() if k not in CORE_IMAGE_FIELDS}
    return {"id": image.get("id"), "name": image.get("name"),
            "min_disk": image.get("min_disk") or 0, "min_ram": image.get("min_ram") or 0,
            "size": image.get("size"), "disk_format": image.get("disk_format"),
            "container_format": image.get("container_format"), "properties": props}


class Creator:
    def __init__(self, svc: ComputeService, ctx: RequestContext, at: Callable[[int], bool],
                 allowed: Callable[[str], bool]) -> None:
        self.svc = svc
        self.ctx = ctx
        self.at = at
        self.allowed = allowed

    # -- the pieces -------------------------------------------------------------------------------
    async def image(self, server: dict[str, Any],
                    flavor: dict[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        """(image_ref, image_meta, block device mapping)"""
        image_ref = server.get("imageRef") or ""
        bdms: list[dict[str, Any]] = list(server.get("block_device_mapping_v2") or [])
        if server.get("block_device_mapping"):
            raise BadRequest("Block Device Mapping is Invalid: volumes are not available.")
        boot = [b for b in bdms if str(b.get("boot_index")) == "0"]
        if len(boot) > 1:
            raise BadRequest("Block Device Mapping is Invalid: Boot sequence for the instance "
                             "and image/block device mapping combination is not valid.")
        for b in bdms:
            if b.get("destination_type") == "volume" or b.get("source_type") in (
                    "volume", "snapshot"):
                raise BadRequest("Block Device Mapping is Invalid: the block storage service "
                                 "is not available.")
            if b.get("source_type") == "image" and not b.get("uuid"):
                raise BadRequest("Block Device Mapping is Invalid: You specified more local "
                                 "devices than the limit allows")
        if boot and boot[0].get("source_type") == "image":
            image_ref = image_ref or boot[0].get("uuid", "")
        if not image_ref:
            raise BadRequest("Block Device Mapping is Invalid: Boot sequence for the instance "
                             "and image/block device mapping combination is not valid.")
        image = await self._fetch_image(image_ref)
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_ref} is not active.")
        if int(image.get("min_ram") or 0) > int(flavor["memory_mb"]):
            raise BadRequest("Flavor's memory is too small for requested image.")
        root_gb = int(flavor["root_gb"])
        if root_gb:
            if int(image.get("min_disk") or 0) > root_gb:
                raise BadRequest("Flavor's disk is too small for requested image.")
            size = int(image.get("size") or 0)
            if size > root_gb * 1024 ** 3:
                raise BadRequest(f"Flavor's disk is too small for requested image. Flavor disk "
                                 f"is {root_gb * 1024 ** 3} bytes, image is {size} bytes.")
        elif not self.allowed("os_compute_api:servers:create:zero_disk_flavor"):
            raise Forbidden("Only volume-backed servers are allowed for flavors with zero "
                            "disk.")
        return image_ref, image_meta(image), bdms

    async def _fetch_image(self, image_ref: str) -> dict[str, Any]:
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        if not lifecycle.has_service(self.svc.cloud, "image"):
            raise BadRequest(f"Image {image_id} could not be found.")
        try:
            image = await self.svc.cloud.clients.get(ImageClient).get(image_id, ctx=self.ctx)
        except RemoteApiError as exc:
            raise BadRequest(f"Image {image_id} could not be found.") from exc
        if image is None:
            raise BadRequest("Can not find requested image")
        return image

    async def networks(self, requested: Any) -> Any:
        """Resolve what was asked into [{"uuid"|"port", "fixed_ip", "tag"}] or "none"."""
        have_network = lifecycle.has_service(self.svc.cloud, "network")
        if requested == "none" or (not have_network and requested in (None, "auto")):
            return "none"
        if not have_network:
            raise BadRequest("Networking is not available in this cloud.")
        client = self.svc.cloud.clients.get(NetworkClient)
        project = self.ctx.project_id
        if requested in (None, "auto"):
            # With the user's token, as Nova does: the network service sees who asks (and
            # makes the admin project's bootstrap network on its first request).
            own = await client.networks({"project_id": project, "shared": "false"},
                                        ctx=self.ctx)
            shared = await client.networks({"shared": "true"}, ctx=self.ctx)
            nets = [n for n in own + shared if not n.get("router:external") or n.get("shared")]
            seen: dict[str, dict[str, Any]] = {n["id"]: n for n in nets}
            if len(seen) > 1:
                raise Conflict("Multiple possible networks found, use a Network ID to be more "
                               "specific.")
            if not seen:
                if requested != "auto":
                    return "none"
                auto = await self._auto_allocate(client, project or "")
                seen[auto["id"]] = auto
            net = next(iter(seen.values()))
            self._need_subnets(net)
            return [{"uuid": net["id"]}]
        resolved = []
        for item in requested:
            if item.get("port"):
                port = await client.port(item["port"])
                if port is None or (not self.ctx.is_admin and port.get("project_id") != project):
                    raise BadRequest(f"Port {item['port']} could not be found.")
                if port.get("device_id"):
                    raise Conflict(f"Port {item['port']} is still in use.")
                resolved.append({"port": port["id"], "network_id": port["network_id"],
                                 "tag": item.get("tag")})
                continue
            net_id = item.get("uuid")
            if not net_id:
                raise BadRequest("Bad network format: network uuid is not in proper format "
                                 f"({net_id})")
            found = await client.network(net_id)
            net = found or {}
            visible = found is not None and (self.ctx.is_admin or net.get("shared")
                                           or net.get("project_id") == project
                                           or net.get("router:external"))
            if not visible:
                raise BadRequest(f"Network {net_id} could not be found.")
            if net.get("router:external") and not net.get("shared") and not self.ctx.is_admin:
                raise Forbidden(f"It is not allowed to create an interface on external "
                                f"network {net_id}")
            self._need_subnets(net)
            resolved.append({"uuid": net_id, "fixed_ip": item.get("fixed_ip"),
                             "tag": item.get("tag")})
        return resolved

    async def _auto_allocate(self, client: NetworkClient, project: str) -> dict[str, Any]:
        """As Nova: no network of its own and none shared, so the project gets its
        auto-allocated topology (made by the network service on first use)."""
        try:
            topology = await client.auto_allocated_topology(project, ctx=self.ctx)
            net = await client.network(topology["id"], ctx=self.ctx)
        except RemoteApiError as exc:
            if exc.status >= 500:
                raise
            raise BadRequest(f"Unable to automatically allocate a network for project "
                             f"{project}") from exc
        if net is None:
            raise BadRequest(f"Unable to automatically allocate a network for project "
                             f"{project}")
        return net

    @staticmethod
    def _need_subnets(net: dict[str, Any]) -> None:
        if not net.get("subnets"):
            raise BadRequest(f"Network {net['id']} requires a subnet in order to boot "
                             "instances on.")

    async def security_groups(self, names: list[str], networks: Any) -> list[str] | None:
        """Ids of the named groups (None: the project's default, left to the network)."""
        if networks == "none" or not names or names == ["default"]:
            return None
        client = self.svc.cloud.clients.get(NetworkClient)
        groups = await client.security_groups({"project_id": self.ctx.project_id})
        ids = []
        for name in names:
            match = [g for g in groups if g["id"] == name or g["name"] == name]
            if not match:
                raise BadRequest(f"Security group {name} not found for project "
                                 f"{self.ctx.project_id}.")
            if len(match) > 1:
                raise Conflict(f"Multiple security groups found matching '{name}'. Use an "
                               "ID to be more specific.")
            ids.append(match[0]["id"])
        return ids

    async def zone_and_host(self, session: AsyncSession, server: dict[str, Any]) -> tuple[
            str | None, dict[str, Any] | None]:
        zone: str | None = server.get("availability_zone")
        dest: dict[str, Any] = {}
        if zone and ":" in zone:
            parts = zone.split(":")
            zone = parts[0] or None
            host = parts[1] if len(parts) > 1 and parts[1] else None
            node = parts[2] if len(parts) > 2 and parts[2] else None
            if (host or node) and not self.allowed("os_compute_api:servers:create:forced_host"):
                raise Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host "
                                "to be performed.")
            if host:
                dest["force_host"] = host
            if node:
                dest["force_node"] = node
        if server.get("host") or server.get("hypervisor_hostname"):
            if not self.allowed("os_compute_api:servers:create:requested_destination"):
                raise Forbidden("Policy doesn't allow "
                                "os_compute_api:servers:create:requested_destination to be "
                                "performed.")
            query = select(ComputeNode.host, ComputeNode.hypervisor_hostname)
            if server.get("host"):
                query = query.where(ComputeNode.host == server["host"])
            if server.get("hypervisor_hostname"):
                query = query.where(ComputeNode.hypervisor_hostname
                                    == server["hypervisor_hostname"])
            if (await session.execute(query)).first() is None:
                what = server.get("host") or server.get("hypervisor_hostname")
                raise BadRequest(f"Compute host {what} could not be found.")
            dest["host"] = server.get("host")
            dest["node"] = server.get("hypervisor_hostname")
        if zone:
            default = self.svc.settings.default_availability_zone
            zones = set((await hosts.host_zones(session, default)).values()) | {default}
            if zone not in {z for zs in zones for z in zs.split(",")}:
                raise BadRequest("The requested availability zone is not available")
        return zone, dest or None

    async def group(self, session: AsyncSession, hints: dict[str, Any],
                    count: int) -> ServerGroup | None:
        ref = hints.get("group")
        if isinstance(ref, list):
            ref = ref[0] if ref else None
        if not ref:
            return None
        group = (await session.scalars(select(ServerGroup).where(
            ServerGroup.uuid == ref))).first()
        if group is None:
            raise BadRequest(f"Instance group {ref} could not be found.")
        await quotas.check_server_group_members(session, group, self.ctx.user_id or "", count)
        return group

    async def flavor(self, session: AsyncSession, ref: str) -> dict[str, Any]:
        cache = self.svc.flavor_cache
        key = ref.rstrip("/").rsplit("/", 1)[-1]
        found = cache.get(key)
        if found is None:
            row = await flavors.find(session, key)
            if row is None or row.disabled:
                raise BadRequest(f"Flavor {ref} could not be found.")
            specs = (await flavors.extra_specs(session, [row.id]))[row.id]
            found = flavors.snapshot(row, specs)
            cache.put(key, found)
        if not found["is_public"] and not self.ctx.is_admin:
            shared = await session.get(FlavorProject, (found["id"], self.ctx.project_id))
            if shared is None:
                raise BadRequest(f"Flavor {ref} could not be found.")
        return found

    # -- the whole request ------------------------------------------------------------------------
    async def create(self, body: dict[str, Any]) -> Created:
        server: dict[str, Any] = body["server"]
        hints: dict[str, Any] = dict(body.get("os:scheduler_hints")
                                     or body.get("OS-SCH-HNT:scheduler_hints") or {})
        ctx = self.ctx
        min_count = int(server.get("min_count", 1))
        max_count = int(server.get("max_count", min_count))
        if min_count > max_count:
            raise BadRequest("min_count must be <= max_count")
        async with self.svc.db.session() as session:
            flavor = await self.flavor(session, str(server["flavorRef"]))
            key_data = None
            key_name = server.get("key_name")
            if key_name:
                kp = (await session.scalars(select(KeyPair).where(
                    KeyPair.user_id == ctx.user_id, KeyPair.name == key_name))).first()
                if kp is None:
                    raise BadRequest("Invalid key_name provided.")
                key_data = kp.public_key
            zone, dest = await self.zone_and_host(session, server)
        (image_ref, meta, bdms), networks = await asyncio.gather(
            self.image(server, flavor), self.networks(server.get("networks")))
        metadata: dict[str, str] = server.get("metadata") or {}
        personality = server.get("personality") or []
        sg_names = [g["name"] for g in server.get("security_groups") or []] or ["default"]
        sg_ids = await self.security_groups(sg_names, networks)
        if max_count > 1 and isinstance(networks, list) and any(n.get("port") for n in networks):
            raise BadRequest("Unable to launch multiple instances with a single configured "
                             "port ID. Please launch your instance one by one with different "
                             "ports.")
        if server.get("user_data"):
            try:
                base64.b64decode(server["user_data"], validate=True)
            except ValueError:
                raise BadRequest("Userdata content cannot be decoded.") from None
        password = server.get("adminPass") or secrets.token_urlsafe(9)[:12]
        reservation = "r-" + secrets.token_hex(4)
        request_id = ctx.global_request_id or ctx.request_id
        tags: list[str] = list(dict.fromkeys(server.get("tags") or []))
        now = utcnow()
        async with self.svc.db.transaction() as session:
            limits = await quotas.limits(session, ctx.project_id or "", ctx.user_id)
            if limits["metadata_items"] >= 0 and len(metadata) > limits["metadata_items"]:
                raise QuotaExceeded(f"Quota exceeded for metadata_items: Requested "
                                    f"{len(metadata)}, but already used 0 of "
                                    f"{limits['metadata_items']} metadata_items")
            if not self.at(57) and limits["injected_files"] >= 0 and \
                    len(personality) > limits["injected_files"]:
                raise QuotaExceeded("Personality file limit exceeded")
            count = await quotas.enforce_instances(
                session, ctx.project_id or "", ctx.user_id or "", min_count, max_count,
                flavor["vcpus"], flavor["memory_mb"], limits)
            group = await self.group(session, hints, count)
            common: dict[str, Any] = dict(
                project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                display_description=server.get("description"), vm_state=states.BUILDING,
                task_state=states.SCHEDULING, power_state=states.NOSTATE, flavor=flavor,
                flavorid=flavor["flavorid"], memory_mb=flavor["memory_mb"],
                vcpus=flavor["vcpus"], root_gb=flavor["root_gb"],
                ephemeral_gb=flavor["ephemeral_gb"], image_ref=image_ref, image_meta=meta,
                **boot_images(meta),
                key_name=key_name, key_data=key_data, user_data=server.get("user_data"),
                config_drive="True" if server.get("config_drive") not in (
                    None, False, "False", "false", "0", "") else "",
                access_ip_v4=canonical_ip(server.get("accessIPv4")),
                access_ip_v6=canonical_ip(server.get("accessIPv6")),
                reservation_id=reservation,
                auto_disk_config=server.get("OS-DCF:diskConfig") == "AUTO",
                security_groups=sg_names, requested_networks=networks,
                block_device_mapping=bdms, scheduler_hints=hints,
                requested_destination=dest, pinned_availability_zone=zone,
                availability_zone=zone, retry_hosts=[],
                trusted_certs=server.get("trusted_image_certificates"),
                created_at=now, updated_at=now)
            uuids = []
            rows: list[dict[str, Any]] = []
            for index in range(count):
                uuid = new_uuid()
                name = server["name"] if count == 1 else f"{server['name']}-{index + 1}"
                hostname = server.get("hostname") or sanitize_hostname(
                    server["name"], f"Server-{uuid}")
                if count > 1:
                    hostname = f"{hostname}-{index + 1}"
                rows.append(dict(
                    common, uuid=uuid, display_name=name, hostname=hostname,
                    launch_index=index, metadata_=dict(metadata),
                    system_metadata={"security_group_ids": sg_ids} if sg_ids else {}))
                uuids.append(uuid)
            # Bulk INSERTs (one executemany each), not one ORM object per instance.
            await session.execute(insert(Instance), rows)
            await session.execute(insert(InstanceAction), [
                instances.action_row(uuid, "create", ctx, now) for uuid in uuids])
            if tags:
                await session.execute(insert(InstanceTag), [
                    {"instance_uuid": uuid, "tag": tag} for uuid in uuids for tag in tags])
            if group is not None:
                await session.execute(insert(ServerGroupMember), [
                    {"group_id": group.id, "instance_uuid": uuid} for uuid in uuids])
        await self.svc.cloud.bus.cast(rpc.CONDUCTOR, "build_instances", instance_uuids=uuids,
                                      request_id=request_id,
                                      passwords={u: password for u in uuids})
        for uuid in uuids:
            await self.svc.notify("compute.instance.update", {
                "instance_id": uuid, "state": states.BUILDING,
                "task_state": states.SCHEDULING, "project_id": ctx.project_id,
                "user_id": ctx.user_id, "old_state": None, "old_task_state": None})
        return Created(uuids, reservation, password,
                       [{"name": n} for n in sg_names],
                       server.get("OS-DCF:diskConfig") == "AUTO")


async def count_running(session: AsyncSession, project_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(Instance).where(
        Instance.project_id == project_id, Instance.deleted.is_(False))) or 0)

"""What a metadata request knows about its instance: compute's own record (read once per
request) and, only for the documents that need them, facts the network service holds (the
subnets and networks of its ports, its floating IPs), asked with the service token."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nimbus.clients.network import NetworkClient
from nimbus.compute import lifecycle
from nimbus.compute.models import Instance, KeyPair

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)

# Nova's [api] dhcp_domain default: metadata hostnames are "<hostname>.novalocal".
DHCP_DOMAIN = "novalocal"
DEFAULT_ROOT_DEVICE = "/dev/vda"


@dataclass
class InstanceData:
    uuid: str
    int_id: int
    name: str
    hostname: str
    project_id: str
    user_id: str
    launch_index: int
    availability_zone: str
    reservation_id: str
    image_ref: str
    kernel_id: str
    ramdisk_id: str
    flavor: dict[str, Any]
    metadata: dict[str, str]
    keys: list[dict[str, str]]  # [{"name", "type", "data"}]
    user_data: bytes | None
    password: str
    security_groups: list[str]
    network_info: list[dict[str, Any]]
    block_device_mapping: list[dict[str, Any]]
    root_device_name: str
    remote_address: str = ""
    facts: NetworkFacts | None = field(default=None, repr=False)

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{DHCP_DOMAIN}" if DHCP_DOMAIN else self.hostname

    @property
    def ec2_id(self) -> str:
        return f"i-{self.int_id:08x}"

    def fixed_ips(self, version: int | None = None) -> list[str]:
        return [ip["ip_address"] for vif in self.network_info
                for ip in vif.get("fixed_ips") or []
                if version is None or int(ip.get("version") or 4) == version]


def decode_user_data(value: str | None) -> bytes | None:
    """The API stores user data as given (base64 text); guests get the decoded bytes."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode("utf-8")


async def load(svc: ComputeService, uuid: str, remote_address: str = "") -> InstanceData | None:
    """The instance's data, or None when there is no such (live) instance."""
    async with svc.db.session() as session:
        inst = (await session.scalars(select(Instance).where(
            Instance.uuid == uuid, Instance.deleted.is_(False)))).first()
        if inst is None:
            return None
        keys: list[dict[str, str]] = []
        if inst.key_name:
            kp = (await session.scalars(select(KeyPair).where(
                KeyPair.user_id == inst.user_id, KeyPair.name == inst.key_name))).first()
            public = inst.key_data or (kp.public_key if kp is not None else "")
            keys.append({"name": inst.key_name, "type": kp.type if kp is not None else "ssh",
                         "data": public})
    data = InstanceData(
        uuid=inst.uuid, int_id=inst.id, name=inst.display_name, hostname=inst.hostname,
        project_id=inst.project_id, user_id=inst.user_id, launch_index=inst.launch_index,
        availability_zone=inst.availability_zone or svc.settings.default_availability_zone,
        reservation_id=inst.reservation_id, image_ref=inst.image_ref or "",
        kernel_id=inst.kernel_id or "", ramdisk_id=inst.ramdisk_id or "",
        flavor=dict(inst.flavor or {}), metadata=dict(inst.metadata_ or {}), keys=keys,
        user_data=decode_user_data(inst.user_data),
        password=str((inst.system_metadata or {}).get("password") or ""),
        security_groups=list(inst.security_groups or []),
        network_info=list(inst.network_info or []),
        block_device_mapping=list(inst.block_device_mapping or []),
        root_device_name=inst.root_device_name or DEFAULT_ROOT_DEVICE,
        remote_address=remote_address)
    data.facts = NetworkFacts(svc, data.network_info)
    return data


class NetworkFacts:
    """The network service's view of an instance's ports, fetched on first use."""

    def __init__(self, svc: ComputeService, network_info: list[dict[str, Any]]) -> None:
        self.svc = svc
        self.network_info = network_info
        self._subnets: dict[str, dict[str, Any]] | None = None
        self._networks: dict[str, dict[str, Any]] | None = None

    @property
    def available(self) -> bool:
        return bool(self.network_info) and lifecycle.has_service(self.svc.cloud, "network")

    @property
    def client(self) -> NetworkClient:
        return self.svc.cloud.clients.get(NetworkClient)

    async def subnets(self) -> dict[str, dict[str, Any]]:
        """subnet id -> subnet, for the subnets of the instance's fixed IPs."""
        if self._subnets is None:
            ids = sorted({ip["subnet_id"] for vif in self.network_info
                          for ip in vif.get("fixed_ips") or [] if ip.get("subnet_id")})
            found: list[dict[str, Any]] = []
            if ids and self.available:
                try:
                    found = await self.client.subnets({"id": ids})
                except Exception:
                    LOG.warning("could not read the subnets %s", ids, exc_info=True)
            self._subnets = {s["id"]: s for s in found}
        return self._subnets

    async def networks(self) -> dict[str, dict[str, Any]]:
        """network id -> network, for the instance's ports."""
        if self._networks is None:
            ids = sorted({vif["network_id"] for vif in self.network_info
                          if vif.get("network_id")})
            found: list[dict[str, Any]] = []
            if ids and self.available:
                try:
                    found = await self.client.networks({"id": ids})
                except Exception:
                    LOG.warning("could not read the networks %s", ids, exc_info=True)
            self._networks = {n["id"]: n for n in found}
        return self._networks

    async def floating_ips(self) -> list[str]:
        """The floating IPs on the instance's ports (those network_info records if the
        network service cannot say)."""
        recorded = [str(fip) for vif in self.network_info for fip in vif.get("floating_ips")
                    or []]
        ports = [vif["port_id"] for vif in self.network_info if vif.get("port_id")]
        if not ports or not self.available:
            return recorded
        try:
            fips = await self.client.floating_ips({"port_id": ports})
        except Exception:
            LOG.warning("could not read the floating IPs of ports %s", ports, exc_info=True)
            return recorded
        order = {port: i for i, port in enumerate(ports)}
        fips.sort(key=lambda f: order.get(f.get("port_id") or "", len(order)))
        return [f["floating_ip_address"] for f in fips if f.get("floating_ip_address")]

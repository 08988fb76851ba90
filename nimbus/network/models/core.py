"""Networks, subnets, ports and the IP allocations that tie them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from nimbus.network.models.base import ID, NAME, Base, Standard


class Network(Standard, Base):
    __tablename__ = "networks"
    # physical_network is "" rather than NULL so the constraint holds for VXLAN too.
    __table_args__ = (UniqueConstraint("network_type", "physical_network", "segmentation_id",
                                       name="uq_networks_segment"),)

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    network_type: Mapped[str] = mapped_column(String(16), default="vxlan")
    physical_network: Mapped[str] = mapped_column(String(64), default="")
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class Subnet(Standard, Base):
    __tablename__ = "subnets"

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    segment_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    allocation_pools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    service_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_publish_fixed_ip: Mapped[bool] = mapped_column(Boolean, default=False)


class Port(Standard, Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address", name="uq_ports_mac"),)

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    allowed_address_pairs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    propagate_uplink_status: Mapped[bool] = mapped_column(Boolean, default=False)

    # Set by ports.create on the objects it makes: not a column.
    __allow_unmapped__ = True
    fresh: dict[str, Any]


class IPAllocation(Base):
    """One address handed to one port. The primary key is what keeps an address unique in
    its subnet on every backend, whatever the concurrency."""

    __tablename__ = "ipallocations"
    __table_args__ = (Index("ix_ipallocations_port", "port_id"),)

    subnet_id: Mapped[str] = mapped_column(
        ID, ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    network_id: Mapped[str] = mapped_column(ID, index=True)
    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"))


class PortSecurityGroup(Base):
    __tablename__ = "port_security_groups"

    port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)

"""Routers, floating IPs and port forwardings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nimbus.network.models.base import ID, NAME, Base, Standard


class Router(Standard, Base):
    __tablename__ = "routers"

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_network_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    gw_port_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    external_gateways: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class RouterPort(Base):
    """A router's interface (or gateway) port."""

    __tablename__ = "routerports"

    router_id: Mapped[str] = mapped_column(
        ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    port_type: Mapped[str] = mapped_column(String(255))


class FloatingIP(Standard, Base):
    __tablename__ = "floatingips"
    __table_args__ = (UniqueConstraint("fixed_port_id", "fixed_ip_address",
                                       name="uq_floatingips_fixed"),)

    floating_network_id: Mapped[str] = mapped_column(ID, index=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    fixed_port_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class PortForwarding(Base):
    __tablename__ = "portforwardings"
    __table_args__ = (
        UniqueConstraint("floatingip_id", "external_port", "protocol", name="uq_pf_external"),
        UniqueConstraint("internal_port_id", "internal_ip_address", "internal_port",
                         "protocol", name="uq_pf_internal"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    floatingip_id: Mapped[str] = mapped_column(
        ID, ForeignKey("floatingips.id", ondelete="CASCADE"), index=True)
    internal_port_id: Mapped[str] = mapped_column(ID, index=True)
    internal_ip_address: Mapped[str] = mapped_column(String(64))
    internal_port: Mapped[int] = mapped_column(Integer)
    external_port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(NAME, default="")

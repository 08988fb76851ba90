"""Security groups, their rules, the per-project default group, and address groups."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nimbus.network.models.base import ID, NAME, PROJECT, Base, Standard


class SecurityGroup(Standard, Base):
    __tablename__ = "securitygroups"

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)


class DefaultSecurityGroup(Base):
    """One row per project: its primary key makes "create the default group on first use"
    safe when two requests of a new project race."""

    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("securitygroups.id", ondelete="CASCADE"))


class SecurityGroupRule(Standard, Base):
    __tablename__ = "securitygrouprules"

    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("securitygroups.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(ID, nullable=True)


class AddressGroup(Standard, Base):
    __tablename__ = "address_groups"

    name: Mapped[str] = mapped_column(NAME, default="")
    addresses: Mapped[list[str]] = mapped_column(JSON, default=list)



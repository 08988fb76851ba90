"""Subnet pools, address scopes, RBAC policies, quotas, agents, tags and bootstrap marks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nimbus.common.timeutils import utcnow
from nimbus.db.base import UTCDateTime
from nimbus.network.models.base import ID, NAME, PROJECT, Base, Standard


class SubnetPool(Standard, Base):
    __tablename__ = "subnetpools"

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)


class AddressScope(Standard, Base):
    __tablename__ = "address_scopes"

    name: Mapped[str] = mapped_column(NAME, default="", index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class RBACPolicy(Standard, Base):
    __tablename__ = "rbac_policies"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "action", "target_tenant",
                                       name="uq_rbac_entry"),)

    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(ID, index=True)
    action: Mapped[str] = mapped_column(String(32))
    target_tenant: Mapped[str] = mapped_column(PROJECT, index=True)


class Quota(Base):
    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host", name="uq_agents_type_host"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(NAME, default="")
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resources_synced: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NetworkAgentBinding(Base):
    """Which DHCP agents serve which network; which L3 agent hosts which router."""

    __tablename__ = "agent_bindings"

    agent_id: Mapped[str] = mapped_column(
        ID, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_tag", "tag"),)

    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Mark(Base):
    """Small key/value facts, such as which project the bootstrap has been done for."""

    __tablename__ = "network_marks"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class MeteringLabel(Base):
    __tablename__ = "meteringlabels"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True, default="")
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(NAME, default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class MeteringLabelRule(Base):
    __tablename__ = "meteringlabelrules"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    metering_label_id: Mapped[str] = mapped_column(
        ID, ForeignKey("meteringlabels.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    destination_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)

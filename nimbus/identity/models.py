"""Identity's tables. Domains are projects with is_domain=True, as in Keystone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nimbus.common.timeutils import utcnow
from nimbus.db.base import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata("identity")



# Keystone's sentinels: a domain's own domain_id, and a global role's domain_id. Real values
# (not NULL) so that unique constraints on (domain_id, name) hold for them too.
ROOT_DOMAIN = "<<keystone.domain.root>>"
GLOBAL_ROLE = "<<null>>"

ID = String(64)
NAME = String(255)


class Project(Base):
    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    parent_id: Mapped[str | None] = mapped_column(ID, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_domain: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectTag(Base):
    __tablename__ = "project_tag"
    project_id: Mapped[str] = mapped_column(
        ID, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)


class User(Base):
    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(ID)
    description: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Group(Base):
    __tablename__ = "group"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class GroupMembership(Base):
    __tablename__ = "user_group_membership"
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("group.id", ondelete="CASCADE"), primary_key=True, index=True)


class Role(Base):
    __tablename__ = "role"
    __table_args__ = (UniqueConstraint("name", "domain_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, default=GLOBAL_ROLE)
    description: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ImpliedRole(Base):
    __tablename__ = "implied_role"
    prior_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    implied_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)


# Assignment types, as Keystone names them.
USER_PROJECT = "UserProject"
GROUP_PROJECT = "GroupProject"
USER_DOMAIN = "UserDomain"
GROUP_DOMAIN = "GroupDomain"
USER_SYSTEM = "UserSystem"
GROUP_SYSTEM = "GroupSystem"
SYSTEM_TARGET = "system"


class Assignment(Base):
    """A role granted to a user or group on a project, a domain or the system."""

    __tablename__ = "assignment"
    __table_args__ = (Index("ix_assignment_actor", "actor_id"),
                      Index("ix_assignment_target", "target_id"))

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_id: Mapped[str] = mapped_column(ID, primary_key=True)
    role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class Region(Base):
    __tablename__ = "region"
    id: Mapped[str] = mapped_column(NAME, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(NAME)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CatalogService(Base):
    __tablename__ = "service"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(NAME)
    name: Mapped[str | None] = mapped_column(NAME)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Endpoint(Base):
    __tablename__ = "endpoint"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service_id: Mapped[str] = mapped_column(
        ID, ForeignKey("service.id", ondelete="CASCADE"), index=True)
    interface: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    region_id: Mapped[str | None] = mapped_column(NAME)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EndpointGroup(Base):
    __tablename__ = "endpoint_group"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    description: Mapped[str | None] = mapped_column(Text)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProjectEndpoint(Base):
    __tablename__ = "project_endpoint"
    endpoint_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ProjectEndpointGroup(Base):
    __tablename__ = "project_endpoint_group"
    endpoint_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("endpoint_group.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ApplicationCredential(Base):
    __tablename__ = "application_credential"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    system: Mapped[str | None] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessRule(Base):
    __tablename__ = "access_rule"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    service: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(16))


class AppCredAccessRule(Base):
    __tablename__ = "application_credential_access_rule"
    application_credential_id: Mapped[str] = mapped_column(
        ID, ForeignKey("application_credential.id", ondelete="CASCADE"), primary_key=True)
    access_rule_id: Mapped[str] = mapped_column(
        ID, ForeignKey("access_rule.id", ondelete="CASCADE"), primary_key=True)


class Credential(Base):
    """Opaque credentials (EC2 key pairs, TOTP secrets, certificates) owned by a user."""

    __tablename__ = "credential"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Trust(Base):
    __tablename__ = "trust"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(ID, index=True)
    trustee_user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    impersonation: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remaining_uses: Mapped[int | None] = mapped_column(Integer)
    allow_redelegation: Mapped[bool] = mapped_column(Boolean, default=False)
    redelegated_trust_id: Mapped[str | None] = mapped_column(ID)
    redelegation_count: Mapped[int | None] = mapped_column(Integer)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Policy(Base):
    __tablename__ = "policy"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Consumer(Base):
    """OAuth 1.0a consumers (OS-OAUTH1)."""

    __tablename__ = "consumer"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DomainConfig(Base):
    __tablename__ = "domain_config"
    domain_id: Mapped[str] = mapped_column(ID, primary_key=True)
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    option: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class RegisteredLimit(Base):
    __tablename__ = "registered_limit"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service_id: Mapped[str] = mapped_column(ID)
    region_id: Mapped[str | None] = mapped_column(NAME)
    resource_name: Mapped[str] = mapped_column(String(255))
    default_limit: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)


class Limit(Base):
    __tablename__ = "limit"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str | None] = mapped_column(ID)
    domain_id: Mapped[str | None] = mapped_column(ID)
    service_id: Mapped[str] = mapped_column(ID)
    region_id: Mapped[str | None] = mapped_column(NAME)
    resource_name: Mapped[str] = mapped_column(String(255))
    resource_limit: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)


class RevocationEventRow(Base):
    __tablename__ = "revocation_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    audit_chain_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(ID)
    project_id: Mapped[str | None] = mapped_column(ID)
    domain_id: Mapped[str | None] = mapped_column(ID)
    role_id: Mapped[str | None] = mapped_column(ID)
    app_cred_id: Mapped[str | None] = mapped_column(ID)
    # Epoch seconds: double precision (MariaDB's FLOAT is single and would blur them).
    issued_before: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float] = mapped_column(Double, index=True)

"""Placement's tables: providers (nested trees), resource classes, traits, aggregates,
inventories, consumers and their allocations.

Every change to a provider's inventory, traits, aggregates or allocations bumps its
`generation` with a compare-and-swap UPDATE: that is how concurrent writers (several
connections on PostgreSQL or MariaDB) detect each other, and how the in-memory capacity index
orders what it learns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nimbus.common.timeutils import utcnow
from nimbus.db.base import UTCDateTime, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata("placement")


class Stamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                 onupdate=utcnow)


class ResourceProvider(Stamped, Base):
    __tablename__ = "resource_providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    parent_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_providers.id"), index=True)
    root_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_providers.id"), index=True)


class ResourceClass(Stamped, Base):
    __tablename__ = "resource_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Trait(Stamped, Base):
    __tablename__ = "traits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class ProviderTrait(Base):
    __tablename__ = "resource_provider_traits"

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True)
    trait_id: Mapped[int] = mapped_column(ForeignKey("traits.id"), primary_key=True,
                                          index=True)


class Aggregate(Base):
    __tablename__ = "placement_aggregates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)


class ProviderAggregate(Base):
    __tablename__ = "resource_provider_aggregates"

    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True)
    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("placement_aggregates.id"), primary_key=True, index=True)


class Inventory(Stamped, Base):
    __tablename__ = "inventories"
    __table_args__ = (UniqueConstraint("resource_provider_id", "resource_class_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"))
    resource_class_id: Mapped[int] = mapped_column(ForeignKey("resource_classes.id"),
                                                   index=True)
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    # Double: MariaDB's FLOAT is single precision (1.1 would read back as 1.10000002).
    allocation_ratio: Mapped[float] = mapped_column(Double, default=1.0)


class Consumer(Stamped, Base):
    __tablename__ = "consumers"
    __table_args__ = (Index("ix_consumers_project_user", "project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    consumer_type: Mapped[str | None] = mapped_column(String(255))
    generation: Mapped[int] = mapped_column(Integer, default=0)


class Allocation(Stamped, Base):
    __tablename__ = "allocations"
    __table_args__ = (
        Index("ix_allocations_provider_class_used", "resource_provider_id",
              "resource_class_id", "used"),
        Index("ix_allocations_consumer", "consumer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id"))
    consumer_id: Mapped[str] = mapped_column(String(36))
    resource_class_id: Mapped[int] = mapped_column(ForeignKey("resource_classes.id"))
    used: Mapped[int] = mapped_column(Integer)

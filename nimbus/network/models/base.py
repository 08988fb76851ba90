"""The declarative base of the network service and Neutron's standard attributes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nimbus.common.timeutils import utcnow
from nimbus.db.base import UTCDateTime, service_metadata

ID = String(36)
NAME = String(255)
PROJECT = String(255)


class Base(DeclarativeBase):
    metadata = service_metadata("network")


class Standard:
    """id, project, name, description, timestamps and revision_number, as every Neutron
    resource has them (some resources have no name: they keep it empty)."""

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT, index=True, default="")
    description: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)

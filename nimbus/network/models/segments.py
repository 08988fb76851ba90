"""Network segments (multi-provider and the segment extension) and auto-allocated topologies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nimbus.common.timeutils import utcnow
from nimbus.db.base import UTCDateTime
from nimbus.network.models.base import ID, NAME, PROJECT, Base


class NetworkSegment(Base):
    """One segment of a network. Every network has at least one; the first (segment_index 0)
    is mirrored in the network's own provider columns, which the data plane wires."""

    __tablename__ = "network_segments"
    # physical_network is "" rather than NULL so the constraint holds for VXLAN too.
    __table_args__ = (UniqueConstraint("network_type", "physical_network", "segmentation_id",
                                       name="uq_network_segments_segment"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(NAME, default="")
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str] = mapped_column(String(64), default="")
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segment_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class AutoAllocatedTopology(Base):
    """A project's auto-allocated network and router. The primary key is what makes two
    concurrent first requests of one project end with one topology."""

    __tablename__ = "auto_allocated_topologies"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    network_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=True, index=True)
    router_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("routers.id", ondelete="SET NULL"), nullable=True)

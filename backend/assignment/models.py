"""Assignment's table: technicians' dispatch profiles (skills, regions, daily cap, availability, last place)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from geoalchemy2 import Geography
from sqlalchemy import ARRAY, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, updated_at_column


class TechnicianProfile(Base):
    """What dispatch needs about a technician: skills, regions, daily cap, availability, last known place."""

    __tablename__ = "technician_profiles"
    __table_args__ = (Index("ix_technician_profiles_tenant", "tenant_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    regions: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    daily_cap: Mapped[int] = mapped_column(Integer, server_default="6")
    available: Mapped[bool] = mapped_column(server_default="true")
    location: Mapped[object | None] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    location_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = updated_at_column()

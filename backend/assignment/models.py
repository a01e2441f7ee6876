"""Assignment's tables: technicians' dispatch profiles, territories, the rule sets (versioned), round-robin
cursors and the decisions with their explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from geoalchemy2 import Geography
from sqlalchemy import ARRAY, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


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


class Territory(Base):
    """A team's area (a district, a business circle): a merchant belongs by its location (`territory_of`)."""

    __tablename__ = "territories"
    __table_args__ = (Index("ix_territories_area", "area", postgresql_using="gist"),)

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    area: Mapped[object] = mapped_column(Geography("POLYGON", srid=4326, spatial_index=False))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class AssignmentRuleVersion(Base):
    """Every saved rule set of a tenant, kept: the newest is in force, the older ones are the audit trail."""

    __tablename__ = "assignment_rule_versions"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    saved_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = created_at_column()


class AssignmentCursor(Base):
    """A round-robin's position in one group: the last person chosen. Locked by each assignment, so concurrent
    assignments take turns."""

    __tablename__ = "assignment_cursors"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_user_id: Mapped[UUID | None]
    turns: Mapped[int] = mapped_column(BigInteger, server_default="0")


class AssignmentDecision(Base):
    """One real assignment and its explanation: the rule, the strategy, who was chosen, who was skipped and why."""

    __tablename__ = "assignment_decisions"
    __table_args__ = (Index("ix_assignment_decisions_record", "tenant_id", "kind", "record_id", "decided_at"),)

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[UUID]
    rule_version: Mapped[int | None]
    rule_name: Mapped[str | None] = mapped_column(String(200))
    strategy: Mapped[str | None] = mapped_column(String(32))
    chosen_user_id: Mapped[UUID | None]
    team_id: Mapped[UUID | None]
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    explanation: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime]

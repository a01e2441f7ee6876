"""The lead pool's tables: each merchant's lead state, its history of transitions, the tenant's policy versions.

A merchant's holder stays `pois.holder_id` (nearby and the sync scope read it there); `leads` adds the state and
the protection clocks. A held merchant without a `leads` row (added in the field, seeded) is a private lead
claimed at `pois.claimed_at`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, ForeignKeyConstraint, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class LeadRecord(Base):
    __tablename__ = "leads"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_leads_poi_id_pois", ondelete="CASCADE"
        ),
        CheckConstraint("state IN ('pool', 'private', 'won')", name="state"),
        CheckConstraint("how IN ('claimed', 'assigned')", name="how"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    poi_id: Mapped[UUID] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(8))
    how: Mapped[str | None] = mapped_column(String(8))
    since: Mapped[datetime | None]  # the claim or assignment that started the current holding
    extensions_used: Mapped[int] = mapped_column(Integer, server_default="0")  # by the BD, this holding
    extended_days: Mapped[int] = mapped_column(Integer, server_default="0")  # by the BD and supervisors
    warned_release_at: Mapped[datetime | None]  # the release date the holder was last warned of
    won_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = updated_at_column()


class LeadEvent(Base):
    """One transition of a lead: who did it (None: the policy, on the scheduler), when, why."""

    __tablename__ = "lead_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_lead_events_poi_id_pois",
            ondelete="CASCADE",
        ),
        Index("ix_lead_events_poi", "tenant_id", "poi_id", "at"),
        # Claims per day: a BD's claims in the last 24 hours.
        Index("ix_lead_events_actor", "tenant_id", "actor_id", "action", "at"),
        # The cooldown: has this BD lost this lead lately?
        Index("ix_lead_events_from", "tenant_id", "from_user_id", "poi_id", "at"),
        CheckConstraint("action IN ('claim', 'assign', 'extend', 'release', 'win')", name="action"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    poi_id: Mapped[UUID]
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(8))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    to_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(200))


class LeadPolicyRecord(Base):
    """A version of a tenant's lead policy. The highest version is in force; older ones are kept as history."""

    __tablename__ = "lead_policies"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    adopted_at: Mapped[datetime]
    adopted_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()

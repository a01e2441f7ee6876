"""Visits: a check-in and a check-out at a merchant, each kept as evidence with the fix and its verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from geoalchemy2 import Geography
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class Visit(Base):
    """Every check-in is stored, rejected ones included: a verdict is evidence, never a reason to drop data.

    `*_fix` keeps the fix exactly as the phone sent it; the columns beside it are what the server derived.
    """

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_poi_checked_in", "tenant_id", "poi_id", "checked_in_at"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_visits_poi_id_pois", ondelete="CASCADE"
        ),
        Index("ix_visits_user_checked_in", "tenant_id", "user_id", "checked_in_at"),
        # The prior position of a check-in's speed check (evidence.positions.VisitPositions): the latest trusted time
        # before the fix, by index, not a sort of every visit the user ever made.
        Index("ix_visits_user_check_in_trusted", "tenant_id", "user_id", "check_in_trusted_at"),
        Index(
            "ix_visits_user_check_out_trusted",
            "tenant_id",
            "user_id",
            "check_out_trusted_at",
            postgresql_where=text("check_out_trusted_at IS NOT NULL"),
        ),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("check_in_status IN ('verified', 'uncertain', 'rejected')", name="check_in_status"),
        CheckConstraint("check_out_status IN ('verified', 'uncertain', 'rejected')", name="check_out_status"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)  # client-generated, unique within the tenant
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    poi_id: Mapped[UUID]
    status: Mapped[str] = mapped_column(String(8), server_default="open")
    note: Mapped[str | None] = mapped_column(Text)
    checked_in_at: Mapped[datetime]  # the moment the BD checked in, as the server trusts it
    check_in_request_hash: Mapped[str] = mapped_column(String(64))

    check_in_fix: Mapped[dict[str, Any]] = mapped_column(JSONB)
    check_in_location: Mapped[object] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    check_in_accuracy_m: Mapped[float] = mapped_column(Float)
    check_in_is_mock: Mapped[bool]
    check_in_trusted_at: Mapped[datetime]
    check_in_received_at: Mapped[datetime]
    check_in_status: Mapped[str] = mapped_column(String(16))
    check_in_confidence: Mapped[float] = mapped_column(Float)
    check_in_distance_m: Mapped[float] = mapped_column(Float)
    check_in_reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))

    checked_out_at: Mapped[datetime | None]
    check_out_request_hash: Mapped[str | None] = mapped_column(String(64))
    check_out_fix: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    check_out_location: Mapped[object | None] = mapped_column(Geography("POINT", srid=4326, spatial_index=False))
    check_out_accuracy_m: Mapped[float | None] = mapped_column(Float)
    check_out_is_mock: Mapped[bool | None]
    check_out_trusted_at: Mapped[datetime | None]
    check_out_received_at: Mapped[datetime | None]
    check_out_status: Mapped[str | None] = mapped_column(String(16))
    check_out_confidence: Mapped[float | None] = mapped_column(Float)
    check_out_distance_m: Mapped[float | None] = mapped_column(Float)
    check_out_reasons: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))

    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class VisitVerdictChange(Base):
    """The history of a visit's verdict: each time a later arrival (fixes of the trail that reached the server
    after the check-in) changed it, what it was, what it became, why and when. The check-in itself stays as it
    was stored; only its verdict moves, and every move is here."""

    __tablename__ = "visit_verdict_history"
    __table_args__ = (
        Index("ix_visit_verdict_history_visit", "tenant_id", "visit_id", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "visit_id"],
            ["visits.tenant_id", "visits.id"],
            name="fk_visit_verdict_history_visit_id_visits",
            ondelete="CASCADE",
        ),
        CheckConstraint("claim IN ('check_in', 'check_out')", name="claim"),
        CheckConstraint("old_status IN ('verified', 'uncertain', 'rejected')", name="old_status"),
        CheckConstraint("new_status IN ('verified', 'uncertain', 'rejected')", name="new_status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    visit_id: Mapped[UUID]
    claim: Mapped[str] = mapped_column(String(16))  # which of the visit's verdicts: check_in (check_out later)
    old_status: Mapped[str] = mapped_column(String(16))
    old_reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    new_status: Mapped[str] = mapped_column(String(16))
    new_reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    why: Mapped[str] = mapped_column(String(32))  # late_fixes: the trail around the check-in grew
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # by the caller's clock

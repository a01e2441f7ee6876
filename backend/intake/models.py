"""Lead intake's tables: an import (its file, its progress and report) and the review queue of likely duplicates."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column


class MerchantImport(Base):
    __tablename__ = "merchant_imports"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("format IN ('csv', 'json')", name="format"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    format: Mapped[str] = mapped_column(String(8))
    # The file as sent, until the import is done (then cleared): the worker reads it, and a retried job after a
    # crash starts over on it (rows get ids derived from the import and the line, so nothing is imported twice).
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(8), server_default="queued")
    rows: Mapped[int] = mapped_column(Integer, server_default="0")
    imported: Mapped[int] = mapped_column(Integer, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, server_default="0")
    likely_duplicates: Mapped[int] = mapped_column(Integer, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, server_default="0")
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")  # refused rows, skipped rows
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MerchantDuplicate(Base):
    """A pair of merchants that are probably one shop, waiting for a person (or decided, with who and when)."""

    __tablename__ = "merchant_duplicates"
    __table_args__ = (
        # A merge deletes one merchant of the pair; the decision stays (with a snapshot of it in `merged`).
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], ondelete="SET NULL (poi_id)", name="fk_md_poi"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "candidate_id"],
            ["pois.tenant_id", "pois.id"],
            ondelete="SET NULL (candidate_id)",
            name="fk_md_candidate",
        ),
        UniqueConstraint("tenant_id", "poi_id", "candidate_id", name="uq_merchant_duplicates_pair"),
        CheckConstraint("status IN ('pending', 'merged', 'dismissed')", name="status"),
        Index("ix_merchant_duplicates_pending", "tenant_id", "created_at", postgresql_where="status = 'pending'"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    poi_id: Mapped[UUID | None] = mapped_column()  # the newer merchant (an imported row)
    candidate_id: Mapped[UUID | None] = mapped_column()  # the merchant stored before it
    verdict: Mapped[str] = mapped_column(String(16))
    similarity: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    import_id: Mapped[UUID | None] = mapped_column()
    merged: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the merchant merged away, as it was
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    decided_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()

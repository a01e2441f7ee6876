"""The device registry: one row per app install of a user, with the push token its platform gave it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class Device(Base):
    """A phone (an app install) that can receive pushes for a user. Rows are retired, never deleted: the reason
    (`logged_out`, `token_moved`, or APNs's own, e.g. `apns:Unregistered`) explains why pushes stopped."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "device_id"),
        # A live token belongs to one row: when it turns up on another user or install, it leaves the old row.
        Index(
            "uq_devices_live_token",
            "tenant_id",
            "push_token",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
        CheckConstraint("platform IN ('ios', 'android')", name="platform"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))  # the phone's install id, chosen by the app
    platform: Mapped[str] = mapped_column(String(16))
    push_token: Mapped[str] = mapped_column(Text)
    app_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    retired_at: Mapped[datetime | None]
    retired_reason: Mapped[str | None] = mapped_column(String(64))

"""Administration's table: one-time set-password tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column


class SetPasswordToken(Base):
    """A one-time token that lets its holder choose the user's password: issued when an admin creates the user or
    resets their password. Only its sha256 is kept; it expires, and the first use spends it (`used_at`)."""

    __tablename__ = "set_password_tokens"
    __table_args__ = (Index("ix_set_password_tokens_user", "tenant_id", "user_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invite | reset
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()

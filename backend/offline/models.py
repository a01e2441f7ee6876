"""What the WatermelonDB adapter remembers between a device's pull and its push."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column


class WatermelonPull(Base):
    """`synchronize()` pulls, then pushes with the timestamp the pull just returned, so the push's
    `last_pulled_at` says nothing about what the phone had seen when it made its edits. We remember, per
    timestamp we handed out, the `last_pulled_at` it was pulled from: that is the base the phone's edits are
    judged against, so a server edit the phone never saw still meets its conflict rule.

    Not covered: a push that failed, followed by another pull, judges the still-pending edits against the later
    base (WatermelonDB does not tell us that edits are older than its last pull)."""

    __tablename__ = "watermelon_pulls"
    __table_args__ = (Index("ix_watermelon_pulls_created", "created_at"),)

    user_id: Mapped[UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    base: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_column()


class WatermelonRemoval(Base):
    """A work item that left a WatermelonDB phone's scope, sent to it first as a row marked gone (`removed_at`).
    WatermelonDB applies remote deletions before it pushes, which would destroy an edit still waiting on the
    phone; so the deletion itself is sent only on a later pull, once the phone has synced after receiving the mark
    (`marked_at` is the timestamp of the pull that carried it) and either pushed since (`flushed`), or pulled once
    more without pushing (`pulls_since`): a sync whose push died (a server restart, a lost network) keeps the mark,
    so the edit it could not push goes out with the next sync instead of being deleted under the phone."""

    __tablename__ = "watermelon_removals"

    user_id: Mapped[UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    collection: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[UUID] = mapped_column(primary_key=True)
    marked_at: Mapped[int] = mapped_column(BigInteger)
    # A push from the device based on a pull at or after the mark: whatever it still held for the record has
    # reached us, so the deletion may go out on its next pull.
    flushed: Mapped[bool] = mapped_column(server_default="false")
    # Pulls after the mark without such a push (nothing to push, or the push died): the deletion waits one.
    pulls_since: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = created_at_column()

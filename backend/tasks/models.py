"""Tables of campaigns, work items and the visits linked to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column, updated_at_column


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window"),
        Index("ix_campaigns_tenant_ends", "tenant_id", "ends_at"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)  # may come from the client, unique within the tenant
    type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, server_default="")
    goal: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {kind, target}
    form: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {version, fields: [...]}
    offer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    time_zone: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class WorkItem(Base):
    """One target merchant for one assignee. `field_xids` holds, per editable field, the id of the transaction
    that last changed it, and `field_writers` who wrote it (a phone, as `<user id>/<device id>`, or `server`): a
    phone's edit based on an older pull conflicts with that change unless the phone itself made it
    (mobile_contract/conflicts.py)."""

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "campaign_id", "poi_id", name="uq_work_items_campaign_poi"),
        Index("ix_work_items_tenant_assignee_status", "tenant_id", "assignee_id", "status"),
        Index("ix_work_items_poi_status", "tenant_id", "poi_id", "status"),
        ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["campaigns.tenant_id", "campaigns.id"],
            name="fk_work_items_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_work_items_poi_id_pois", ondelete="CASCADE"
        ),
        CheckConstraint(
            "status IN ('assigned', 'in_progress', 'goal_met', 'visited_not_met', 'expired')", name="status"
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True)
    campaign_id: Mapped[UUID]
    poi_id: Mapped[UUID]
    assignee_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(16), server_default="assigned")
    notes: Mapped[str] = mapped_column(Text, server_default="")
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    form_version: Mapped[int] = mapped_column(Integer, server_default="1")
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    field_xids: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    field_writers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class WorkItemEdit(Base):
    """The history of a work item: every value anyone set on one of its fields, applied or not, with who sent it
    and what became of it. A phone's edit that the conflict rules did not apply (a status the server kept, a late
    edit from a former assignee) is here, so nothing typed on a phone is ever lost."""

    __tablename__ = "work_item_history"
    __table_args__ = (
        Index("ix_work_item_history_item", "tenant_id", "work_item_id", "id"),
        # "What did this writer last send for this field?": the replay guard of update_work_item.
        Index("ix_work_item_history_writer", "tenant_id", "work_item_id", "field", "writer", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "work_item_id"],
            ["work_items.tenant_id", "work_items.id"],
            name="fk_work_item_history_work_item_id_work_items",
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    work_item_id: Mapped[UUID]
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[Any] = mapped_column(JSONB, nullable=True)  # what was sent (or set by the server)
    result: Mapped[Any] = mapped_column(JSONB, nullable=True)  # the field's value afterwards
    writer: Mapped[str] = mapped_column(String(300))  # "<user id>/<device id>", or "server"
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    origin: Mapped[str] = mapped_column(String(16))  # online | sync | server
    resolution: Mapped[str] = mapped_column(String(16))  # applied | merged | server_kept | late_kept | ...
    xid: Mapped[int] = mapped_column(BigInteger)  # the writing transaction (pg_current_xact_id)
    at: Mapped[datetime] = created_at_column()


class WorkItemVisit(Base):
    __tablename__ = "work_item_visits"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "work_item_id"],
            ["work_items.tenant_id", "work_items.id"],
            name="fk_work_item_visits_work_item_id_work_items",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "visit_id"],
            ["visits.tenant_id", "visits.id"],
            name="fk_work_item_visits_visit_id_visits",
            ondelete="CASCADE",
        ),
        # Deleting a visit cascades here: found by index, not by a scan of every link.
        Index("ix_work_item_visits_visit", "tenant_id", "visit_id"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    work_item_id: Mapped[UUID] = mapped_column(primary_key=True)
    visit_id: Mapped[UUID] = mapped_column(primary_key=True)
    linked_at: Mapped[datetime] = created_at_column()

"""campaigns, work items and the sync engine's change feed and mutation log

Revision ID: 9538a11d21a1
Revises: 6a0480cd8c96
Create Date: 2026-11-24 07:33:47.833638
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import sync.tables

revision: str = "9538a11d21a1"
down_revision: str | None = "6a0480cd8c96"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), server_default="", nullable=False),
        sa.Column("goal", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("form", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("offer", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_campaigns_window")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_campaigns_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_tenant_ends", "campaigns", ["tenant_id", "ends_at"], unique=False)
    op.create_table(
        "work_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="assigned", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("form_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("outcome", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("field_xids", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('assigned', 'in_progress', 'goal_met', 'visited_not_met', 'expired')",
            name=op.f("ck_work_items_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_work_items_assignee_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_work_items_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["poi_id"], ["pois.id"], name=op.f("fk_work_items_poi_id_pois"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_work_items_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint("campaign_id", "poi_id", name="uq_work_items_campaign_poi"),
    )
    op.create_index("ix_work_items_poi_status", "work_items", ["poi_id", "status"], unique=False)
    op.create_index(
        "ix_work_items_tenant_assignee_status", "work_items", ["tenant_id", "assignee_id", "status"], unique=False
    )
    op.create_table(
        "work_item_visits",
        sa.Column("work_item_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_work_item_visits_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_work_item_visits_visit_id_visits"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_work_item_visits_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("work_item_id", "visit_id", name=op.f("pk_work_item_visits")),
    )
    op.create_table(
        "sync_changes",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("collection", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("xid", sync.tables.Xid8(), server_default=sa.text("pg_current_xact_id()"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "collection", "record_id", name=op.f("pk_sync_changes")),
    )
    op.create_index(
        "ix_sync_changes_tombstones",
        "sync_changes",
        ["changed_at"],
        unique=False,
        postgresql_where=sa.text("op = 'remove'"),
    )
    op.create_index(
        "ix_sync_changes_user_xid", "sync_changes", ["user_id", "xid", "collection", "record_id"], unique=False
    )
    op.create_table(
        "sync_horizon",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sync.tables.Xid8(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_horizon")),
    )
    op.create_table(
        "sync_mutations",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("mutation_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("args_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_id", "mutation_id", name=op.f("pk_sync_mutations")),
    )


def downgrade() -> None:
    op.drop_table("sync_mutations")
    op.drop_table("sync_horizon")
    op.drop_index("ix_sync_changes_user_xid", table_name="sync_changes")
    op.drop_index("ix_sync_changes_tombstones", table_name="sync_changes", postgresql_where=sa.text("op = 'remove'"))
    op.drop_table("sync_changes")
    op.drop_table("work_item_visits")
    op.drop_index("ix_work_items_tenant_assignee_status", table_name="work_items")
    op.drop_index("ix_work_items_poi_status", table_name="work_items")
    op.drop_table("work_items")
    op.drop_index("ix_campaigns_tenant_ends", table_name="campaigns")
    op.drop_table("campaigns")

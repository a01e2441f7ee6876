"""Location tracking storage: the trail partitioned by day, its idempotency keys, latest positions, refused
fixes, tracking keys of stock tracker apps, tracking settings and windows

Revision ID: 7a1c4e2b9d10
Revises: 8d4a7c2e1f90
Create Date: 2026-12-02 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7a1c4e2b9d10"
down_revision: str | None = "8d4a7c2e1f90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "tracking_positions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("fix_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("accuracy_m", sa.REAL(), nullable=False),
        sa.Column("altitude_m", sa.REAL(), nullable=True),
        sa.Column("speed_mps", sa.REAL(), nullable=True),
        sa.Column("bearing_deg", sa.REAL(), nullable=True),
        sa.Column("battery", sa.REAL(), nullable=True),
        sa.Column("charging", sa.Boolean(), nullable=True),
        sa.Column("activity", sa.String(length=32), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("mock", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        postgresql_partition_by="RANGE (recorded_at)",
    )
    op.create_index(
        "ix_tracking_positions_user_time", "tracking_positions", ["tenant_id", "user_id", "recorded_at"], unique=False
    )
    op.create_index(
        "ix_tracking_positions_recorded_brin",
        "tracking_positions",
        ["recorded_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "tracking_fix_ids",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("fix_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "fix_id", name=op.f("pk_tracking_fix_ids")),
    )
    op.create_index(
        "ix_tracking_fix_ids_recorded_brin", "tracking_fix_ids", ["recorded_at"], unique=False, postgresql_using="brin"
    )
    op.create_table(
        "tracking_latest",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("fix_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("accuracy_m", sa.REAL(), nullable=False),
        sa.Column("speed_mps", sa.REAL(), nullable=True),
        sa.Column("bearing_deg", sa.REAL(), nullable=True),
        sa.Column("battery", sa.REAL(), nullable=True),
        sa.Column("charging", sa.Boolean(), nullable=True),
        sa.Column("activity", sa.String(length=32), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("mock", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_latest_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_latest_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_tracking_latest")),
    )
    op.create_table(
        "tracking_refused",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("fix_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fix", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "fix_id", name=op.f("pk_tracking_refused")),
    )
    op.create_index(
        "ix_tracking_refused_user_received", "tracking_refused", ["tenant_id", "user_id", "received_at"], unique=False
    )
    op.create_index(
        "ix_tracking_refused_received_brin", "tracking_refused", ["received_at"], unique=False, postgresql_using="brin"
    )
    op.create_table(
        "tracking_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_keys_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_tracking_keys_key_hash")),
    )
    op.create_index("ix_tracking_keys_tenant_user", "tracking_keys", ["tenant_id", "user_id"], unique=False)
    op.create_table(
        "tracking_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.CheckConstraint("retention_days BETWEEN 1 AND 3650", name=op.f("ck_tracking_settings_retention_days")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_settings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tracking_settings")),
    )
    op.create_table(
        "tracking_windows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("weekdays", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("starts <> ends", name=op.f("ck_tracking_windows_not_empty")),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_tracking_windows_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_windows_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_windows")),
    )
    op.create_index("ix_tracking_windows_tenant_team", "tracking_windows", ["tenant_id", "team_id"], unique=False)


def downgrade() -> None:
    op.drop_table("tracking_windows")
    op.drop_table("tracking_settings")
    op.drop_table("tracking_keys")
    op.drop_table("tracking_refused")
    op.drop_table("tracking_latest")
    op.drop_table("tracking_fix_ids")
    op.drop_table("tracking_positions")  # and every day's partition with it

"""visit verdict history: each change of a check-in's verdict that a later arrival caused

Revision ID: b3e8d2f41c07
Revises: 3e5b8f1c2a70
Create Date: 2026-12-02 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b3e8d2f41c07"
down_revision: str | None = "3e5b8f1c2a70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "visit_verdict_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("claim", sa.String(length=16), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=False),
        sa.Column("old_reasons", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("new_status", sa.String(length=16), nullable=False),
        sa.Column("new_reasons", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("why", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("claim IN ('check_in', 'check_out')", name=op.f("ck_visit_verdict_history_claim")),
        sa.CheckConstraint(
            "old_status IN ('verified', 'uncertain', 'rejected')", name=op.f("ck_visit_verdict_history_old_status")
        ),
        sa.CheckConstraint(
            "new_status IN ('verified', 'uncertain', 'rejected')", name=op.f("ck_visit_verdict_history_new_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "visit_id"],
            ["visits.tenant_id", "visits.id"],
            name="fk_visit_verdict_history_visit_id_visits",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_visit_verdict_history_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_verdict_history")),
    )
    op.create_index(
        "ix_visit_verdict_history_visit", "visit_verdict_history", ["tenant_id", "visit_id", "id"], unique=False
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_visit_verdict_history_visit", table_name="visit_verdict_history")
    op.drop_table("visit_verdict_history")

"""failed mutations: the base a re-run needs, and an index to find them; prior-fix indexes on visits

Revision ID: 5f1d0c7a9b3e
Revises: aef295b324d9
Create Date: 2026-12-02 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "5f1d0c7a9b3e"
down_revision: str | None = "5e1f0a7c3b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("sync_mutations", sa.Column("base_xid", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_sync_mutations_failed",
        "sync_mutations",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("status = 'failed'"),
    )
    op.create_index(
        "ix_visits_user_check_in_trusted", "visits", ["tenant_id", "user_id", "check_in_trusted_at"], unique=False
    )
    op.create_index(
        "ix_visits_user_check_out_trusted",
        "visits",
        ["tenant_id", "user_id", "check_out_trusted_at"],
        unique=False,
        postgresql_where=sa.text("check_out_trusted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_visits_user_check_out_trusted",
        table_name="visits",
        postgresql_where=sa.text("check_out_trusted_at IS NOT NULL"),
    )
    op.drop_index("ix_visits_user_check_in_trusted", table_name="visits")
    op.drop_index(
        "ix_sync_mutations_failed", table_name="sync_mutations", postgresql_where=sa.text("status = 'failed'")
    )
    op.drop_column("sync_mutations", "base_xid")

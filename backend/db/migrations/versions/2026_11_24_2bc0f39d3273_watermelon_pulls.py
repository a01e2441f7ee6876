"""watermelon pulls

Revision ID: 2bc0f39d3273
Revises: 07d38f939ce3
Create Date: 2026-11-24 07:58:01.482273
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op


revision: str = "2bc0f39d3273"
down_revision: str | None = "07d38f939ce3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "watermelon_pulls",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", "timestamp", name=op.f("pk_watermelon_pulls")),
    )
    op.create_index("ix_watermelon_pulls_created", "watermelon_pulls", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_watermelon_pulls_created", table_name="watermelon_pulls")
    op.drop_table("watermelon_pulls")

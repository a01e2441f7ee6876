"""auth versions on users, login throttles, refresh token lookups

Revision ID: 5e1f0a7c3b21
Revises: aef295b324d9
Create Date: 2026-12-02 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "5e1f0a7c3b21"
down_revision: str | None = "5b7e1c9a3d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # A constant default: PostgreSQL 11+ adds the column without rewriting the table.
    op.add_column("users", sa.Column("auth_version", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttles")),
    )
    op.create_index("ix_refresh_tokens_parent", "refresh_tokens", ["parent_id"], unique=False)
    op.create_index("ix_refresh_tokens_user", "refresh_tokens", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_user", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_parent", table_name="refresh_tokens")
    op.drop_table("login_throttles")
    op.drop_column("users", "auth_version")

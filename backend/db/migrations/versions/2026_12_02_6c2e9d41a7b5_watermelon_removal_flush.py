"""WatermelonDB removal marks wait for a push (or one more pull) before the deletion goes out

Revision ID: 6c2e9d41a7b5
Revises: 5f1d0c7a9b3e
Create Date: 2026-12-02 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c2e9d41a7b5"
down_revision: str | None = "5f1d0c7a9b3e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("watermelon_removals", sa.Column("flushed", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("watermelon_removals", sa.Column("pulls_since", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("watermelon_removals", "pulls_since")
    op.drop_column("watermelon_removals", "flushed")

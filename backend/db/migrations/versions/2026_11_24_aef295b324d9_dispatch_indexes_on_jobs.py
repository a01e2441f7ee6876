"""dispatch indexes on jobs

Revision ID: aef295b324d9
Revises: c3d34f81aaa1
Create Date: 2026-11-24 08:39:54.393301
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op


revision: str = "aef295b324d9"
down_revision: str | None = "c3d34f81aaa1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_jobs_tenant_assigned_at",
        "jobs",
        ["tenant_id", "assigned_at"],
        unique=False,
        postgresql_include=["assignee_id"],
    )
    op.create_index(
        "ix_jobs_tenant_window",
        "jobs",
        ["tenant_id", "window_start"],
        unique=False,
        postgresql_include=["status", "assignee_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_window", table_name="jobs", postgresql_include=["status", "assignee_id"])
    op.drop_index("ix_jobs_tenant_assigned_at", table_name="jobs", postgresql_include=["assignee_id"])

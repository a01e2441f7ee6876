"""jobs keep their count of proof photos

The media domain sets it when it stores a photo, so the jobs domain reads its completion policy from its own
table instead of importing media (the jobs <-> media import cycle).

Revision ID: 5b7e1c9a3d20
Revises: aef295b324d9
Create Date: 2026-12-02 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "5b7e1c9a3d20"
down_revision: str | None = "30c048312a16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("jobs", sa.Column("proof_photos", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        """
        UPDATE jobs SET proof_photos = proof.n
        FROM (
            SELECT tenant_id, job_id, count(*) AS n FROM photos
            WHERE NOT flags && ARRAY['reused_photo', 'duplicate_in_job']::varchar[]
            GROUP BY tenant_id, job_id
        ) AS proof
        WHERE jobs.tenant_id = proof.tenant_id AND jobs.id = proof.job_id
        """
    )


def downgrade() -> None:
    op.drop_column("jobs", "proof_photos")

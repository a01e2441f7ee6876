"""Lead intake: merchant imports (file, progress, report), the review queue of likely duplicates, pois by phone

Revision ID: 4e8b2d6f1a93
Revises: 3c9a1f5e7b24
Create Date: 2026-12-02 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4e8b2d6f1a93"
down_revision: str | None = "3c9a1f5e7b24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pois_tenant_phone", "pois", ["tenant_id", "phone"], unique=False)
    op.create_table(
        "merchant_imports",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=8), server_default="queued", nullable=False),
        sa.Column("rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("imported", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("likely_duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_merchant_imports_status")
        ),
        sa.CheckConstraint("format IN ('csv', 'json')", name=op.f("ck_merchant_imports_format")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_merchant_imports_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_merchant_imports_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_merchant_imports")),
    )
    op.create_table(
        "merchant_duplicates",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=True),
        sa.Column("candidate_id", sa.Uuid(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("import_id", sa.Uuid(), nullable=True),
        sa.Column("merged", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'merged', 'dismissed')", name=op.f("ck_merchant_duplicates_status")),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_merchant_duplicates_decided_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "candidate_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_md_candidate",
            ondelete="SET NULL (candidate_id)",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_md_poi", ondelete="SET NULL (poi_id)"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_merchant_duplicates_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_merchant_duplicates")),
        sa.UniqueConstraint("tenant_id", "poi_id", "candidate_id", name="uq_merchant_duplicates_pair"),
    )
    op.create_index(
        "ix_merchant_duplicates_pending",
        "merchant_duplicates",
        ["tenant_id", "created_at"],
        unique=False,
        postgresql_where="status = 'pending'",
    )


def downgrade() -> None:
    op.drop_index("ix_pois_tenant_phone", table_name="pois")
    op.drop_index("ix_merchant_duplicates_pending", table_name="merchant_duplicates")
    op.drop_table("merchant_duplicates")
    op.drop_table("merchant_imports")

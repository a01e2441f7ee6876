"""photos with perceptual hashes

Revision ID: c3d34f81aaa1
Revises: 4bad38ee5a6d
Create Date: 2026-11-24 08:02:41.994886
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d34f81aaa1"
down_revision: str | None = "4bad38ee5a6d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "photos",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("declared_content_type", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("hash_c0", sa.Integer(), nullable=True),
        sa.Column("hash_c1", sa.Integer(), nullable=True),
        sa.Column("hash_c2", sa.Integer(), nullable=True),
        sa.Column("exif_local_time", sa.DateTime(), nullable=True),
        sa.Column("exif_utc_offset_min", sa.SmallInteger(), nullable=True),
        sa.Column("exif_lat", sa.Float(), nullable=True),
        sa.Column("exif_lon", sa.Float(), nullable=True),
        sa.Column("exif_distance_m", sa.Float(), nullable=True),
        sa.Column("flags", sa.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("reused_from_photo_id", sa.Uuid(), nullable=True),
        sa.Column("reused_from_job_id", sa.Uuid(), nullable=True),
        sa.Column("duplicate_of_photo_id", sa.Uuid(), nullable=True),
        sa.Column("duplicate_of_job_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_photos_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_photos_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_photos_user_id_users"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
    )
    op.create_index("ix_photos_tenant_hash_c0", "photos", ["tenant_id", "hash_c0"], unique=False)
    op.create_index("ix_photos_tenant_hash_c1", "photos", ["tenant_id", "hash_c1"], unique=False)
    op.create_index("ix_photos_tenant_hash_c2", "photos", ["tenant_id", "hash_c2"], unique=False)
    op.create_index(
        "ix_photos_tenant_job_received", "photos", ["tenant_id", "job_id", "received_at", "id"], unique=False
    )
    op.create_index("ix_photos_tenant_sha256", "photos", ["tenant_id", "sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_photos_tenant_sha256", table_name="photos")
    op.drop_index("ix_photos_tenant_job_received", table_name="photos")
    op.drop_index("ix_photos_tenant_hash_c2", table_name="photos")
    op.drop_index("ix_photos_tenant_hash_c1", table_name="photos")
    op.drop_index("ix_photos_tenant_hash_c0", table_name="photos")
    op.drop_table("photos")

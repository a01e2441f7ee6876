"""tenants users pois visits

Revision ID: 6a0480cd8c96
Revises:
Create Date: 2026-11-24 07:13:39.859456
"""

from collections.abc import Sequence

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql

revision: str = "6a0480cd8c96"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # PostGIS for geography; pg_trgm for similar-name search; btree_gist so tenant_id can lead a GiST index.
    for extension in ("postgis", "pg_trgm", "btree_gist"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("verification_policy", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["teams.id"], name=op.f("fk_teams_parent_id_teams"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_teams_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    op.create_index(
        "ix_teams_tenant_path",
        "teams",
        ["tenant_id", "path"],
        unique=False,
        postgresql_ops={"path": "text_pattern_ops"},
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("data_scope", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("data_scope IN ('self', 'team', 'team_and_below', 'all')", name=op.f("ck_users_data_scope")),
        sa.CheckConstraint("role IN ('bd', 'technician', 'supervisor', 'ops', 'admin')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_users_team_id_teams"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index("ix_users_tenant_team", "users", ["tenant_id", "team_id"], unique=False)
    op.create_geospatial_table(
        "pois",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("geofence_radius_m", sa.Float(), nullable=True),
        sa.Column(
            "geofence",
            Geography(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            nullable=True,
        ),
        sa.Column("holder_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="import", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("create_request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('import', 'field')", name=op.f("ck_pois_source")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_pois_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["holder_id"], ["users.id"], name=op.f("fk_pois_holder_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_pois_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pois")),
    )
    op.create_index(
        "ix_pois_name_trgm",
        "pois",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_pois_tenant_holder", "pois", ["tenant_id", "holder_id"], unique=False)
    op.create_index("ix_pois_tenant_location", "pois", ["tenant_id", "location"], unique=False, postgresql_using="gist")
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_refresh_tokens_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family_id"], unique=False)
    op.create_table(
        "poi_contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["poi_id"], ["pois.id"], name=op.f("fk_poi_contacts_poi_id_pois"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_poi_contacts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poi_contacts")),
    )
    op.create_index("ix_poi_contacts_poi", "poi_contacts", ["poi_id"], unique=False)
    op.create_geospatial_table(
        "visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("check_in_request_hash", sa.String(length=64), nullable=False),
        sa.Column("check_in_fix", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "check_in_location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("check_in_accuracy_m", sa.Float(), nullable=False),
        sa.Column("check_in_is_mock", sa.Boolean(), nullable=False),
        sa.Column("check_in_trusted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("check_in_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("check_in_status", sa.String(length=16), nullable=False),
        sa.Column("check_in_confidence", sa.Float(), nullable=False),
        sa.Column("check_in_distance_m", sa.Float(), nullable=False),
        sa.Column("check_in_reasons", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_out_request_hash", sa.String(length=64), nullable=True),
        sa.Column("check_out_fix", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "check_out_location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            nullable=True,
        ),
        sa.Column("check_out_accuracy_m", sa.Float(), nullable=True),
        sa.Column("check_out_is_mock", sa.Boolean(), nullable=True),
        sa.Column("check_out_trusted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_out_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_out_status", sa.String(length=16), nullable=True),
        sa.Column("check_out_confidence", sa.Float(), nullable=True),
        sa.Column("check_out_distance_m", sa.Float(), nullable=True),
        sa.Column("check_out_reasons", sa.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "check_in_status IN ('verified', 'uncertain', 'rejected')", name=op.f("ck_visits_check_in_status")
        ),
        sa.CheckConstraint(
            "check_out_status IN ('verified', 'uncertain', 'rejected')", name=op.f("ck_visits_check_out_status")
        ),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_visits_status")),
        sa.ForeignKeyConstraint(["poi_id"], ["pois.id"], name=op.f("fk_visits_poi_id_pois"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_visits_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_visits_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    op.create_index("ix_visits_poi_checked_in", "visits", ["poi_id", "checked_in_at"], unique=False)
    op.create_index("ix_visits_user_checked_in", "visits", ["tenant_id", "user_id", "checked_in_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_visits_user_checked_in", table_name="visits")
    op.drop_index("ix_visits_poi_checked_in", table_name="visits")
    op.drop_geospatial_table("visits")
    op.drop_index("ix_poi_contacts_poi", table_name="poi_contacts")
    op.drop_table("poi_contacts")
    op.drop_index("ix_refresh_tokens_family", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_pois_tenant_location", table_name="pois", postgresql_using="gist")
    op.drop_index("ix_pois_tenant_holder", table_name="pois")
    op.drop_index(
        "ix_pois_name_trgm", table_name="pois", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
    )
    op.drop_geospatial_table("pois")
    op.drop_index("ix_users_tenant_team", table_name="users")
    op.drop_table("users")
    op.drop_index("ix_teams_tenant_path", table_name="teams", postgresql_ops={"path": "text_pattern_ops"})
    op.drop_table("teams")
    op.drop_table("tenants")

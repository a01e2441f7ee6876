"""What the server derives from a trail, per person and local day: stops, trips, gaps, presence at merchants and
job sites, geofence events, and when the day was derived

Revision ID: b3d5f7a9c1e2
Revises: b3e8d2f41c07
Create Date: 2026-12-02 13:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "b3d5f7a9c1e2"
down_revision: str | None = "b3e8d2f41c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "tracking_days",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("fixes", sa.Integer(), nullable=False),
        sa.Column("derived_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_days_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_days_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", name=op.f("pk_tracking_days")),
    )
    op.create_table(
        "tracking_gaps",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "cause IN ('permission', 'location_off', 'battery_saver', 'no_network', 'unknown')",
            name=op.f("ck_tracking_gaps_cause"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_gaps_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_gaps_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", "seq", name=op.f("pk_tracking_gaps")),
    )
    op.create_table(
        "tracking_stops",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("radius_m", sa.REAL(), nullable=False),
        sa.Column("fixes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_stops_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_stops_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", "seq", name=op.f("pk_tracking_stops")),
    )
    op.create_table(
        "tracking_trips",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False),
        sa.Column("fixes", sa.Integer(), nullable=False),
        sa.Column("from_stop", sa.SmallInteger(), nullable=True),
        sa.Column("to_stop", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_trips_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_trips_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", "seq", name=op.f("pk_tracking_trips")),
    )
    op.create_table(
        "tracking_fence_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("place_kind", sa.String(length=16), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "place_kind IN ('merchant', 'job_site') AND (poi_id IS NOT NULL OR job_id IS NOT NULL)",
            name=op.f("ck_tracking_fence_events_one_place"),
        ),
        sa.CheckConstraint("kind IN ('enter', 'exit', 'dwell')", name=op.f("ck_tracking_fence_events_kind")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "job_id"],
            ["jobs.tenant_id", "jobs.id"],
            name="fk_tracking_fence_events_job",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_tracking_fence_events_poi",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_fence_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_fence_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", "seq", name=op.f("pk_tracking_fence_events")),
    )
    op.create_index(
        "ix_tracking_fence_events_job",
        "tracking_fence_events",
        ["tenant_id", "job_id"],
        unique=False,
        postgresql_where="job_id IS NOT NULL",
    )
    op.create_index(
        "ix_tracking_fence_events_poi",
        "tracking_fence_events",
        ["tenant_id", "poi_id", "at"],
        unique=False,
        postgresql_where="poi_id IS NOT NULL",
    )
    op.create_table(
        "tracking_presence",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("stop_seq", sa.SmallInteger(), nullable=False),
        sa.Column("place_kind", sa.String(length=16), nullable=False),
        sa.Column("poi_id", sa.Uuid(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confidence", sa.REAL(), nullable=False),
        sa.CheckConstraint(
            "place_kind IN ('merchant', 'job_site') AND (poi_id IS NOT NULL OR job_id IS NOT NULL)",
            name=op.f("ck_tracking_presence_one_place"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.id"], name="fk_tracking_presence_job", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_tracking_presence_poi", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tracking_presence_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tracking_presence_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", "seq", name=op.f("pk_tracking_presence")),
    )
    op.create_index(
        "ix_tracking_presence_job",
        "tracking_presence",
        ["tenant_id", "job_id"],
        unique=False,
        postgresql_where="job_id IS NOT NULL",
    )
    op.create_index(
        "ix_tracking_presence_poi",
        "tracking_presence",
        ["tenant_id", "poi_id", "started_at"],
        unique=False,
        postgresql_where="poi_id IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_tracking_presence_poi", table_name="tracking_presence", postgresql_where="poi_id IS NOT NULL")
    op.drop_index("ix_tracking_presence_job", table_name="tracking_presence", postgresql_where="job_id IS NOT NULL")
    op.drop_table("tracking_presence")
    op.drop_index(
        "ix_tracking_fence_events_poi", table_name="tracking_fence_events", postgresql_where="poi_id IS NOT NULL"
    )
    op.drop_index(
        "ix_tracking_fence_events_job", table_name="tracking_fence_events", postgresql_where="job_id IS NOT NULL"
    )
    op.drop_table("tracking_fence_events")
    op.drop_table("tracking_trips")
    op.drop_table("tracking_stops")
    op.drop_table("tracking_gaps")
    op.drop_table("tracking_days")

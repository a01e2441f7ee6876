"""Tables of location tracking: the trail (partitioned by day), its idempotency keys, the latest position per
person, refused fixes, tracking keys of stock tracker apps, and the tenant's tracking settings.

Why the trail is partitioned by the trusted time and idempotency lives in a table of its own: the trusted time
(`received_at - age_ms`) of a fix resent later is recomputed from the new send's age and can differ by the
network's jitter, across midnight too. A primary key on a partitioned table must contain the partition key, so
`(tenant_id, fix_id, recorded_at)` would take the resend as a new fix. `tracking_fix_ids` is not partitioned: its
primary key `(tenant_id, fix_id)` holds for every fix ever stored, whatever its time, and the ingest statement
writes a trail row only for the keys it newly inserted (queries.py). Partitioning by the phone's `captured_at`
instead would be deterministic, but a phone whose clock is off by a year would put its trail in a partition
nobody reads and no retention drops.

Partitions are one per UTC day, named `tracking_positions_pYYYYMMDD`, created ahead by a periodic task and on
demand for late data (queries.ensure_partitions); they are not in the metadata (Alembic skips them: env.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    REAL,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, created_at_column

POSITIONS = "tracking_positions"
PARTITION_PREFIX = f"{POSITIONS}_p"
# The name of a day's partition of the trail: Alembic's comparison skips tables of this shape (env.py).
PARTITION_NAME = re.compile(rf"^{PARTITION_PREFIX}\d{{8}}$")


# One fix of a person's trail. A Core table without a primary key (see the module's docstring): uniqueness per
# (tenant, fix id) is `tracking_fix_ids`'s, and a key index per partition would only slow the ingest down.
# Coordinates are WGS-84 doubles rather than a geography column: the ingest writes thousands a second and the
# derivations read them back as numbers; PostGIS builds a point from them where a query needs one.
positions = Table(
    POSITIONS,
    Base.metadata,
    Column("tenant_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("fix_id", Uuid, nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),  # trusted capture time: the partition key
    Column("captured_at", DateTime(timezone=True), nullable=False),  # the phone's own claim, kept as evidence
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("lat", Double, nullable=False),
    Column("lon", Double, nullable=False),
    Column("accuracy_m", REAL, nullable=False),
    Column("altitude_m", REAL),
    Column("speed_mps", REAL),
    Column("bearing_deg", REAL),
    Column("battery", REAL),  # percent
    Column("charging", Boolean),
    Column("activity", String(32)),
    Column("event", String(64)),
    Column("provider", String(16)),
    Column("mock", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("reasons", ARRAY(String(32)), nullable=False),
    # A person's day and trail: pruned to a day's partitions, then one index range.
    Index("ix_tracking_positions_user_time", "tenant_id", "user_id", "recorded_at"),
    # Time-range scans (retention by tenant, exports of a day): rows arrive roughly in time order.
    Index("ix_tracking_positions_recorded_brin", "recorded_at", postgresql_using="brin"),
    postgresql_partition_by="RANGE (recorded_at)",
)


class FixId(Base):
    """Every fix id ever stored, per tenant: the idempotency of the ingest (see the module's docstring). Rows
    older than the tenant's retention are deleted with the trail they stood for (tasks.py)."""

    __tablename__ = "tracking_fix_ids"
    __table_args__ = (Index("ix_tracking_fix_ids_recorded_brin", "recorded_at", postgresql_using="brin"),)

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    fix_id: Mapped[UUID] = mapped_column(primary_key=True)
    recorded_at: Mapped[datetime]


class LatestPosition(Base):
    """The newest stored fix of each person (by trusted time), kept by the ingest statement: the live view of
    2,000 people is one index scan here, not a newest-row search in every day's partition."""

    __tablename__ = "tracking_latest"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    fix_id: Mapped[UUID]
    device_id: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime]
    received_at: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    accuracy_m: Mapped[float] = mapped_column(REAL)
    speed_mps: Mapped[float | None] = mapped_column(REAL)
    bearing_deg: Mapped[float | None] = mapped_column(REAL)
    battery: Mapped[float | None] = mapped_column(REAL)
    charging: Mapped[bool | None] = mapped_column(Boolean)
    activity: Mapped[str | None] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    mock: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))


class RefusedFix(Base):
    """A fix the trail does not take, with why: nothing a phone sent disappears without a trace. `fix` is what
    was sent (JSON, WGS-84), except for fixes refused as `outside_tracking_window` or `beyond_retention`, whose
    position is deliberately not kept (the point of a tracking window is that nobody learns where people are
    after hours); their time and reason are. One row per (tenant, fix id): a resent refusal is counted again in
    the answer but stored once."""

    __tablename__ = "tracking_refused"
    __table_args__ = (
        Index("ix_tracking_refused_user_received", "tenant_id", "user_id", "received_at"),
        Index("ix_tracking_refused_received_brin", "received_at", postgresql_using="brin"),
    )

    tenant_id: Mapped[UUID] = mapped_column(primary_key=True)
    fix_id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[UUID]
    device_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    recorded_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    fix: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class TrackingKey(Base):
    """A key with which a stock tracker app (Traccar Client, OsmAnd, GPSLogger) reports one user's device to
    /v1/tracking/osmand. Shown once, stored as its SHA-256; revoked keys stay (a report signed with one is
    refused, not taken for an unknown device). The key, not the device id, says whose positions these are."""

    __tablename__ = "tracking_keys"
    __table_args__ = (Index("ix_tracking_keys_tenant_user", "tenant_id", "user_id"),)

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrackingSettings(Base):
    """A tenant's tracking settings: how many days of trail are kept, and the time zone of its tracking windows
    when a window does not name its own. No row: the defaults (settings.py)."""

    __tablename__ = "tracking_settings"
    __table_args__ = (CheckConstraint("retention_days BETWEEN 1 AND 3650", name="retention_days"),)

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")


class TrackingWindow(Base):
    """Working hours in which a team is tracked (`team_id` NULL: the tenant's default for teams without their
    own). A fix outside every window of its person's team is not stored (counted as `outside_tracking_window`).
    A team (or tenant) with no window at all is tracked at any hour. `ends` before `starts` crosses midnight."""

    __tablename__ = "tracking_windows"
    __table_args__ = (
        Index("ix_tracking_windows_tenant_team", "tenant_id", "team_id"),
        CheckConstraint("starts <> ends", name="not_empty"),
    )

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    team_id: Mapped[UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    weekdays: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))  # ISO: 1 Monday .. 7 Sunday
    starts: Mapped[Any] = mapped_column(Time)
    ends: Mapped[Any] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


# ---------------------------------------------------------------------------------------------------------------
# What the server derives from a trail (geo.movement), per person and local day (the tenant's tracking time
# zone). Recomputed whole, in one transaction, whenever fixes of that day land (tasks.derive_day): never edited.


class DerivedDay(Base):
    """That a person's day was derived, when, and from how many fixes."""

    __tablename__ = "tracking_days"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    timezone: Mapped[str] = mapped_column(Text)
    fixes: Mapped[int] = mapped_column(Integer)
    derived_at: Mapped[datetime]


class Stop(Base):
    """Standing still (geo.movement): where (WGS-84), for how long, how well the place is known."""

    __tablename__ = "tracking_stops"
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # 0.. in time order within the day
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    radius_m: Mapped[float] = mapped_column(REAL)
    fixes: Mapped[int] = mapped_column(Integer)


class Trip(Base):
    """Moving between stops; `from_stop`/`to_stop` are stop `seq`s of the same day (null: the day's edge)."""

    __tablename__ = "tracking_trips"
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    distance_m: Mapped[float] = mapped_column(Double)
    fixes: Mapped[int] = mapped_column(Integer)
    from_stop: Mapped[int | None] = mapped_column(SmallInteger)
    to_stop: Mapped[int | None] = mapped_column(SmallInteger)


class Gap(Base):
    """No usable fix for longer than the gap threshold, and why where the phone said."""

    __tablename__ = "tracking_gaps"
    __table_args__ = (
        CheckConstraint(
            "cause IN ('permission', 'location_off', 'battery_saver', 'no_network', 'unknown')", name="cause"
        ),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(16))


# A row is at a merchant or at a job site (the code writes one of the two ids, per `place_kind`). Not a stricter
# CHECK tying the kind to the column: the tenant-key tests point each reference at another tenant's record and
# must meet the foreign key, not a CHECK that fires first.
_ONE_PLACE = "place_kind IN ('merchant', 'job_site') AND (poi_id IS NOT NULL OR job_id IS NOT NULL)"


class Presence(Base):
    """A stop at a merchant or a job site (the stop's accuracy disc mostly inside the place's fence)."""

    __tablename__ = "tracking_presence"
    __table_args__ = (
        Index("ix_tracking_presence_poi", "tenant_id", "poi_id", "started_at", postgresql_where="poi_id IS NOT NULL"),
        Index("ix_tracking_presence_job", "tenant_id", "job_id", postgresql_where="job_id IS NOT NULL"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"], ["pois.tenant_id", "pois.id"], name="fk_tracking_presence_poi", ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.id"], name="fk_tracking_presence_job", ondelete="CASCADE"
        ),
        CheckConstraint(_ONE_PLACE, name="one_place"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    stop_seq: Mapped[int] = mapped_column(SmallInteger)
    place_kind: Mapped[str] = mapped_column(String(16))
    poi_id: Mapped[UUID | None]
    job_id: Mapped[UUID | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    confidence: Mapped[float] = mapped_column(REAL)


class FenceEvent(Base):
    """Entering, leaving, or having stayed a while inside a merchant's or job site's fence."""

    __tablename__ = "tracking_fence_events"
    __table_args__ = (
        Index("ix_tracking_fence_events_poi", "tenant_id", "poi_id", "at", postgresql_where="poi_id IS NOT NULL"),
        Index("ix_tracking_fence_events_job", "tenant_id", "job_id", postgresql_where="job_id IS NOT NULL"),
        ForeignKeyConstraint(
            ["tenant_id", "poi_id"],
            ["pois.tenant_id", "pois.id"],
            name="fk_tracking_fence_events_poi",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "job_id"],
            ["jobs.tenant_id", "jobs.id"],
            name="fk_tracking_fence_events_job",
            ondelete="CASCADE",
        ),
        CheckConstraint("kind IN ('enter', 'exit', 'dwell')", name="kind"),
        CheckConstraint(_ONE_PLACE, name="one_place"),
    )

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(8))
    place_kind: Mapped[str] = mapped_column(String(16))
    poi_id: Mapped[UUID | None]
    job_id: Mapped[UUID | None]


__all__ = [
    "PARTITION_NAME",
    "POSITIONS",
    "DerivedDay",
    "FenceEvent",
    "FixId",
    "Gap",
    "LatestPosition",
    "Presence",
    "RefusedFix",
    "Stop",
    "TrackingKey",
    "TrackingSettings",
    "TrackingWindow",
    "Trip",
    "positions",
]

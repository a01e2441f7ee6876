"""Hot SQL of location tracking: the batched ingest, the trail loader the derivations read, latest positions,
and the day partitions of the trail.

The ingest is one statement per batch on asyncpg (the hot pool, autocommit): the batch travels as one array per
column (`unnest`), its new fix ids are claimed in `tracking_fix_ids` (ON CONFLICT DO NOTHING RETURNING: what
comes back is what is new), only those become trail rows, and the newest of them moves `tracking_latest` forward.
Built by hand, not by the ORM: an ORM insert of 500 rows costs more CPU than PostgreSQL spends on it
(ARCHITECTURE.md, "Speed"). `INGEST_SQL` is also what bench/tracking.py runs through pgbench.

A batch whose day has no partition yet (late data, or the first fix after midnight before the periodic task ran)
fails as a whole with "no partition of relation ... found for row" (SQLSTATE 23514), nothing written; the days
are created and the same statement is run again (`insert_fixes`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.tracking.models import PARTITION_PREFIX, POSITIONS
from geo.distance import haversine_m
from geo.fence import CircleFence
from geo.stored_fix import StoredFix
from geo.verdict import Fix, PriorFix, Reason, VerdictPolicy, judge

__all__ = [
    "INGEST_SQL",
    "LIVE_CHANNEL",
    "LatestPosition",
    "StoredFix",
    "ensure_partitions",
    "fixes_between",
    "insert_fixes",
    "latest_positions",
    "partition_name",
]


class Fetcher(Protocol):
    """asyncpg's Connection and backend.db.hotpool.HotPool: `fetch(sql, *args)`."""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...


Conn = Fetcher | AsyncSession | AsyncConnection


async def _fetch(conn: Conn, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run asyncpg SQL ($n parameters) on a hot connection or inside an ORM session's transaction."""
    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    if isinstance(conn, AsyncConnection):
        raw = await conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        rows: list[asyncpg.Record] = await driver.fetch(sql, *args)
        return rows
    return await conn.fetch(sql, *args)


async def run(conn: Conn, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run prebuilt asyncpg SQL on the hot pool, a connection, or inside an ORM session's transaction."""
    return await _fetch(conn, sql, *args)


# ---------------------------------------------------------------------------------------------------------------
# Partitions


def partition_name(day: date) -> str:
    return f"{PARTITION_PREFIX}{day:%Y%m%d}"


def _partition_ddl(day: date) -> str:
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    # Names and bounds come from a date, never from input text.
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {POSITIONS} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


# SQLSTATEs of two sessions creating the same partition at once: the loser's IF NOT EXISTS saw no table yet.
_CREATE_RACES = {"42P07", "23505"}  # duplicate_table; unique_violation on pg_type's name


async def ensure_partitions(conn: Conn, days: Iterable[date]) -> list[str]:
    """Create the trail's partitions of these UTC days where missing; returns the names created. Safe to run
    from many processes at once. Brief: each CREATE takes a short lock on the parent table (lock_timeout 5 s)."""
    created: list[str] = []
    for day in sorted(set(days)):
        exists = await _fetch(conn, "SELECT to_regclass($1) IS NOT NULL AS found", partition_name(day))
        if exists[0]["found"]:
            continue
        try:
            await _fetch(conn, "SET lock_timeout = '5s'")
            await _fetch(conn, _partition_ddl(day))
        except asyncpg.PostgresError as exc:
            if getattr(exc, "sqlstate", None) not in _CREATE_RACES:
                raise
        else:
            created.append(partition_name(day))
    return created


async def partition_days(conn: Conn) -> list[date]:
    """The UTC days that have a partition, oldest first."""
    rows = await _fetch(
        conn,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass($1) ORDER BY c.relname",
        POSITIONS,
    )
    days = []
    for row in rows:
        suffix = row["relname"].removeprefix(PARTITION_PREFIX)
        days.append(date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:8])))
    return days


# ---------------------------------------------------------------------------------------------------------------
# Ingest

# The channel on which the ingest announces that a person's newest fix moved (backend/tracking/stream.py listens).
LIVE_CHANNEL = "tracking_live"

# $1 tenant, $2 user, $3 device, $4 received_at, $5 source, then one array per column, in `IngestRows` order.
# When the newest fix moves, the statement also sends a NOTIFY on `LIVE_CHANNEL` with the new position and the
# person's team (what a subscriber's scope is judged by). A NOTIFY is delivered only when its transaction commits
# (here: the statement's own), so a failed or rolled-back batch announces nothing. The final WHERE makes the
# `notified` CTE run (a SELECT CTE nobody reads is skipped); it is always true.
INGEST_SQL = f"""
WITH batch AS (
    SELECT * FROM unnest(
        $6::uuid[], $7::timestamptz[], $8::timestamptz[], $9::float8[], $10::float8[], $11::real[], $12::real[],
        $13::real[], $14::real[], $15::real[], $16::bool[], $17::text[], $18::text[], $19::text[], $20::bool[],
        $21::text[]
    ) AS b(fix_id, recorded_at, captured_at, lat, lon, accuracy_m, altitude_m, speed_mps, bearing_deg, battery,
           charging, activity, event, provider, mock, reasons)
),
claimed AS (
    INSERT INTO tracking_fix_ids (tenant_id, fix_id, recorded_at)
    SELECT $1::uuid, fix_id, recorded_at FROM batch
    ON CONFLICT DO NOTHING
    RETURNING fix_id
),
stored AS (
    INSERT INTO {POSITIONS} (tenant_id, user_id, fix_id, device_id, recorded_at, captured_at, received_at, lat, lon,
                             accuracy_m, altitude_m, speed_mps, bearing_deg, battery, charging, activity, event,
                             provider, mock, source, reasons)
    SELECT $1::uuid, $2::uuid, b.fix_id, $3::text, b.recorded_at, b.captured_at, $4::timestamptz, b.lat, b.lon,
           b.accuracy_m, b.altitude_m, b.speed_mps, b.bearing_deg, b.battery, b.charging, b.activity, b.event,
           b.provider, b.mock, $5::text, COALESCE(string_to_array(NULLIF(b.reasons, ''), ','), '{{}}')
    FROM batch b JOIN claimed c ON c.fix_id = b.fix_id
    RETURNING fix_id, recorded_at, lat, lon, accuracy_m, speed_mps, bearing_deg, battery, charging, activity, event,
              mock
),
newest AS (
    INSERT INTO tracking_latest (tenant_id, user_id, fix_id, device_id, recorded_at, received_at, lat, lon,
                                 accuracy_m, speed_mps, bearing_deg, battery, charging, activity, event, mock, source)
    SELECT $1::uuid, $2::uuid, fix_id, $3::text, recorded_at, $4::timestamptz, lat, lon, accuracy_m, speed_mps,
           bearing_deg, battery, charging, activity, event, mock, $5::text
    FROM stored WHERE NOT mock ORDER BY recorded_at DESC LIMIT 1
    ON CONFLICT (tenant_id, user_id) DO UPDATE SET
        fix_id = excluded.fix_id, device_id = excluded.device_id, recorded_at = excluded.recorded_at,
        received_at = excluded.received_at, lat = excluded.lat, lon = excluded.lon,
        accuracy_m = excluded.accuracy_m, speed_mps = excluded.speed_mps, bearing_deg = excluded.bearing_deg,
        battery = excluded.battery, charging = excluded.charging, activity = excluded.activity,
        event = excluded.event, mock = excluded.mock, source = excluded.source
    WHERE tracking_latest.recorded_at < excluded.recorded_at
    RETURNING recorded_at, lat, lon, accuracy_m, speed_mps, bearing_deg, battery, charging, activity, source
),
notified AS (
    SELECT pg_notify('{LIVE_CHANNEL}', json_build_object(
        'tenant_id', $1::uuid, 'user_id', $2::uuid,
        'team_id', (SELECT u.team_id FROM users u WHERE u.tenant_id = $1::uuid AND u.id = $2::uuid),
        'team_path', (SELECT t.path FROM users u JOIN teams t ON t.tenant_id = $1::uuid AND t.id = u.team_id
                      WHERE u.tenant_id = $1::uuid AND u.id = $2::uuid),
        'recorded_at', n.recorded_at, 'lat', n.lat, 'lon', n.lon, 'accuracy_m', n.accuracy_m,
        'speed_mps', n.speed_mps, 'bearing_deg', n.bearing_deg, 'battery', n.battery, 'charging', n.charging,
        'activity', n.activity, 'source', n.source)::text)
    FROM newest n
)
SELECT fix_id FROM claimed WHERE (SELECT count(*) FROM notified) >= 0
"""  # noqa: S608 - the table name is this module's constant


@dataclass(slots=True)
class IngestRows:
    """A batch as columns (what `unnest` takes), one entry per fix, fix ids distinct. `reasons` are the fix's
    doubts joined by commas ('' for none): unnest cannot take an array of arrays of different lengths."""

    fix_id: list[UUID]
    recorded_at: list[datetime]
    captured_at: list[datetime]
    lat: list[float]
    lon: list[float]
    accuracy_m: list[float]
    altitude_m: list[float | None]
    speed_mps: list[float | None]
    bearing_deg: list[float | None]
    battery: list[float | None]
    charging: list[bool | None]
    activity: list[str | None]
    event: list[str | None]
    provider: list[str | None]
    mock: list[bool]
    reasons: list[str]

    @classmethod
    def empty(cls) -> IngestRows:
        return cls([], [], [], [], [], [], [], [], [], [], [], [], [], [], [], [])

    def columns(self) -> tuple[list[Any], ...]:
        return (
            self.fix_id,
            self.recorded_at,
            self.captured_at,
            self.lat,
            self.lon,
            self.accuracy_m,
            self.altitude_m,
            self.speed_mps,
            self.bearing_deg,
            self.battery,
            self.charging,
            self.activity,
            self.event,
            self.provider,
            self.mock,
            self.reasons,
        )

    def __len__(self) -> int:
        return len(self.fix_id)


def _missing_partition(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == "23514" and "no partition" in str(exc)


async def insert_fixes(
    conn: Conn,
    *,
    tenant_id: UUID,
    user_id: UUID,
    device_id: str,
    received_at: datetime,
    source: str,
    rows: IngestRows,
) -> set[UUID]:
    """Store a batch; returns the fix ids that were new (the others were stored before: duplicates). One
    statement, so the batch is stored whole or not at all."""
    if not rows:
        return set()
    args = (tenant_id, user_id, device_id, received_at, source, *rows.columns())
    try:
        found = await _fetch(conn, INGEST_SQL, *args)
    except asyncpg.PostgresError as exc:
        if not _missing_partition(exc):
            raise
        await ensure_partitions(conn, (moment.astimezone(UTC).date() for moment in rows.recorded_at))
        found = await _fetch(conn, INGEST_SQL, *args)
    return {row["fix_id"] for row in found}


# ---------------------------------------------------------------------------------------------------------------
# Reads

_FIXES_BETWEEN_SQL = f"""
SELECT fix_id, recorded_at, lat, lon, accuracy_m, speed_mps, bearing_deg, altitude_m, battery, charging, activity,
       event, mock, source, reasons
FROM {POSITIONS}
WHERE tenant_id = $1 AND user_id = $2 AND recorded_at >= $3 AND recorded_at < $4
ORDER BY recorded_at, fix_id
"""  # noqa: S608 - the table name is this module's constant


async def fixes_between(
    conn_or_session: Conn,
    tenant_id: UUID,
    user_id: UUID,
    start: datetime,
    end: datetime,
    *,
    max_speed_mps: float = VerdictPolicy().max_speed_mps,
) -> list[StoredFix]:
    """A person's trail from `start` (inclusive) to `end` (exclusive), by trusted time, ties by fix id: the same
    list whatever order the fixes arrived in. The derivations (stops, trips, geofence events, gaps) read this.

    Mocked fixes are included, with `mock` set and `mock_location` among their reasons: they are evidence
    (CONTRACT.md: nothing a phone sends is thrown away), never a place the person was. A fix that no neighbour
    could reach (`impossible_speed`, as a check-in's speed check judges it) is flagged here, against both its
    previous and its next believable fix, so a late batch that fills the gap around it changes the flag as it
    should and arrival order never does. `conn_or_session`: an asyncpg connection, the hot pool, or an ORM
    session (then inside its transaction)."""
    rows = await _fetch(conn_or_session, _FIXES_BETWEEN_SQL, tenant_id, user_id, start, end)
    fixes = [
        StoredFix(
            fix_id=row["fix_id"],
            recorded_at=row["recorded_at"],
            lat=row["lat"],
            lon=row["lon"],
            accuracy_m=row["accuracy_m"],
            speed_mps=row["speed_mps"],
            bearing_deg=row["bearing_deg"],
            altitude_m=row["altitude_m"],
            battery=row["battery"],
            charging=row["charging"],
            activity=row["activity"],
            event=row["event"],
            mock=row["mock"],
            source=row["source"],
            reasons=tuple(row["reasons"]),
        )
        for row in rows
    ]
    return flag_jumps(fixes, max_speed_mps)


def flag_jumps(fixes: Sequence[StoredFix], max_speed_mps: float) -> list[StoredFix]:
    """Mark `impossible_speed` on each fix (time-ordered, mocked ones skipped) that neither its previous nor its
    next fix could reach, as geo.verdict.judge judges a check-in's jump. A fix at either end of the span has one
    neighbour and is left alone: which of the two is wrong cannot be told. A cheap straight-line test first; the
    verdict's own check (accuracy circles forgiven) only for the few that fail it."""
    real = [index for index, fix in enumerate(fixes) if not fix.mock]
    policy = VerdictPolicy(max_speed_mps=max_speed_mps)
    flagged: set[int] = set()
    for position, index in enumerate(real):
        fix = fixes[index]
        before = fixes[real[position - 1]] if position > 0 else None
        after = fixes[real[position + 1]] if position + 1 < len(real) else None
        # The first and the last fix have one neighbour: which of the two is wrong cannot be told (yet).
        if before is None or after is None:
            continue
        if _too_fast(before, fix, policy) and _too_fast(fix, after, policy):
            flagged.add(index)
    if not flagged:
        return list(fixes)
    reason = Reason.IMPOSSIBLE_SPEED.value
    out = list(fixes)
    for index in flagged:
        fix = out[index]
        if reason not in fix.reasons:
            out[index] = _with_reason(fix, reason)
    return out


def _too_fast(a: StoredFix, b: StoredFix, policy: VerdictPolicy) -> bool:
    first, second = (a, b) if (a.recorded_at, a.fix_id) <= (b.recorded_at, b.fix_id) else (b, a)
    elapsed = max((second.recorded_at - first.recorded_at).total_seconds(), 1.0)
    if haversine_m(first.lat, first.lon, second.lat, second.lon) / elapsed <= policy.max_speed_mps:
        return False  # even without forgiving the accuracy circles: quick, and nearly always the answer
    verdict = judge(
        Fix(lat=second.lat, lon=second.lon, accuracy_m=second.accuracy_m, captured_at=second.recorded_at),
        CircleFence(lat=second.lat, lon=second.lon, radius_m=max(second.accuracy_m, 1.0)),
        received_at=second.recorded_at,
        policy=policy,
        prior=PriorFix(lat=first.lat, lon=first.lon, accuracy_m=first.accuracy_m, at=first.recorded_at),
    )
    return Reason.IMPOSSIBLE_SPEED in verdict.reasons


def _with_reason(fix: StoredFix, reason: str) -> StoredFix:
    from dataclasses import replace

    return replace(fix, reasons=(*fix.reasons, reason))


@dataclass(frozen=True, slots=True)
class LatestPosition:
    """A person's newest believable fix (mocked ones never move it), for the live view."""

    user_id: UUID
    fix_id: UUID
    device_id: str
    recorded_at: datetime
    received_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    speed_mps: float | None
    bearing_deg: float | None
    battery: float | None
    charging: bool | None
    activity: str | None
    event: str | None
    source: str


LATEST_SQL = """
SELECT user_id, fix_id, device_id, recorded_at, received_at, lat, lon, accuracy_m, speed_mps, bearing_deg, battery,
       charging, activity, event, source
FROM tracking_latest WHERE tenant_id = $1 AND user_id = ANY($2::uuid[])
"""


async def latest_positions(conn: Conn, tenant_id: UUID, user_ids: Sequence[UUID]) -> dict[UUID, LatestPosition]:
    """The newest fix of each of these people that has one (one index scan of `tracking_latest`)."""
    rows = await _fetch(conn, LATEST_SQL, tenant_id, list(user_ids))
    return {row["user_id"]: LatestPosition(**dict(row)) for row in rows}


def finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)

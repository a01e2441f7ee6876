"""What the server derives from a person's trail, per local day: stops, trips, gaps, presence at merchants and job
sites, geofence events (geo.movement computes them; this module loads, stores and schedules).

When fixes land (the ingest, whatever their order or lateness), `enqueue_days` queues one `tracking.derive_day`
job per (tenant, person, local day) they touch, after the ingest's statement has committed, and only if no such
job is already waiting: a phone that sends 50 batches of its offline morning causes one recompute, not 50. A job
in progress does not count as waiting (it may have read the trail before the new fixes), so the day is derived
again after it. `derive_day` replaces the day's derived rows in one transaction, under the day's row lock, so two
workers deriving the same day at once serialise and the later one reads the newer trail.

A local day is a day in the tenant's tracking time zone (`tracking_settings.timezone`, UTC by default). Territories
have no table yet (issue 12): fences are merchants and job sites.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.queue.service import DEFAULT_MAX_ATTEMPTS, Job
from backend.tenants.service import load_policy
from backend.tracking import queries
from backend.tracking.models import DerivedDay, FenceEvent, Gap, Presence, Stop, Trip
from backend.tracking.queries import Conn, Fetcher
from geo.distance import haversine_m
from geo.fence import CircleFence, Fence, PolygonFence
from geo.movement import MovementPolicy, Place, derive, usable
from geo.stored_fix import StoredFix

if TYPE_CHECKING:
    from backend.db.engine import Database

log = logging.getLogger("groundwork.tracking")

DERIVE_DAY = "tracking.derive_day"
POLICY = MovementPolicy()
_REACH_M = 250.0  # places this far from the trail (plus their radius) are watched
_SAMPLE_M = 25.0  # the trail is thinned to points this far apart to find the places near it
_MAX_PLACES = 2_000


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) in UTC (23 or 25 hours on a daylight-saving change)."""
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_days(moments: Iterable[datetime], zone: ZoneInfo) -> list[date]:
    return sorted({moment.astimezone(zone).date() for moment in moments})


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


# ---------------------------------------------------------------------------------------------------------------
# Scheduling

_ENQUEUE_SQL = f"""
INSERT INTO background_jobs (tenant_id, kind, payload, max_attempts)
SELECT $1::uuid, '{DERIVE_DAY}', p.payload, $4::int
FROM (
    SELECT jsonb_build_object('tenant_id', $1::uuid, 'user_id', $2::uuid, 'day', d) AS payload
    FROM unnest($3::text[]) AS d
) p
WHERE NOT EXISTS (
    SELECT 1 FROM background_jobs j
    WHERE j.tenant_id = $1::uuid AND j.kind = '{DERIVE_DAY}' AND j.done_at IS NULL AND j.failed_at IS NULL
      AND (j.locked_until IS NULL OR j.locked_until <= now()) AND j.payload = p.payload
)
RETURNING id
"""  # noqa: S608 - the kind is this module's constant


async def enqueue_days(conn: Fetcher | Conn, tenant_id: UUID, user_id: UUID, days: Sequence[date]) -> int:
    """Queue the recompute of these days of a person, unless one is already waiting. Returns how many were
    queued. Run after the fixes' commit (the hot pool is autocommit)."""
    if not days:
        return 0
    rows = await queries.run(
        conn, _ENQUEUE_SQL, tenant_id, user_id, [day.isoformat() for day in days], DEFAULT_MAX_ATTEMPTS
    )
    return len(rows)


# ---------------------------------------------------------------------------------------------------------------
# Places near a trail

_MERCHANTS_SQL = """
WITH pts AS (
    SELECT ST_Collect(ST_SetSRID(ST_MakePoint(x, y), 4326))::geography AS g
    FROM unnest($2::float8[], $3::float8[]) AS t(x, y)
)
SELECT p.id, ST_Y(p.location::geometry) AS lat, ST_X(p.location::geometry) AS lon,
       COALESCE(p.geofence_radius_m, $4) AS radius_m, ST_AsGeoJSON(p.geofence) AS polygon
FROM pois p, pts
WHERE p.tenant_id = $1 AND ST_DWithin(p.location, pts.g, $5 + COALESCE(p.geofence_radius_m, $4))
ORDER BY p.id
LIMIT $6
"""

_JOB_SITES_SQL = """
SELECT j.id, ST_Y(j.location::geometry) AS lat, ST_X(j.location::geometry) AS lon, j.geofence_radius_m AS radius_m
FROM jobs j
WHERE j.tenant_id = $1 AND j.assignee_id = $2 AND j.window_start < $4 AND j.window_end > $3
ORDER BY j.id
LIMIT $5
"""


def _thin(fixes: Sequence[StoredFix]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for fix in fixes:
        if not points or haversine_m(points[-1][0], points[-1][1], fix.lat, fix.lon) > _SAMPLE_M:
            points.append((fix.lat, fix.lon))
    return points[:10_000]


def _polygon(text: str | None) -> PolygonFence | None:
    if not text:
        return None
    try:
        ring = json.loads(text)["coordinates"][0]
        return PolygonFence(exterior=tuple((float(lat), float(lon)) for lon, lat in ring))
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # a fence geo cannot take: the merchant's circle stands in


async def places_near(
    session: AsyncSession,
    tenant_id: UUID,
    user_id: UUID,
    fixes: Sequence[StoredFix],
    start: datetime,
    end: datetime,
) -> list[Place]:
    """The merchants near the trail and the person's job sites of the day, with their fences."""
    points = _thin([fix for fix in fixes if usable(fix, POLICY)])
    places: list[Place] = []
    if points:
        default_radius = (await load_policy(session, tenant_id)).default_geofence_radius_m
        rows = await queries.run(
            session,
            _MERCHANTS_SQL,
            tenant_id,
            [lon for _, lon in points],
            [lat for lat, _ in points],
            default_radius,
            _REACH_M,
            _MAX_PLACES,
        )
        for row in rows:
            fence: Fence | None = _polygon(row["polygon"])
            if fence is None:
                fence = CircleFence(lat=row["lat"], lon=row["lon"], radius_m=max(float(row["radius_m"]), 1.0))
            places.append(Place("merchant", row["id"], fence))
    sites = await queries.run(session, _JOB_SITES_SQL, tenant_id, user_id, start, end, _MAX_PLACES)
    places.extend(
        Place("job_site", row["id"], CircleFence(row["lat"], row["lon"], max(float(row["radius_m"]), 1.0)))
        for row in sites
    )
    return places


# ---------------------------------------------------------------------------------------------------------------
# Deriving a day

_ZONE_SQL = "SELECT timezone FROM tracking_settings WHERE tenant_id = $1"


async def tracking_zone(conn: Conn, tenant_id: UUID) -> ZoneInfo:
    rows = await queries.run(conn, _ZONE_SQL, tenant_id)
    return zone_of(rows[0]["timezone"] if rows else None)


@dataclass(frozen=True, slots=True)
class Derived:
    fixes: int
    stops: int
    trips: int
    gaps: int
    presence: int
    events: int


def _place_ids(kind: str, place_id: UUID) -> dict[str, Any]:
    return {
        "place_kind": kind,
        "poi_id": place_id if kind == "merchant" else None,
        "job_id": place_id if kind == "job_site" else None,
    }


async def derive_day(
    session: AsyncSession, tenant_id: UUID, user_id: UUID, day: date, *, now: datetime | None = None
) -> Derived:
    """Recompute a person's day and replace its derived rows, in the session's transaction (the caller commits).
    The day's `tracking_days` row is written first: its lock serialises two derivations of the same day."""
    now = now or datetime.now(UTC)
    zone = await tracking_zone(session, tenant_id)
    await session.execute(
        pg_insert(DerivedDay)
        .values(tenant_id=tenant_id, user_id=user_id, day=day, timezone=zone.key, fixes=0, derived_at=now)
        .on_conflict_do_update(
            index_elements=["tenant_id", "user_id", "day"], set_={"derived_at": now, "timezone": zone.key}
        )
    )
    start, end = day_bounds(day, zone)
    fixes = await queries.fixes_between(session, tenant_id, user_id, start, end)
    places = await places_near(session, tenant_id, user_id, fixes, start, end)
    result = derive(fixes, places, POLICY)
    key = {"tenant_id": tenant_id, "user_id": user_id, "day": day}
    for model in (Stop, Trip, Gap, Presence, FenceEvent):
        await session.execute(
            delete(model).where(model.tenant_id == tenant_id, model.user_id == user_id, model.day == day)
        )
    rows: list[tuple[type[Any], list[dict[str, Any]]]] = [
        (
            Stop,
            [
                {**key, "seq": n, "started_at": s.started_at, "ended_at": s.ended_at, "lat": s.lat, "lon": s.lon}
                | {"radius_m": s.radius_m, "fixes": s.fixes}
                for n, s in enumerate(result.stops)
            ],
        ),
        (
            Trip,
            [
                {**key, "seq": n, "started_at": t.started_at, "ended_at": t.ended_at, "distance_m": t.distance_m}
                | {"fixes": t.fixes, "from_stop": t.from_stop, "to_stop": t.to_stop}
                for n, t in enumerate(result.trips)
            ],
        ),
        (
            Gap,
            [
                {**key, "seq": n, "started_at": g.started_at, "ended_at": g.ended_at, "cause": g.cause}
                for n, g in enumerate(result.gaps)
            ],
        ),
        (
            Presence,
            [
                {**key, "seq": n, "stop_seq": p.stop, "started_at": p.started_at, "ended_at": p.ended_at}
                | {"confidence": p.confidence, **_place_ids(p.place_kind, p.place_id)}
                for n, p in enumerate(result.presence)
            ],
        ),
        (
            FenceEvent,
            [
                {**key, "seq": n, "at": e.at, "kind": e.kind, **_place_ids(e.place_kind, e.place_id)}
                for n, e in enumerate(result.events)
            ],
        ),
    ]
    for model, values in rows:
        if values:
            await session.execute(insert(model), values)
    await session.execute(
        update(DerivedDay)
        .where(DerivedDay.tenant_id == tenant_id, DerivedDay.user_id == user_id, DerivedDay.day == day)
        .values(fixes=len(fixes))
    )
    return Derived(
        fixes=len(fixes),
        stops=len(result.stops),
        trips=len(result.trips),
        gaps=len(result.gaps),
        presence=len(result.presence),
        events=len(result.events),
    )


async def handle_derive_day(database: Database, job: Job) -> None:
    """The `tracking.derive_day` queue handler: one short transaction."""
    payload = job.payload
    async with database.session() as session:
        derived = await derive_day(
            session, UUID(payload["tenant_id"]), UUID(payload["user_id"]), date.fromisoformat(payload["day"])
        )
        await session.commit()
    log.debug("derived %s: %s", payload, derived)

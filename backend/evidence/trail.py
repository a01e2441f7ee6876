"""A claim judged against the person's trail (geo.trail), and the request to judge again when the trail grows.

A check-in that arrives after the fixes around it is judged against them at once (`trail_signals`). Fixes that
arrive after a check-in (a phone offline all morning sends its trail at noon) ask for the user's check-ins in
the affected time range to be judged again: `request_rejudge`, run by the ingest after its statement committed,
queues one `visits.rejudge` job per user, widening a job still waiting instead of queuing another, so a
morning's trail in a hundred batches is one job, not a hundred. The job (backend/visits/verdicts.py) is safe
to run twice: it judges the check-ins against what is stored, whoever judged them before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.queue.service import DEFAULT_MAX_ATTEMPTS
from backend.tenants.service import TenantPolicy
from geo.fence import Fence
from geo.stored_fix import StoredFix
from geo.trail import TrailCheckIn, TrailPolicy, TrailSignals, judge_trail, with_trail
from geo.verdict import Verdict as GeoVerdict

REJUDGE = "visits.rejudge"

# The trail's table (backend/tracking/models.py's POSITIONS), named here as this layer names the tables it reads
# (evidence sits below the field domains and imports none of them).
_POSITIONS = "tracking_positions"


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


def trail_policy(policy: TenantPolicy) -> TrailPolicy:
    """The trail's thresholds under a tenant's policy: its speed limit is the check-in's own."""
    return TrailPolicy(max_speed_mps=policy.verdict.max_speed_mps)


async def trail_signals(
    conn: Conn,
    tenant_id: UUID,
    user_id: UUID,
    fence: Fence,
    at: datetime,
    policy: TrailPolicy,
    *,
    rejudge_after_commit: bool = False,
) -> TrailSignals:
    """What the user's stored trail says about a claim to be inside `fence` at `at` (a trusted time). One range
    read of the trail (by user and trusted time), from as far back as a recording could be repeated from.
    `rejudge_after_commit`: a new claim, judged again once its transaction commits (see _TRAIL_AND_REQUEST_SQL)."""
    start, end = at - policy.reach, at + timedelta(seconds=policy.window_s, microseconds=1)
    if rejudge_after_commit:
        rows = await _fetch(conn, _TRAIL_AND_REQUEST_SQL, tenant_id, user_id, start, end, at, REJUDGE)
    else:
        rows = await _fetch(conn, _TRAIL_SQL, tenant_id, user_id, start, end)
    return judge_trail(TrailCheckIn(fence=fence, at=at), _trail_of(rows), policy)


async def with_trail_of(
    conn: Conn, tenant_id: UUID, user_id: UUID, fence: Fence, verdict: GeoVerdict, policy: TenantPolicy
) -> GeoVerdict:
    """The fix's verdict with what the stored trail says added (geo.trail.with_trail)."""
    signals = await trail_signals(
        conn, tenant_id, user_id, fence, verdict.trusted_captured_at, trail_policy(policy), rejudge_after_commit=True
    )
    if not signals.reasons:
        return verdict
    status, reasons = with_trail(verdict.reasons, verdict.confidence, signals, policy.verdict)
    return dataclasses.replace(verdict, status=status, reasons=reasons)


def affected_range(recorded: Iterable[datetime], policy: TrailPolicy | None = None) -> tuple[datetime, datetime] | None:
    """The check-in times (trusted) whose trail verdict fixes taken at these times can change; None for none."""
    times = list(recorded)
    if not times:
        return None
    policy = policy or TrailPolicy()
    return min(times) - timedelta(seconds=policy.window_s), max(times) + policy.reach


def _request_ctes(hit: str, start: str, end: str, kind: str) -> str:
    """The CTEs that ask for a re-judge of the user's check-ins in [start, end] (SQL expressions), when `hit` (a
    query) finds a row: a job of this user that no worker holds yet is widened to cover the range too (row-locked,
    so a worker claiming it at this moment is skipped, and a new job is queued instead), else a job is queued."""
    return f"""
hit AS ({hit}), waiting AS (
    SELECT id FROM background_jobs
    WHERE tenant_id = $1 AND kind = {kind} AND payload->>'user_id' = $2::text
      AND done_at IS NULL AND failed_at IS NULL AND locked_until IS NULL AND EXISTS (SELECT 1 FROM hit)
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
), widened AS (
    UPDATE background_jobs j SET payload = jsonb_build_object(
        'user_id', j.payload->>'user_id',
        'from', to_jsonb(LEAST((j.payload->>'from')::timestamptz, {start})),
        'to', to_jsonb(GREATEST((j.payload->>'to')::timestamptz, {end})))
    FROM waiting w WHERE j.id = w.id
    RETURNING j.id
), queued AS (
    INSERT INTO background_jobs (tenant_id, kind, payload, max_attempts)
    SELECT $1, {kind}, jsonb_build_object('user_id', $2::text, 'from', to_jsonb({start}), 'to', to_jsonb({end})),
           {DEFAULT_MAX_ATTEMPTS}
    WHERE EXISTS (SELECT 1 FROM hit) AND NOT EXISTS (SELECT 1 FROM widened)
    RETURNING id
)"""  # noqa: S608 - built at import from this module's constants, no input


# After an ingest: $1 tenant, $2 user, $3 from, $4 to (the check-in times the new fixes can speak for), $5 kind;
# only when the user has a check-in in that range at all.
_REQUEST_SQL = (
    "WITH"  # noqa: S608 - this module's constants
    + _request_ctes(
        "SELECT 1 FROM visits WHERE tenant_id = $1 AND user_id = $2"
        " AND check_in_trusted_at >= $3::timestamptz AND check_in_trusted_at <= $4::timestamptz LIMIT 1",
        "$3::timestamptz",
        "$4::timestamptz",
        "$5::text",
    )
    + "\nSELECT count(*) AS n FROM queued"
)

# What geo.trail reads of a fix: $1 tenant, $2 user, $3 from (inclusive), $4 to (exclusive), by trusted time.
_TRAIL_COLUMNS = "SELECT fix_id, recorded_at, lat, lon, accuracy_m, mock FROM " + _POSITIONS  # noqa: S608
_TRAIL_SQL = _TRAIL_COLUMNS + " WHERE tenant_id = $1 AND user_id = $2 AND recorded_at >= $3 AND recorded_at < $4"

# A new check-in's trail read, which also asks for the check-in ($5, its trusted time) to be judged again after it
# commits ($6 kind) when the user tracks at all: a batch of fixes committing while the check-in's transaction is
# open is missed by both sides otherwise (the check-in read the trail before the batch committed, the batch looked
# for check-ins before the check-in committed). The job sees what committed before the check-in did; what commits
# later finds the check-in. One round trip, the job visible only if the check-in commits.
_TRAIL_AND_REQUEST_SQL = (
    "WITH"  # noqa: S608 - this module's constants
    + _request_ctes(
        "SELECT 1 FROM tracking_latest WHERE tenant_id = $1 AND user_id = $2",
        "$5::timestamptz",
        "$5::timestamptz",
        "$6::text",
    )
    + "\n"
    + _TRAIL_SQL
)


def _trail_of(rows: Iterable[Any]) -> list[StoredFix]:
    return [
        StoredFix(
            fix_id=row["fix_id"],
            recorded_at=row["recorded_at"],
            lat=row["lat"],
            lon=row["lon"],
            accuracy_m=row["accuracy_m"],
            mock=row["mock"],
        )
        for row in rows
    ]


async def request_rejudge(
    conn: Fetcher, tenant_id: UUID, user_id: UUID, recorded: Iterable[datetime], policy: TrailPolicy | None = None
) -> None:
    """Ask for the user's check-ins near these newly stored fixes to be judged again. Call it after the fixes
    committed (the ingest's statement is its own transaction): a job queued before would run against a trail
    that does not have them yet. One statement; nothing is queued when no check-in is near."""
    found = affected_range(recorded, policy)
    if found is None:
        return
    await conn.fetch(_REQUEST_SQL, tenant_id, user_id, found[0], found[1], REJUDGE)

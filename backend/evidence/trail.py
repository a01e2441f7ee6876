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
from uuid import UUID

from backend.queue.service import DEFAULT_MAX_ATTEMPTS
from backend.tenants.service import TenantPolicy
from backend.tracking.queries import Conn, Fetcher, fixes_between
from geo.fence import Fence
from geo.trail import TrailCheckIn, TrailPolicy, TrailSignals, judge_trail, with_trail
from geo.verdict import Verdict as GeoVerdict

REJUDGE = "visits.rejudge"


def trail_policy(policy: TenantPolicy) -> TrailPolicy:
    """The trail's thresholds under a tenant's policy: its speed limit is the check-in's own."""
    return TrailPolicy(max_speed_mps=policy.verdict.max_speed_mps)


async def trail_signals(
    conn: Conn, tenant_id: UUID, user_id: UUID, fence: Fence, at: datetime, policy: TrailPolicy
) -> TrailSignals:
    """What the user's stored trail says about a claim to be inside `fence` at `at` (a trusted time). One range
    read of the trail (by user and trusted time), from as far back as a recording could be repeated from."""
    window = timedelta(seconds=policy.window_s)
    fixes = await fixes_between(conn, tenant_id, user_id, at - policy.reach, at + window + timedelta(microseconds=1))
    return judge_trail(TrailCheckIn(fence=fence, at=at), fixes, policy)


async def with_trail_of(
    conn: Conn, tenant_id: UUID, user_id: UUID, fence: Fence, verdict: GeoVerdict, policy: TenantPolicy
) -> GeoVerdict:
    """The fix's verdict with what the stored trail says added (geo.trail.with_trail)."""
    signals = await trail_signals(conn, tenant_id, user_id, fence, verdict.trusted_captured_at, trail_policy(policy))
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


# $1 tenant, $2 user, $3 from, $4 to, $5 kind, $6 max attempts. A job of this user that no worker holds yet is
# widened to cover the new range too (row-locked, so a worker claiming it at this moment is skipped, and then a new
# job is queued instead); only when the user has a check-in in the range at all.
_REQUEST_SQL = """
WITH hit AS (
    SELECT 1 FROM visits
    WHERE tenant_id = $1 AND user_id = $2 AND check_in_trusted_at >= $3 AND check_in_trusted_at <= $4
    LIMIT 1
), waiting AS (
    SELECT id FROM background_jobs
    WHERE tenant_id = $1 AND kind = $5 AND payload->>'user_id' = $2::text
      AND done_at IS NULL AND failed_at IS NULL AND locked_until IS NULL AND EXISTS (SELECT 1 FROM hit)
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
), widened AS (
    UPDATE background_jobs j SET payload = jsonb_build_object(
        'user_id', j.payload->>'user_id',
        'from', to_jsonb(LEAST((j.payload->>'from')::timestamptz, $3::timestamptz)),
        'to', to_jsonb(GREATEST((j.payload->>'to')::timestamptz, $4::timestamptz)))
    FROM waiting w WHERE j.id = w.id
    RETURNING j.id
)
INSERT INTO background_jobs (tenant_id, kind, payload, max_attempts)
SELECT $1, $5, jsonb_build_object('user_id', $2::text, 'from', to_jsonb($3::timestamptz),
                                  'to', to_jsonb($4::timestamptz)), $6
WHERE EXISTS (SELECT 1 FROM hit) AND NOT EXISTS (SELECT 1 FROM widened)
"""


async def request_rejudge(
    conn: Fetcher, tenant_id: UUID, user_id: UUID, recorded: Iterable[datetime], policy: TrailPolicy | None = None
) -> None:
    """Ask for the user's check-ins near these newly stored fixes to be judged again. Call it after the fixes
    committed (the ingest's statement is its own transaction): a job queued before would run against a trail
    that does not have them yet. One statement; nothing is queued when no check-in is near."""
    found = affected_range(recorded, policy)
    if found is None:
        return
    await conn.fetch(_REQUEST_SQL, tenant_id, user_id, found[0], found[1], REJUDGE, DEFAULT_MAX_ATTEMPTS)

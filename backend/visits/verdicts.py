"""Verdicts that change after the fact: a visit's check-in judged again when its trail grows, and the history.

A phone offline all morning sends its check-ins and its trail in whatever order the queues drain. The check-in is
judged against the trail stored when it arrives (visits.service.check_in, through evidence.trail); every batch of
fixes that lands later queues a `visits.rejudge` job for that user and the time range the fixes can speak for
(evidence.trail.request_rejudge). The job judges each check-in of the range against the whole stored trail; the
fix's own reasons stay, the trail's are replaced by what the trail says now (geo.trail.with_trail), so the final
verdict depends only on what arrived, never on the order. A verdict that changes is written with a row in
`visit_verdict_history` (old and new status and reasons, why, when by the job's clock), and the visit (and its
merchant, whose record shows recent visits) is bumped in the sync feed, so the phone's next pull carries the new
verdict. The check-in itself is never dropped or hidden: a rejected check-in stays a stored visit with its evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Uuid, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import not_found
from backend.evidence.trail import REJUDGE, trail_policy, trail_signals
from backend.leads.service import bump_merchants
from backend.queue.service import Handler, Job, PermanentFailure
from backend.tenants.service import load_policy
from backend.visits.models import Visit, VisitVerdictChange
from backend.visits.service import VISITS, _fence_of
from geo.trail import with_trail
from geo.verdict import Reason
from mobile_contract import visits as wire
from mobile_contract.location import VerdictReason, VerdictStatus
from sync.feed import Change, record_changes

__all__ = ["LATE_FIXES", "REJUDGE", "history", "rejudge", "rejudge_handler"]

LATE_FIXES = "late_fixes"

Clock = Callable[[], datetime]

# The user's check-ins in a trusted-time range with their merchant's fence, locked: two jobs of one user (the
# queue is at least once) take turns, and each judges against the trail as it is when it holds the rows.
_CHECK_INS = text(
    """
    SELECT v.id, v.poi_id, v.check_in_trusted_at AS at, v.check_in_status AS status,
           v.check_in_reasons AS reasons, v.check_in_confidence AS confidence,
           ST_Y(p.location::geometry) AS poi_lat, ST_X(p.location::geometry) AS poi_lon,
           p.geofence_radius_m AS radius_m,
           CASE WHEN p.geofence IS NULL THEN NULL ELSE ST_AsGeoJSON(p.geofence)::jsonb END AS polygon
    FROM visits v JOIN pois p ON p.tenant_id = v.tenant_id AND p.id = v.poi_id
    WHERE v.tenant_id = :tenant_id AND v.user_id = :user_id
      AND v.check_in_trusted_at >= :start AND v.check_in_trusted_at <= :end
    ORDER BY v.check_in_trusted_at, v.id
    FOR UPDATE OF v
    """
).bindparams(
    bindparam("tenant_id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("start", type_=DateTime(timezone=True)),
    bindparam("end", type_=DateTime(timezone=True)),
)


async def rejudge(
    session: AsyncSession, tenant_id: UUID, user_id: UUID, start: datetime, end: datetime, *, now: datetime
) -> int:
    """Judge the user's check-ins with trusted times in [start, end] against their stored trail again; record
    every verdict that changes. Returns how many changed. Runs in the caller's transaction."""
    policy = await load_policy(session, tenant_id)
    thresholds = trail_policy(policy)
    rows = (
        await session.execute(_CHECK_INS, {"tenant_id": tenant_id, "user_id": user_id, "start": start, "end": end})
    ).all()
    changed: list[Any] = []
    for row in rows:
        fence = _fence_of(row.poi_lat, row.poi_lon, row.radius_m, row.polygon, policy.default_geofence_radius_m)
        signals = await trail_signals(session, tenant_id, user_id, fence, row.at, thresholds)
        status, reasons = with_trail([Reason(r) for r in row.reasons], row.confidence, signals, policy.verdict)
        new_reasons = [reason.value for reason in reasons]
        if new_reasons == list(row.reasons):
            continue  # the trail says what it said: nothing moves (not even the status, whatever the policy now)
        await session.execute(
            update(Visit)
            .where(Visit.tenant_id == tenant_id, Visit.id == row.id)
            .values(check_in_status=status.value, check_in_reasons=new_reasons, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            insert(VisitVerdictChange).values(
                tenant_id=tenant_id,
                visit_id=row.id,
                claim="check_in",
                old_status=row.status,
                old_reasons=list(row.reasons),
                new_status=status.value,
                new_reasons=new_reasons,
                why=LATE_FIXES,
                changed_at=now,
            )
        )
        changed.append(row)
    if changed:
        await record_changes(session, tenant_id, [Change(user_id, VISITS, row.id) for row in changed])
        await bump_merchants(session, tenant_id, {row.poi_id for row in changed})
    return len(changed)


def rejudge_handler(clock: Clock) -> Handler:
    """The queue handler of `visits.rejudge` jobs ({user_id, from, to}), with the clock that stamps history."""

    async def handle(database: Any, job: Job) -> None:
        try:
            user_id = UUID(job.payload["user_id"])
            start = datetime.fromisoformat(job.payload["from"])
            end = datetime.fromisoformat(job.payload["to"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentFailure(f"not a re-judge payload: {job.payload!r}") from exc
        if job.tenant_id is None:
            raise PermanentFailure("a re-judge job names its tenant")
        async with database.sessions() as session:
            await rejudge(session, job.tenant_id, user_id, start, end, now=clock())
            await session.commit()

    return handle


def system_clock() -> datetime:
    return datetime.now(UTC)


async def history(session: AsyncSession, principal: Principal, visit_id: UUID) -> wire.VerdictHistory:
    """A visit's verdict changes, oldest first, for whoever may see the visit (its user, their supervisors in
    scope); another tenant's visit, or one outside the caller's scope, is not found."""
    found = await session.scalar(
        select(Visit.id).where(
            Visit.id == visit_id,
            Visit.tenant_id == principal.tenant_id,
            visible_to(effective_scope(principal), Visit.user_id),
        ),
        scope_params(principal),
    )
    if found is None:
        raise not_found("visit")
    changes = await session.scalars(
        select(VisitVerdictChange)
        .where(VisitVerdictChange.tenant_id == principal.tenant_id, VisitVerdictChange.visit_id == visit_id)
        .order_by(VisitVerdictChange.id)
    )
    return wire.VerdictHistory(
        visit_id=visit_id,
        items=[
            wire.VerdictChange(
                claim=change.claim,
                old_status=VerdictStatus(change.old_status),
                old_reasons=[VerdictReason(r) for r in change.old_reasons],
                new_status=VerdictStatus(change.new_status),
                new_reasons=[VerdictReason(r) for r in change.new_reasons],
                why=change.why,
                changed_at=change.changed_at,
            )
            for change in changes
        ],
    )

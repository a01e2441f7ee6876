"""The supervisor's exceptions-first list of a day: what in the caller's scope deserves a look, most serious first.

- flagged check-ins: a visit's check-in or a job's arrival whose verdict is not `verified` (CONTRACT.md,
  "Verdicts"): `rejected` is severity 1, `uncertain` 2;
- short dwells: a check-in whose verdict carries the reason `short_dwell` (they checked in and left at once; the
  trail judgment of check-ins adds it). Listed as its own kind rather than as a flagged check-in;
- long gaps: the trail silent for at least `LONG_GAP_S` (30 min) between two usable fixes, from the derived gaps
  (`tracking_gaps`, kept by the derivation after each ingest: backend/tracking/derived.py), with the cause the
  phone gave and where the trail fell silent;
- reused photos: a job photo flagged `reused_photo` (backend/media/similar.py: first seen with another job).

All four come from one prebuilt statement per scope kind (the scope's Core predicate, compiled once, as in
live.py), run on the hot pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, bindparam, select

from backend.auth.models import User
from backend.auth.scopes import CALLER_TENANT_ID, effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.coordinates import point_out
from backend.errors import DomainError
from backend.pois.queries import CompiledQuery, compile_once
from backend.tracking.models import POSITIONS, Gap
from backend.tracking.queries import Fetcher
from mobile_contract import tracking as wire
from mobile_contract.auth import DataScope
from mobile_contract.errors import ErrorCode, FieldError
from mobile_contract.location import CrsName

LONG_GAP_S = 1800.0
SHORT_DWELL_REASON = "short_dwell"  # the verdict reason of a check-in followed by leaving at once
REUSED_PHOTO_FLAG = "reused_photo"  # mobile_contract.media.PhotoFlag.REUSED_PHOTO
_SEVERITY = {"rejected": 1, "uncertain": 2}


@dataclass(frozen=True, slots=True)
class ExceptionsQuery:
    sql: str
    param_names: tuple[str, ...]  # the scope's, then the day's start and end


@cache
def people_query(scope: DataScope) -> CompiledQuery:
    """The people (id, display name) a caller with this scope kind sees, in their tenant: the scope's predicate."""
    statement = cast(
        "Select[Any]",
        select(User.id, User.display_name).where(
            User.tenant_id == bindparam(CALLER_TENANT_ID), visible_to(scope, User.id)
        ),
    )
    return compile_once(statement)


@cache
def exceptions_query(scope: DataScope) -> ExceptionsQuery:
    """Flagged check-ins, flagged arrivals and reused photos of the people in `scope`, in one statement."""
    people = people_query(scope)
    t = people.param_names.index(CALLER_TENANT_ID) + 1
    start, end = len(people.param_names) + 1, len(people.param_names) + 2
    sql = f"""
WITH people AS ({people.sql})
SELECT 'visit' AS source, p.id AS user_id, p.display_name, v.checked_in_at AS at, v.check_in_status AS status,
       v.check_in_reasons AS reasons, ST_Y(v.check_in_location::geometry) AS lat,
       ST_X(v.check_in_location::geometry) AS lon, v.id AS visit_id, NULL::uuid AS job_id, NULL::uuid AS photo_id,
       po.name AS title, NULL::timestamptz AS ends_at
FROM people p
JOIN visits v ON v.tenant_id = ${t} AND v.user_id = p.id
JOIN pois po ON po.tenant_id = ${t} AND po.id = v.poi_id
WHERE v.checked_in_at >= ${start} AND v.checked_in_at < ${end}
  AND (v.check_in_status <> 'verified' OR '{SHORT_DWELL_REASON}' = ANY(v.check_in_reasons))
UNION ALL
SELECT 'arrival', p.id, p.display_name, (j.arrival_visit->>'trusted_at')::timestamptz, j.arrival_status,
       ARRAY(SELECT jsonb_array_elements_text(j.arrival_visit->'verdict'->'reasons')),
       (j.arrival_visit->'fix'->>'lat')::float8, (j.arrival_visit->'fix'->>'lon')::float8, NULL::uuid, j.id,
       NULL::uuid, j.customer_name, NULL::timestamptz
FROM people p
JOIN jobs j ON j.tenant_id = ${t} AND j.assignee_id = p.id
WHERE j.arrival_status IS NOT NULL AND j.arrival_status <> 'verified'
  AND (j.arrival_visit->>'trusted_at')::timestamptz >= ${start}
  AND (j.arrival_visit->>'trusted_at')::timestamptz < ${end}
UNION ALL
SELECT 'photo', p.id, p.display_name, ph.received_at, 'uncertain', ph.flags,
       ST_Y(jb.location::geometry), ST_X(jb.location::geometry), NULL::uuid, ph.job_id, ph.id, jb.customer_name,
       NULL::timestamptz
FROM people p
JOIN photos ph ON ph.tenant_id = ${t} AND ph.user_id = p.id
JOIN jobs jb ON jb.tenant_id = ${t} AND jb.id = ph.job_id
WHERE ph.received_at >= ${start} AND ph.received_at < ${end} AND '{REUSED_PHOTO_FLAG}' = ANY(ph.flags)
UNION ALL
SELECT 'gap', p.id, p.display_name, g.started_at, 'uncertain', ARRAY[g.cause]::text[], last.lat, last.lon,
       NULL::uuid, NULL::uuid, NULL::uuid, '', g.ended_at
FROM people p
JOIN {Gap.__tablename__} g ON g.tenant_id = ${t} AND g.user_id = p.id
LEFT JOIN LATERAL (
    SELECT tp.lat, tp.lon FROM {POSITIONS} tp
    WHERE tp.tenant_id = ${t} AND tp.user_id = p.id AND tp.recorded_at = g.started_at AND NOT tp.mock
    LIMIT 1
) last ON true
WHERE g.started_at >= ${start} AND g.started_at < ${end}
  AND g.ended_at - g.started_at >= interval '{int(LONG_GAP_S)} seconds'
"""  # noqa: S608 - compiled from our own Core statement and this module's constants; no input in the text
    return ExceptionsQuery(sql=sql, param_names=people.param_names)


def day_bounds(day: str | None, tz: str, now: datetime) -> tuple[date, ZoneInfo, datetime, datetime]:
    """A local day in a time zone, as UTC instants from midnight to midnight (23 or 25 hours on DST days)."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad("tz", f"Unknown time zone {tz!r}.") from None
    if day is None:
        local = now.astimezone(zone).date()
    else:
        try:
            local = date.fromisoformat(day)
        except ValueError:
            raise _bad("date", "Expected a date as YYYY-MM-DD.") from None
        if len(day) != 10:
            raise _bad("date", "Expected a date as YYYY-MM-DD.")
    start = datetime.combine(local, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(local + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return local, zone, start, end


def _bad(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.VALIDATION_FAILED, message, errors=[FieldError(field=field, message=message)])


async def exceptions(
    conn: Fetcher, principal: Principal, *, day: str | None, tz: str, now: datetime, crs: CrsName
) -> wire.ExceptionList:
    local, _zone, start, end = day_bounds(day, tz, now)
    query = exceptions_query(effective_scope(principal))
    params = scope_params(principal)
    args = [params[name] for name in query.param_names]
    rows = await conn.fetch(query.sql, *args, start, end)
    items = [_from_row(row, crs) for row in rows]
    items.sort(key=lambda item: (item.severity, -item.at.timestamp(), str(item.user_id)))
    return wire.ExceptionList(date=local.isoformat(), tz=tz, items=items)


def _from_row(row: Any, crs: CrsName) -> wire.TrackingException:
    reasons = list(row["reasons"] or [])
    point = point_out(row["lat"], row["lon"], crs) if row["lat"] is not None and row["lon"] is not None else None
    common: dict[str, Any] = {
        "user_id": row["user_id"],
        "display_name": row["display_name"],
        "at": row["at"],
        "reasons": reasons,
        "point": point,
        "visit_id": row["visit_id"],
        "job_id": row["job_id"],
        "photo_id": row["photo_id"],
    }
    if row["source"] == "gap":
        minutes = round((row["ends_at"] - row["at"]).total_seconds() / 60)
        return wire.TrackingException(
            kind=wire.ExceptionKind.LONG_GAP,
            severity=2,
            title=f"No position for {minutes} min",
            ends_at=row["ends_at"],
            **common,
        )
    if row["source"] == "photo":
        return wire.TrackingException(
            kind=wire.ExceptionKind.REUSED_PHOTO, severity=1, title=f"Reused photo on {row['title']}", **common
        )
    if SHORT_DWELL_REASON in reasons:
        return wire.TrackingException(
            kind=wire.ExceptionKind.SHORT_DWELL, severity=2, title=f"Left {row['title']} at once", **common
        )
    what = "Check-in at" if row["source"] == "visit" else "Arrival at"
    return wire.TrackingException(
        kind=wire.ExceptionKind.FLAGGED_CHECK_IN,
        severity=_SEVERITY.get(row["status"], 2),
        title=f"{what} {row['title']}: {row['status']}",
        **common,
    )

"""The supervisor's live view: everyone in the caller's data scope with their newest fix, what they are doing
(moving / stopped / offline), their battery, and the visit or job they are on.

Hot read, so prebuilt SQL on the hot pool (asyncpg): per scope kind, the people in scope are the same Core
predicate every list uses (`backend.auth.scopes.visible_to`), compiled once, and wrapped in hand-written SQL that
joins the newest fix (`tracking_latest`, one index probe a person) and the open visit and job (one index probe
each, LATERAL). One statement, one round trip, whatever the team's size.

What "moving", "stopped" and "offline" mean (documented in the README, and sent with every answer):
- offline: the newest fix is older than `OFFLINE_AFTER_S` (10 minutes: the app batches every minute or two, a
  stock client reports every 30-300 s), or the person never sent one;
- moving: the fix's speed is at least `MOVING_FROM_MPS` (0.8 m/s, a slow walk; GPS jitter standing still reads
  0-0.5), or, when the phone sent no speed, its activity is a moving one (walking, running, cycling, driving);
- stopped: otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

import asyncpg
from sqlalchemy import Select, bindparam, select

from backend.auth.models import User
from backend.auth.scopes import CALLER_TENANT_ID, effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.coordinates import point_out
from backend.pois.queries import CompiledQuery, compile_once
from backend.tracking.queries import Fetcher
from mobile_contract import tracking as wire
from mobile_contract.auth import DataScope
from mobile_contract.location import CrsName

OFFLINE_AFTER_S = 600
MOVING_FROM_MPS = 0.8
MOVING_ACTIVITIES = frozenset(
    {"walking", "running", "on_foot", "on_bicycle", "cycling", "in_vehicle", "automotive", "driving", "moving"}
)
# Job statuses in which the technician is at the site: the job they are "on".
ON_SITE_JOB_STATUSES = ("arrived", "verification")


def live_state(age_s: float | None, speed_mps: float | None, activity: str | None) -> wire.LiveState:
    """The one rule for moving / stopped / offline (see the module's docstring)."""
    if age_s is None or age_s > OFFLINE_AFTER_S:
        return wire.LiveState.OFFLINE
    if speed_mps is not None:
        return wire.LiveState.MOVING if speed_mps >= MOVING_FROM_MPS else wire.LiveState.STOPPED
    if activity is not None and activity.lower() in MOVING_ACTIVITIES:
        return wire.LiveState.MOVING
    return wire.LiveState.STOPPED


@dataclass(frozen=True, slots=True)
class LiveQuery:
    compiled: CompiledQuery
    tenant_arg: int  # the $n of the caller's tenant, reused by the joins


@cache
def live_query(scope: DataScope) -> LiveQuery:
    """The live view's SQL for one scope kind, built once."""
    statement = cast(
        "Select[Any]",
        select(User.id, User.display_name, User.role, User.team_id).where(
            User.tenant_id == bindparam(CALLER_TENANT_ID),
            User.is_active.is_(True),
            visible_to(scope, User.id),
        ),
    )
    people = compile_once(statement)
    t = people.param_names.index(CALLER_TENANT_ID) + 1
    statuses = ", ".join(f"'{status}'" for status in ON_SITE_JOB_STATUSES)  # constants of this module
    sql = f"""
WITH people AS ({people.sql})
SELECT p.id AS user_id, p.display_name, p.role, p.team_id,
       l.recorded_at, l.lat, l.lon, l.accuracy_m, l.speed_mps, l.bearing_deg, l.battery, l.charging, l.activity,
       l.source,
       ov.id AS visit_id, ov.poi_id, ov.poi_name, ov.checked_in_at, ov.check_in_status,
       oj.id AS job_id, oj.status AS job_status, oj.customer_name, oj.address
FROM people p
LEFT JOIN tracking_latest l ON l.tenant_id = ${t} AND l.user_id = p.id
LEFT JOIN LATERAL (
    SELECT v.id, v.poi_id, po.name AS poi_name, v.checked_in_at, v.check_in_status
    FROM visits v JOIN pois po ON po.tenant_id = ${t} AND po.id = v.poi_id
    WHERE v.tenant_id = ${t} AND v.user_id = p.id AND v.status = 'open'
    ORDER BY v.checked_in_at DESC LIMIT 1
) ov ON true
LEFT JOIN LATERAL (
    SELECT j.id, j.status, j.customer_name, j.address
    FROM jobs j
    WHERE j.tenant_id = ${t} AND j.assignee_id = p.id AND j.status IN ({statuses})
    ORDER BY j.updated_at DESC LIMIT 1
) oj ON true
ORDER BY p.display_name, p.id
"""  # noqa: S608 - the scope's SQL is compiled from our own Core statement; no input in the text
    return LiveQuery(CompiledQuery(sql=sql, param_names=people.param_names), t)


def position_out(row: Any, now: datetime, crs: CrsName) -> wire.LivePosition:
    return wire.LivePosition(
        point=point_out(row["lat"], row["lon"], crs),
        accuracy_m=round(float(row["accuracy_m"]), 1),
        recorded_at=row["recorded_at"],
        age_s=round(max((now - row["recorded_at"]).total_seconds(), 0.0), 1),
        speed_mps=_rounded(row["speed_mps"]),
        bearing_deg=_rounded(row["bearing_deg"]),
        activity=row["activity"],
        source=row["source"],
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def _person(row: asyncpg.Record, now: datetime, crs: CrsName) -> wire.LivePerson:
    position = position_out(row, now, crs) if row["recorded_at"] is not None else None
    state = live_state(position.age_s if position else None, row["speed_mps"], row["activity"] if position else None)
    visit = (
        wire.LiveVisit(
            id=row["visit_id"],
            poi_id=row["poi_id"],
            poi_name=row["poi_name"],
            checked_in_at=row["checked_in_at"],
            check_in_status=row["check_in_status"],
        )
        if row["visit_id"] is not None
        else None
    )
    job = (
        wire.LiveJob(
            id=row["job_id"], status=row["job_status"], customer_name=row["customer_name"], address=row["address"]
        )
        if row["job_id"] is not None
        else None
    )
    return wire.LivePerson(
        user_id=row["user_id"],
        display_name=row["display_name"],
        role=row["role"],
        team_id=row["team_id"],
        state=state,
        position=position,
        battery=_rounded(row["battery"]),
        charging=row["charging"],
        open_visit=visit,
        open_job=job,
    )


async def live_view(conn: Fetcher, principal: Principal, *, now: datetime, crs: CrsName) -> wire.LiveView:
    """Everyone the caller may see, in one statement; `now` is the clock the ages and states are judged by."""
    query = live_query(effective_scope(principal))
    rows = await conn.fetch(query.compiled.sql, *query.compiled.args(scope_params(principal)))
    return wire.LiveView(
        as_of=now,
        offline_after_s=OFFLINE_AFTER_S,
        moving_from_mps=MOVING_FROM_MPS,
        items=[_person(row, now, crs) for row in rows],
    )


__all__ = ["MOVING_FROM_MPS", "OFFLINE_AFTER_S", "live_state", "live_view", "position_out"]

"""Assignment: who takes a job. The technicians a dispatcher may assign, the candidates for a job with the hard
filters' verdicts and a score, the choice and its explanation, the pool of open jobs a technician may take, and
the technicians' dispatch profiles.

Below the field domains: the jobs domain asks here whom to assign and then takes the step itself (its rules, its
audit trail, its notifications). Rule-based assignment (tenant rules, groups, round-robin) grows here. Dispatch and
visibility agree: the candidates a dispatcher is offered are those in their data scope, whom `job_visible_to`
keeps the job visible for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Float, literal, literal_column, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.assignment.models import TechnicianProfile
from backend.assignment.rules import ACTIVE_FOR_LOAD, job_group, record_decision
from backend.auth.models import User
from backend.auth.permissions import require
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from backend.paging import decode_cursor, encode_cursor
from geo.postgis import KNN_WITHOUT_INDEX_ORDER, degrees_sql, is_knn_order_error, point_ewkt
from mobile_contract import jobs as wire
from mobile_contract.admin import Feature
from mobile_contract.auth import DataScope, Role
from mobile_contract.errors import ErrorCode
from mobile_contract.location import Point

# Who dispatches: creates jobs, assigns them, edits technicians' profiles.
DISPATCHERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)

# -- choosing ----------------------------------------------------------------------------------------------------

_CANDIDATES_SQL = """
    WITH job AS (SELECT * FROM jobs WHERE id = :job_id AND tenant_id = :tenant_id),
    load AS (
        -- jobs already on the job's day (UTC), per technician: a range on window_start, so the index serves it
        SELECT j.assignee_id, count(*) AS n FROM jobs j, job
        WHERE j.tenant_id = :tenant_id AND j.status = ANY(:active)
          AND j.window_start >= date_trunc('day', job.window_start)
          AND j.window_start < date_trunc('day', job.window_start) + interval '1 day'
          AND j.id <> job.id
        GROUP BY j.assignee_id
    ),
    recent AS (
        SELECT j.assignee_id, count(*) AS n FROM jobs j
        WHERE j.tenant_id = :tenant_id AND j.assigned_at > now() - interval '7 days'
        GROUP BY j.assignee_id
    )
    SELECT u.id, u.display_name, tp.available, tp.daily_cap,
           job.region = ANY(tp.regions) AS in_region,
           job.required_skills <@ tp.skills AS skilled,
           ST_Distance(tp.location, job.location, false) AS distance_m,
           coalesce(load.n, 0) AS load, coalesce(recent.n, 0) AS recent
    FROM technician_profiles tp
    JOIN users u ON u.id = tp.user_id AND u.is_active AND u.role = 'technician'
    CROSS JOIN job
    LEFT JOIN load ON load.assignee_id = u.id
    LEFT JOIN recent ON recent.assignee_id = u.id
    WHERE tp.tenant_id = :tenant_id
"""
# Two statements rather than one with "(:only IS NULL OR u.id = :only)": a prepared plan for that predicate
# misjudges how many technicians it keeps, and automatic dispatch paid ~25% for it (measured in bench/).
_CANDIDATES = text(_CANDIDATES_SQL)
_CANDIDATE = text(_CANDIDATES_SQL + "  AND u.id = :only\n")

# Score weights (lower is better): 10 km of travel weighs as much as a full day's load, or as much as being
# one week's average number of jobs ahead of the others.
DISTANCE_KM_WEIGHT = 0.1
LOAD_WEIGHT = 1.0
FAIRNESS_WEIGHT = 1.0


async def assignable_by(session: AsyncSession, dispatcher: Principal) -> set[UUID] | None:
    """The technicians a dispatcher may assign: those in their data scope (None: the whole tenant). Dispatch
    and visibility agree: whoever dispatch picks, the dispatcher still sees the job."""
    scope = effective_scope(dispatcher)
    if scope is DataScope.ALL or dispatcher.role in (Role.OPS, Role.ADMIN):
        return None
    ids = await session.scalars(
        select(User.id).where(
            User.tenant_id == dispatcher.tenant_id, User.role == Role.TECHNICIAN.value, visible_to(scope, User.id)
        ),
        scope_params(dispatcher),
    )
    return set(ids)


async def candidates(
    session: AsyncSession,
    tenant_id: UUID,
    job_id: UUID,
    only: UUID | None = None,
    *,
    within: set[UUID] | None = None,
) -> list[wire.CandidateView]:
    """Technicians for the job with the hard filters' verdicts and a score. `within`: only these technicians
    are considered (a dispatcher's scope); None considers every technician of the tenant."""
    params: dict[str, Any] = {"job_id": job_id, "tenant_id": tenant_id, "active": list(ACTIVE_FOR_LOAD)}
    if only is not None:
        params["only"] = only
    rows = (await session.execute(_CANDIDATE if only is not None else _CANDIDATES, params)).all()
    if within is not None:
        rows = [r for r in rows if r.id in within]
    eligible_recent = [r.recent for r in rows]
    average_recent = sum(eligible_recent) / len(eligible_recent) if eligible_recent else 0.0
    views = []
    for r in rows:
        reasons = []
        if not r.in_region:
            reasons.append("region")
        if not r.skilled:
            reasons.append("skills")
        if not r.available:
            reasons.append("unavailable")
        if r.load >= r.daily_cap:
            reasons.append("daily_cap")
        score = None
        if not reasons:
            distance_term = (r.distance_m / 1000 if r.distance_m is not None else 50.0) * DISTANCE_KM_WEIGHT
            load_term = r.load / max(r.daily_cap, 1) * LOAD_WEIGHT
            fairness_term = (r.recent - average_recent) / max(average_recent, 1.0) * FAIRNESS_WEIGHT
            score = round(distance_term + load_term + fairness_term, 4)
        views.append(
            wire.CandidateView(
                technician_id=r.id,
                name=r.display_name,
                eligible=not reasons,
                reasons=reasons,
                distance_m=round(r.distance_m, 1) if r.distance_m is not None else None,
                load=r.load,
                recent=r.recent,
                score=score,
            )
        )
    views.sort(key=lambda v: (not v.eligible, v.score if v.score is not None else 0.0, str(v.technician_id)))
    return views


async def choose(
    session: AsyncSession,
    dispatcher: Principal,
    job_id: UUID,
    *,
    status: str,
    dry_run: bool,
    now: datetime | None = None,
) -> wire.DispatchDecision:
    """The best eligible technician within the dispatcher's scope and the group of the tenant's first matching
    job rule, and why (`status`: the job's, for the explanation when nobody fits). Chooses only: the caller takes
    the assign step. A real choice under a rule is stored as an assignment decision."""
    within = await assignable_by(session, dispatcher)
    group, rule_note = await job_group(session, dispatcher.tenant_id, job_id, now or datetime.now(UTC))
    if group is not None:  # the tenant's job rule names the group; the score still chooses within it
        within = group.members if within is None else within & group.members
    views = await candidates(session, dispatcher.tenant_id, job_id, within=within)
    chosen = views[0] if views and views[0].eligible else None
    scope_note = "" if within is None else " in your scope" if group is None else " in the rule's group"
    if chosen is None:
        explanation = (
            f"No technician{scope_note} passes the hard filters ({len(views)} considered); the job stays {status}."
        )
    else:
        explanation = (
            f"{chosen.name}: lowest score {chosen.score} (distance {chosen.distance_m} m, {chosen.load} jobs that day,"
            f" {chosen.recent} in 7 days) among {sum(v.eligible for v in views)} eligible of {len(views)}{scope_note}."
        )
    explanation += rule_note
    if group is not None and not dry_run:
        outcome = msgspec.structs.replace(
            group.outcome, chosen=chosen.technician_id if chosen else None, explanation=explanation
        )
        await record_decision(session, dispatcher.tenant_id, "job", group.version, outcome, now or datetime.now(UTC))
    return wire.DispatchDecision(
        job_id=job_id,
        chosen=chosen.technician_id if chosen else None,
        dry_run=dry_run,
        explanation=explanation,
        candidates=views,
    )


async def manual_choice(
    session: AsyncSession, dispatcher: Principal, job_id: UUID, technician_id: UUID
) -> wire.CandidateView:
    """A supervisor's choice, among the technicians in their scope; the hard filters still apply."""
    views = await candidates(
        session, dispatcher.tenant_id, job_id, only=technician_id, within=await assignable_by(session, dispatcher)
    )
    view = views[0] if views else None
    if view is None:
        raise not_found("technician")
    # A supervisor may override the soft score, but not the hard filters: those are facts about the work.
    if not view.eligible:
        raise DomainError(
            ErrorCode.NOT_ELIGIBLE,
            f"{view.name} cannot take this job: {', '.join(view.reasons)}.",
            reasons=view.reasons,
        )
    return view


async def may_grab(session: AsyncSession, technician: Principal, job_id: UUID) -> None:
    """A technician may take the job from the pool when they pass its hard filters; else NOT_ELIGIBLE, why."""
    views = await candidates(session, technician.tenant_id, job_id, only=technician.user_id)
    view = views[0] if views else None
    if view is None or not view.eligible:
        reasons = view.reasons if view else ["no technician profile"]
        raise DomainError(ErrorCode.NOT_ELIGIBLE, f"You cannot take this job: {', '.join(reasons)}.", reasons=reasons)


# -- the pool of open jobs ------------------------------------------------------------------------------------

POOL_AREA_DECIMALS = 2  # a pooled job's site is shown to 0.01 degree (~1 km) until someone takes it

_SITE_LAT_SQL, _SITE_LON_SQL = degrees_sql("jobs.location")  # the same spelling as jobs.reads.SITE_LAT_SQL

_POOL = text(  # the interpolated parts are the site's spelling (geo.postgis), constants, never input
    f"""
    WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g)
    SELECT jobs.id, jobs.job_type, jobs.region, jobs.required_skills, jobs.window_start, jobs.window_end,
           jobs.priority, jobs.policy, {_SITE_LAT_SQL} AS lat, {_SITE_LON_SQL} AS lon,
           jobs.location <-> here.g AS distance_m
    FROM jobs, here
    WHERE jobs.tenant_id = :tenant_id AND jobs.status = 'pooled'
      AND ST_DWithin(jobs.location, here.g, :radius, false)
    ORDER BY jobs.location <-> here.g, jobs.id LIMIT :limit
    """  # noqa: S608
)


_POOL_WITHOUT_INDEX_ORDER = text(str(_POOL.text) + "\n-- knn without index order")


async def pool_nearby(
    session: AsyncSession, principal: Principal, lat: float, lon: float, radius_m: float, limit: int
) -> list[wire.PoolJob]:
    """Open jobs nearest the technician, in the pool's own shape: what a technician needs to decide, not who the
    customer is. Only technicians take jobs from the pool."""
    if principal.role is not Role.TECHNICIAN:
        raise forbidden("Only technicians list the pool of open jobs.")
    params = {"lon": lon, "lat": lat, "tenant_id": principal.tenant_id, "radius": radius_m, "limit": limit}
    try:
        async with session.begin_nested():
            rows = (await session.execute(_POOL, params)).all()
    except DBAPIError as exc:
        if not is_knn_order_error(exc):
            raise
        # PostGIS's KNN on a point that (nearly) coincides with a job's: see geo.postgis.KNN_WITHOUT_INDEX_ORDER.
        async with session.begin_nested():
            for setting in KNN_WITHOUT_INDEX_ORDER.split(";"):
                await session.execute(text(setting))
            # Another statement text: the prepared one's cached plan would ignore the settings.
            rows = (await session.execute(_POOL_WITHOUT_INDEX_ORDER, params)).all()
            for reset in ("RESET enable_indexscan", "RESET enable_indexonlyscan"):
                await session.execute(text(reset))  # the rest of the request keeps its indexes
    return [
        wire.PoolJob(
            id=r.id,
            job_type=r.job_type,
            region=r.region,
            area=Point(lat=round(r.lat, POOL_AREA_DECIMALS), lon=round(r.lon, POOL_AREA_DECIMALS)),
            distance_m=round(r.distance_m, 1),
            required_skills=r.required_skills,
            window_start=r.window_start,
            window_end=r.window_end,
            priority=r.priority,
            policy=msgspec.convert(r.policy, wire.VerificationPolicy),
        )
        for r in rows
    ]


# -- technicians' dispatch profiles --------------------------------------------------------------------------------

_PROFILE_LAT, _PROFILE_LON = degrees_sql("technician_profiles.location")


async def list_technicians(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> wire.TechnicianPage:
    """Technicians in the caller's data scope with their dispatch profiles, by name (dispatchers only)."""
    await require(session, principal, Feature.MANAGE_TECHNICIANS, "Your role cannot list technicians.")
    lat = literal_column(_PROFILE_LAT, Float).label("lat")
    lon = literal_column(_PROFILE_LON, Float).label("lon")
    statement = (
        select(User.id, User.display_name, User.team_id, User.is_active, TechnicianProfile, lat, lon)
        .outerjoin(
            TechnicianProfile,
            (TechnicianProfile.user_id == User.id) & (TechnicianProfile.tenant_id == principal.tenant_id),
        )
        .where(
            User.tenant_id == principal.tenant_id,
            User.role == Role.TECHNICIAN.value,
            visible_to(effective_scope(principal), User.id),
        )
    )
    if cursor:
        name, after = decode_cursor(cursor, tuple[str, UUID])
        statement = statement.where(tuple_(User.display_name, User.id) > tuple_(literal(name), literal(after)))
    rows = (
        await session.execute(statement.order_by(User.display_name, User.id).limit(limit + 1), scope_params(principal))
    ).all()
    page = rows[:limit]
    items = []
    for r in page:
        profile = r.TechnicianProfile
        items.append(
            wire.TechnicianView(
                id=r.id,
                display_name=r.display_name,
                team_id=r.team_id,
                is_active=r.is_active,
                profile=None
                if profile is None
                else wire.TechnicianProfileView(
                    skills=list(profile.skills),
                    regions=list(profile.regions),
                    daily_cap=profile.daily_cap,
                    available=profile.available,
                    location=Point(lat=r.lat, lon=r.lon) if r.lat is not None else None,
                    location_at=profile.location_at,
                ),
            )
        )
    next_cursor = encode_cursor(page[-1].display_name, page[-1].id) if len(rows) > limit else None
    return wire.TechnicianPage(items=items, next_cursor=next_cursor)


async def set_profile(
    session: AsyncSession,
    principal: Principal,
    user_id: UUID,
    data: wire.TechnicianProfileIn,
    *,
    now: datetime | None = None,
) -> None:
    """A technician's dispatch profile (its location in WGS-84: the route converts the caller's `crs`)."""
    await require(session, principal, Feature.MANAGE_TECHNICIANS, "Your role cannot edit technician profiles.")
    user = await session.scalar(
        select(User).where(User.id == user_id, User.tenant_id == principal.tenant_id, User.role == "technician")
    )
    if user is None:
        raise not_found("technician")
    values: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "skills": sorted(set(data.skills)),
        "regions": sorted(set(data.regions)),
        "daily_cap": data.daily_cap,
        "available": data.available,
    }
    if data.location is not None:
        values["location"] = point_ewkt(data.location.lat, data.location.lon)
        values["location_at"] = now or datetime.now(UTC)
    statement = insert(TechnicianProfile).values(user_id=user_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["user_id"], set_=values))

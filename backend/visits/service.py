"""Visit rules: checking in and out at a merchant, judged by where the phone really was.

There is one implementation of "check in", whether it arrives online or, later, from an offline queue: both
call `check_in` with the time the request reached us and, for queued work, the time the action happened.
Every claim is stored with its verdict, rejected ones included.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import DateTime, Table, Uuid, bindparam, func, literal_column, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.errors import DomainError, not_found
from backend.events import service as events_service
from backend.evidence.positions import PRIOR_FIX_SQL, UNTRUSTWORTHY_REASONS
from backend.evidence.service import (
    action_time,
    evidence_column_names,
    evidence_columns,
    fix_evidence,
    judge_claim,
    to_geo_fix,
)
from backend.evidence.trail import with_trail_of
from backend.leads.service import bump_merchants, merchant_bump_from
from backend.paging import decode_cursor, encode_cursor
from backend.tasks import service as tasks_service
from backend.tenants.service import load_policy
from backend.visits.models import Visit
from geo.fence import CircleFence, Fence, PolygonFence
from geo.verdict import PriorFix, VerdictStatus, judge, trusted_capture_time
from geo.verdict import Verdict as GeoVerdict
from mobile_contract import location as wire_location
from mobile_contract import visits as wire
from mobile_contract.base import AwareDatetime
from mobile_contract.errors import ErrorCode
from sync.feed import Change, record_changes
from sync.tables import sync_changes

VISITS = "visits"


def _request_hash(data: msgspec.Struct) -> str:
    return hashlib.sha256(msgspec.json.encode(data)).hexdigest()


async def _merchant_fence(session: AsyncSession, tenant_id: UUID, poi_id: UUID, default_radius_m: float) -> Fence:
    row = (
        await session.execute(
            text(
                "SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, geofence_radius_m, "
                "CASE WHEN geofence IS NULL THEN NULL ELSE ST_AsGeoJSON(geofence)::jsonb END AS polygon "
                "FROM pois WHERE id = :id AND tenant_id = :tenant_id"
            ),
            {"id": poi_id, "tenant_id": tenant_id},
        )
    ).one_or_none()
    if row is None:
        raise not_found("merchant")
    if row.polygon:
        exterior = tuple((lat, lon) for lon, lat in row.polygon["coordinates"][0])
        return PolygonFence(exterior=exterior)
    radius = row.geofence_radius_m if row.geofence_radius_m is not None else default_radius_m
    return CircleFence(lat=row.lat, lon=row.lon, radius_m=radius)


async def _judge(
    session: AsyncSession,
    principal: Principal,
    poi_id: UUID,
    fix: wire_location.Fix,
    received_at: datetime,
    action_at: datetime,
) -> GeoVerdict:
    policy = await load_policy(session, principal.tenant_id)
    fence = await _merchant_fence(session, principal.tenant_id, poi_id, policy.default_geofence_radius_m)
    return await judge_claim(
        session, principal, fence, fix, received_at=received_at, action_at=action_at, policy=policy
    )


async def check_in(
    session: AsyncSession,
    principal: Principal,
    data: wire.CheckIn,
    *,
    received_at: datetime,
    action_at: datetime | None = None,
    queued_at: datetime | None = None,
) -> tuple[wire.Visit, bool]:
    """Record a check-in and its verdict. Returns the visit and whether it was recorded now (False: a replay).
    `queued_at` is when a phone queued it offline: the check-in's time when the phone did not say, but not part
    of what makes a retry the same check-in (a phone that queues it again later is answered as the first time).

    Two round trips (an offline push brings hundreds of these): one statement reads whether the id is taken,
    the merchant's fence and the user's prior position; one inserts the visit, its feed row, the merchant's bump
    for every phone that has it and (unless the verdict is rejected) link_visit()'s work, and returns what the
    answer needs. The tenant's policy is read once per transaction."""
    request_hash = _request_hash(data)
    acted_at = action_at or action_time(data.checked_in_at or queued_at, received_at, data.fix)
    policy = await load_policy(session, principal.tenant_id)
    geo_fix = to_geo_fix(data.fix)
    connection = await session.connection()
    found = (
        await connection.execute(
            _CHECK_IN_LOOKUP,
            {
                "visit_id": data.id,
                "poi_id": data.poi_id,
                "tenant_id": principal.tenant_id,
                "user_id": principal.user_id,
                "before": trusted_capture_time(geo_fix, received_at),
                "bad": UNTRUSTWORTHY_REASONS,
            },
        )
    ).one()
    if found.taken:
        return await _replay_of_taken(session, principal, data.id, request_hash)
    if found.poi_lat is None:
        raise not_found("merchant")
    fence = _fence_of(found.poi_lat, found.poi_lon, found.radius_m, found.polygon, policy.default_geofence_radius_m)
    prior = None
    if found.prior_at is not None:
        prior = PriorFix(lat=found.prior_lat, lon=found.prior_lon, accuracy_m=found.prior_accuracy_m, at=found.prior_at)
    verdict = judge(geo_fix, fence, received_at=received_at, policy=policy.verdict, prior=prior, action_at=acted_at)
    # The trail stored so far speaks at once (a check-in synced after its fixes); fixes that come later judge it
    # again (backend/visits/verdicts.py). One more round trip: a range read of the trail.
    verdict = await with_trail_of(session, principal.tenant_id, principal.user_id, fence, verdict, policy)
    # A check-in the server rejects (800 m away, mocked) is kept as evidence but is no visit of the merchant: only
    # the others count for the user's open work items there (linked in the same statement).
    linked = verdict.status is not VerdictStatus.REJECTED
    inserted = (
        await connection.execute(
            _INSERT_LINKED_CHECK_IN if linked else _INSERT_CHECK_IN,
            {
                **{
                    f"visit_{name}": value
                    for name, value in {
                        "id": data.id,
                        "tenant_id": principal.tenant_id,
                        "user_id": principal.user_id,
                        "poi_id": data.poi_id,
                        "status": wire.VisitStatus.OPEN.value,
                        "note": data.note,
                        "checked_in_at": acted_at,
                        "check_in_request_hash": request_hash,
                        **evidence_columns("check_in", data.fix, verdict, received_at),
                    }.items()
                },
                **({"writer": tasks_service.writer_of(principal)} if linked else {}),
            },
        )
    ).one_or_none()
    if inserted is None:
        # A concurrent request with the same id won the race: answer as a replay of it.
        return await _replay_of_taken(session, principal, data.id, request_hash)
    # A late visit may change the credit of the merchant's business events stored since (rejected ones too: they
    # are the reason given for a non-credit). Queued only when such events exist.
    await events_service.follow_up_recorded(session, principal.tenant_id, data.poi_id, acted_at)
    return to_wire(inserted), True


def _fence_of(lat: float, lon: float, radius_m: float | None, polygon: Any, default_radius_m: float) -> Fence:
    if polygon:
        exterior = tuple((lat, lon) for lon, lat in polygon["coordinates"][0])
        return PolygonFence(exterior=exterior)
    return CircleFence(lat=lat, lon=lon, radius_m=radius_m if radius_m is not None else default_radius_m)


# Whether the visit id is taken, the merchant's fence (as _merchant_fence reads it) and the user's latest
# believable position before the fix (as evidence.positions.VisitPositions reads it), in one round trip.
_CHECK_IN_LOOKUP = text(
    f"""
    SELECT EXISTS (SELECT 1 FROM visits WHERE tenant_id = :tenant_id AND id = :visit_id) AS taken,
           poi.lat AS poi_lat, poi.lon AS poi_lon, poi.geofence_radius_m AS radius_m, poi.polygon,
           prior.lat AS prior_lat, prior.lon AS prior_lon, prior.accuracy_m AS prior_accuracy_m, prior.at AS prior_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, geofence_radius_m,
               CASE WHEN geofence IS NULL THEN NULL ELSE ST_AsGeoJSON(geofence)::jsonb END AS polygon
        FROM pois WHERE id = :poi_id AND tenant_id = :tenant_id
    ) AS poi ON true
    LEFT JOIN LATERAL ({PRIOR_FIX_SQL}
    ) AS prior ON true
    """  # noqa: S608 - built once from this module's constant, no input
).bindparams(
    bindparam("visit_id", type_=Uuid),
    bindparam("poi_id", type_=Uuid),
    bindparam("tenant_id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("before", type_=DateTime(timezone=True)),
)


def _insert_check_in(*, link: bool = False) -> Any:
    """INSERT of a new visit that also writes its feed row and returns what to_wire() reads: nothing is read back
    after the write. Built once, with bound parameters (a statement built per call costs a compile)."""
    table = cast(Table, Visit.__table__)
    columns = [
        "id",
        "tenant_id",
        "user_id",
        "poi_id",
        "status",
        "note",
        "checked_in_at",
        "check_in_request_hash",
        *evidence_column_names("check_in"),
    ]
    new = (
        insert(table)
        # Bound as `visit_<column>`: an UPDATE nested in the same statement (link_visit_ctes) would take any bound
        # value named like one of its table's columns (id, tenant_id, status, ...) as a value to SET.
        .values({name: bindparam(f"visit_{name}", type_=table.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        .returning(table.c.tenant_id, *(table.c[name] for name in _WIRE_COLUMNS))
        .cte("new")
    )
    feed = (
        insert(sync_changes)
        .from_select(
            ["user_id", "collection", "record_id", "tenant_id", "op"],
            select(new.c.user_id, literal_column(f"'{VISITS}'"), new.c.id, new.c.tenant_id, literal_column("'upsert'")),
        )
        .on_conflict_do_update(
            index_elements=["user_id", "collection", "record_id"],
            set_={"op": literal_column("excluded.op"), "xid": text("pg_current_xact_id()"), "changed_at": func.now()},
        )
        .cte("feed")
    )
    # Every phone that has the merchant gets it again (its recent visits changed): leads' bump_merchants,
    # nested here, so only when the visit is new and without a statement of its own.
    bumped = merchant_bump_from(new.c.tenant_id, new.c.poi_id).cte("bumped")
    statement = select(new).add_cte(feed).add_cte(bumped)
    # `link`: the check-in also counts for the user's open work items there (tasks_service.link_visit, nested).
    return statement.add_cte(*tasks_service.link_visit_ctes(new)) if link else statement


# What to_wire() reads of a visit.
_WIRE_COLUMNS = [
    "id",
    "poi_id",
    "user_id",
    "status",
    "checked_in_at",
    "checked_out_at",
    "note",
    *(name for name in evidence_column_names("check_in") if name != "check_in_location"),
    *(name for name in evidence_column_names("check_out") if name != "check_out_location"),
]
_INSERT_CHECK_IN = _insert_check_in()
_INSERT_LINKED_CHECK_IN = _insert_check_in(link=True)


async def _replay_of_taken(
    session: AsyncSession, principal: Principal, visit_id: UUID, request_hash: str
) -> tuple[wire.Visit, bool]:
    replay = await _replay_check_in(session, principal, visit_id, request_hash)
    if replay is None:  # pragma: no cover - the row exists, _replay_check_in returns or raises
        raise not_found("visit")
    return replay, False


async def _replay_check_in(
    session: AsyncSession, principal: Principal, visit_id: UUID, request_hash: str
) -> wire.Visit | None:
    existing = await session.scalar(select(Visit).where(Visit.tenant_id == principal.tenant_id, Visit.id == visit_id))
    if existing is None:
        return None
    if existing.user_id != principal.user_id or existing.check_in_request_hash != request_hash:
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This visit id was already used with other content.")
    return to_wire(existing)


async def check_out(
    session: AsyncSession,
    principal: Principal,
    visit_id: UUID,
    data: wire.CheckOut,
    *,
    received_at: datetime,
    action_at: datetime | None = None,
    queued_at: datetime | None = None,
) -> wire.Visit:
    visit = await session.scalar(
        select(Visit)
        .where(Visit.id == visit_id, Visit.tenant_id == principal.tenant_id, Visit.user_id == principal.user_id)
        .with_for_update()
    )
    if visit is None:
        raise not_found("visit")
    request_hash = _request_hash(data)
    if visit.status == wire.VisitStatus.CLOSED.value:
        if visit.check_out_request_hash == request_hash:
            return to_wire(visit)  # a retried check-out
        raise DomainError(ErrorCode.VISIT_ALREADY_CLOSED, "This visit was already checked out.")
    claimed = data.checked_out_at or queued_at
    acted_at = max(action_at or action_time(claimed, received_at, data.fix), visit.checked_in_at)
    verdict = await _judge(session, principal, visit.poi_id, data.fix, received_at, acted_at)
    for column, value in evidence_columns("check_out", data.fix, verdict, received_at).items():
        setattr(visit, column, value)
    visit.status = wire.VisitStatus.CLOSED.value
    visit.checked_out_at = acted_at
    visit.check_out_request_hash = request_hash
    if data.note is not None:
        visit.note = data.note
    await record_changes(session, principal.tenant_id, [Change(principal.user_id, VISITS, visit.id)])
    await bump_merchants(session, principal.tenant_id, [visit.poi_id])
    await session.flush()
    await session.refresh(visit)
    return to_wire(visit)


async def get_visit(session: AsyncSession, principal: Principal, visit_id: UUID) -> wire.Visit:
    visit = await session.scalar(
        select(Visit).where(
            Visit.id == visit_id,
            Visit.tenant_id == principal.tenant_id,
            visible_to(effective_scope(principal), Visit.user_id),
        ),
        scope_params(principal),
    )
    if visit is None:
        raise not_found("visit")
    return to_wire(visit)


async def list_visits(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    poi_id: UUID | None,
    user_id: UUID | None,
) -> wire.VisitPage:
    """Visits the caller's data scope covers, newest first."""
    statement = select(Visit).where(
        Visit.tenant_id == principal.tenant_id, visible_to(effective_scope(principal), Visit.user_id)
    )
    if poi_id is not None:
        statement = statement.where(Visit.poi_id == poi_id)
    if user_id is not None:
        statement = statement.where(Visit.user_id == user_id)
    if cursor:
        at, after_id = decode_cursor(cursor, tuple[AwareDatetime, UUID])
        statement = statement.where(tuple_(Visit.checked_in_at, Visit.id) < tuple_(at, after_id))
    statement = statement.order_by(Visit.checked_in_at.desc(), Visit.id.desc()).limit(limit + 1)
    visits = (await session.scalars(statement, scope_params(principal))).all()
    items = [to_wire(v) for v in visits[:limit]]
    next_cursor = None
    if len(visits) > limit:
        last = visits[limit - 1]
        next_cursor = encode_cursor(last.checked_in_at, last.id)
    return wire.VisitPage(items=items, next_cursor=next_cursor)


def to_wire(visit: Any) -> wire.Visit:
    """A Visit, or any row with its columns (check_in returns the inserted row, not an ORM object)."""
    return wire.Visit(
        id=visit.id,
        poi_id=visit.poi_id,
        user_id=visit.user_id,
        status=wire.VisitStatus(visit.status),
        checked_in_at=visit.checked_in_at,
        checked_out_at=visit.checked_out_at,
        check_in=fix_evidence("check_in", visit),
        check_out=fix_evidence("check_out", visit) if visit.check_out_fix is not None else None,
        note=visit.note,
    )


async def fetch_for_sync(
    session: AsyncSession, tenant_id: UUID, user_id: UUID, ids: list[UUID]
) -> dict[UUID, wire.Visit]:
    """The sync collection: the user's own visits, with the server's verdicts."""
    visits = await session.scalars(
        select(Visit).where(Visit.tenant_id == tenant_id, Visit.user_id == user_id, Visit.id.in_(ids))
    )
    return {visit.id: to_wire(visit) for visit in visits}

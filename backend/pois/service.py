"""Merchant rules: the nearby search, the merchant view, adding a merchant from the field.

Coordinates here are WGS-84; routes convert other systems (GCJ-02, BD-09) at the edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Float, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User
from backend.auth.permissions import require
from backend.auth.scopes import effective_scope, scope_params, visible_to
from backend.auth.tokens import Principal
from backend.db.hotpool import HotPool
from backend.errors import DomainError, not_found
from backend.intake import names as merchant_names
from backend.intake.names import CHAIN_SPACING_M, NEAR_M, MerchantRecord, judge, search_terms
from backend.leads.pool import found_in_the_field
from backend.leads.privacy import contacts_visible
from backend.leads.service import claim, holder_view, merchants_on_phone
from backend.paging import decode_cursor, encode_cursor
from backend.pois.models import Poi, PoiContact
from backend.pois.queries import NearbyVariant, nearby_params, nearby_query
from backend.tasks import service as tasks_service
from backend.tenants.service import load_policy
from backend.visits.models import Visit
from geo.postgis import point_ewkt
from mobile_contract.admin import Feature
from mobile_contract.errors import ErrorCode
from mobile_contract.location import Point, Verdict, VerdictReason, VerdictStatus
from mobile_contract.pois import (
    Contact,
    DuplicateCandidate,
    Geofence,
    NearbyPage,
    OpenWorkItem,
    PoiCreate,
    PoiDetail,
    PoiSummary,
    PoolFilter,
    VisitBrief,
)
from sync.feed import Change, record_changes

RECENT_VISITS = 10


# -- nearby ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NearbySearch:
    lat: float
    lon: float
    radius_m: float
    limit: int
    pool: PoolFilter
    category: str | None
    name: str | None
    cursor: str | None


def _fingerprint(search: NearbySearch) -> str:
    """Ties a cursor to the search it came from: a cursor only continues the same search from the same place."""
    key = f"{search.lat:.7f}|{search.lon:.7f}|{search.radius_m}|{search.pool}|{search.category}|{search.name}"
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def _decode_cursor(search: NearbySearch, cursor: str) -> tuple[float, UUID]:
    distance, poi_id, fingerprint = decode_cursor(cursor, tuple[float, UUID, str])
    if fingerprint != _fingerprint(search):
        raise DomainError(ErrorCode.INVALID_CURSOR, "This cursor belongs to another search; start again without it.")
    return distance, poi_id


async def nearby(pool: HotPool, principal: Principal, search: NearbySearch) -> NearbyPage:
    after = _decode_cursor(search, search.cursor) if search.cursor else None
    scope = effective_scope(principal)
    variant = NearbyVariant(
        pool=search.pool,
        scope=scope if search.pool is PoolFilter.TEAM else None,
        by_category=search.category is not None,
        by_name=search.name is not None,
        after_cursor=after is not None,
    )
    query = nearby_query(variant)
    params = nearby_params(
        tenant_id=principal.tenant_id,
        caller_user_id=principal.user_id,
        caller_team_id=principal.team_id,
        lat=search.lat,
        lon=search.lon,
        radius_m=search.radius_m,
        limit=search.limit + 1,  # one more than asked tells whether another page exists
        category=search.category,
        name=search.name,
        after=after,
    )
    rows = await pool.fetch_knn(query.sql, *query.args(params))
    items = [
        PoiSummary(
            id=row[0],
            name=row[1],
            category=row[2],
            address=row[3],
            location=Point(lat=row[4], lon=row[5]),
            distance_m=round(row[6], 1),
            holder=holder_view(row[7], row[8]),
        )
        for row in rows[: search.limit]
    ]
    next_cursor = None
    if len(rows) > search.limit:
        last = rows[search.limit - 1]
        next_cursor = encode_cursor(last[6], last[0], _fingerprint(search))
    return NearbyPage(items=items, next_cursor=next_cursor)


# -- the merchant view ---------------------------------------------------------------------------------------

_POI_COLUMNS = (
    literal_column("ST_Y(pois.location::geometry)", Float).label("lat"),
    literal_column("ST_X(pois.location::geometry)", Float).label("lon"),
    literal_column("ST_AsGeoJSON(pois.geofence, 7)::jsonb", JSONB).label("geofence_json"),
)


async def get_detail(session: AsyncSession, principal: Principal, poi_id: UUID) -> PoiDetail:
    details = await load_details(session, principal, [poi_id])
    if poi_id not in details:
        raise not_found("merchant")
    return details[poi_id]


async def load_details(session: AsyncSession, principal: Principal, poi_ids: Sequence[UUID]) -> dict[UUID, PoiDetail]:
    """Merchant views of the caller's tenant, a few queries for any number of merchants (sync sends thousands)."""
    if not poi_ids:
        return {}
    holder = User.__table__.alias("holder")
    rows = (
        await session.execute(
            select(Poi, holder.c.display_name, *_POI_COLUMNS)
            .outerjoin(holder, holder.c.id == Poi.holder_id)
            .where(Poi.id.in_(poi_ids), Poi.tenant_id == principal.tenant_id)
        )
    ).all()
    if not rows:
        return {}
    found = [row[0].id for row in rows]
    contacts: dict[UUID, list[Contact]] = {}
    for c in await session.scalars(
        select(PoiContact)
        .where(PoiContact.poi_id.in_(found), PoiContact.tenant_id == principal.tenant_id)
        .order_by(PoiContact.created_at, PoiContact.id)
    ):
        contacts.setdefault(c.poi_id, []).append(Contact(id=c.id, name=c.name, role=c.role, phone=c.phone))
    # A private lead's key people's numbers: its holder's and their managers' only (backend/leads/privacy.py).
    private = set(found) - await contacts_visible(session, principal, {row[0].id: row[0].holder_id for row in rows})
    for poi_id in private & contacts.keys():
        contacts[poi_id] = [msgspec.structs.replace(c, phone=None) for c in contacts[poi_id]]
    visits = await _recent_visits(session, principal, found)
    work = await tasks_service.open_on_poi(session, principal.tenant_id, found)
    policy = await load_policy(session, principal.tenant_id)
    details = {}
    for row in rows:
        poi: Poi = row[0]
        mapping = row._mapping
        radius = poi.geofence_radius_m if poi.geofence_radius_m is not None else policy.default_geofence_radius_m
        details[poi.id] = PoiDetail(
            id=poi.id,
            name=poi.name,
            category=poi.category,
            address=poi.address,
            phone=poi.phone,
            location=Point(lat=mapping["lat"], lon=mapping["lon"]),
            geofence=Geofence(radius_m=radius, polygon=_polygon_points(mapping["geofence_json"])),
            holder=holder_view(poi.holder_id, row[1]),
            claimed_at=poi.claimed_at,
            created_at=poi.created_at,
            updated_at=poi.updated_at,
            contacts=contacts.get(poi.id, []),
            recent_visits=visits.get(poi.id, []),
            open_work_items=[
                OpenWorkItem(
                    id=w.id,
                    campaign_id=w.campaign_id,
                    campaign_title=w.title,
                    campaign_type=w.type,
                    assignee_id=w.assignee_id,
                    assignee_name=w.display_name,
                    status=w.status,
                )
                for w in work.get(poi.id, [])
            ],
        )
    return details


def _polygon_points(geojson: dict[str, Any] | None) -> list[Point] | None:
    if not geojson:
        return None
    exterior = geojson["coordinates"][0]
    return [Point(lat=lat, lon=lon) for lon, lat in exterior]


async def _recent_visits(
    session: AsyncSession, principal: Principal, poi_ids: Sequence[UUID]
) -> dict[UUID, list[VisitBrief]]:
    """The latest visits on each merchant that the caller's data scope lets them see."""
    scope = effective_scope(principal)
    ranked = (
        select(
            Visit.tenant_id,
            Visit.id,
            func.row_number()
            .over(partition_by=Visit.poi_id, order_by=(Visit.checked_in_at.desc(), Visit.id))
            .label("rank"),
        )
        .where(
            Visit.poi_id.in_(poi_ids),
            Visit.tenant_id == principal.tenant_id,
            visible_to(scope, Visit.user_id),
        )
        .subquery()
    )
    rows = (
        await session.execute(
            select(Visit, User.display_name)
            .join(ranked, (ranked.c.tenant_id == Visit.tenant_id) & (ranked.c.id == Visit.id))
            .join(User, User.id == Visit.user_id)
            .where(ranked.c.rank <= RECENT_VISITS)
            .order_by(Visit.checked_in_at.desc(), Visit.id),
            scope_params(principal),
        )
    ).all()
    result: dict[UUID, list[VisitBrief]] = {}
    for visit, name in rows:
        result.setdefault(visit.poi_id, []).append(
            VisitBrief(
                id=visit.id,
                user_id=visit.user_id,
                user_name=name,
                checked_in_at=visit.checked_in_at,
                checked_out_at=visit.checked_out_at,
                verdict=Verdict(
                    status=VerdictStatus(visit.check_in_status),
                    confidence=visit.check_in_confidence,
                    distance_m=visit.check_in_distance_m,
                    reasons=[VerdictReason(r) for r in visit.check_in_reasons],
                ),
            )
        )
    return result


async def fetch_for_sync(session: AsyncSession, principal: Principal, poi_ids: list[UUID]) -> dict[UUID, PoiDetail]:
    """The sync collection: merchants the user holds as leads or is targeted at by a work item of theirs."""
    on_phone = merchants_on_phone(principal.tenant_id, principal.user_id)
    in_scope = list(
        await session.scalars(
            select(Poi.id).where(Poi.tenant_id == principal.tenant_id, Poi.id.in_(poi_ids), Poi.id.in_(on_phone))
        )
    )
    return await load_details(session, principal, in_scope)


# -- adding a merchant from the field ------------------------------------------------------------------------


def _request_hash(data: PoiCreate) -> str:
    # `confirm_new` is how the BD answers a duplicate warning, not part of what the merchant is.
    identity = msgspec.structs.replace(data, confirm_new=False)
    return hashlib.sha256(msgspec.json.encode(identity)).hexdigest()


async def create(session: AsyncSession, principal: Principal, data: PoiCreate) -> tuple[PoiDetail, bool]:
    """Add a merchant. Returns the merchant view and whether it was created now (False: an idempotent replay)."""
    await require(session, principal, Feature.ADD_MERCHANTS, "Your role cannot add merchants.")
    request_hash = _request_hash(data)
    replay = await _replay_create(session, principal, data, request_hash)
    if replay is not None:
        return replay, False
    if not data.confirm_new:
        candidates = await find_duplicates(
            session, principal.tenant_id, data.name, data.location.lat, data.location.lon, data.phone
        )
        if candidates:
            raise DomainError(
                ErrorCode.POSSIBLE_DUPLICATE,
                "A merchant nearby is probably this shop. Open it instead, or resend with confirm_new=true.",
                candidates=[msgspec.to_builtins(c) for c in candidates],
            )
    found_at = datetime.now(UTC)
    inserted = await session.scalar(
        insert(Poi)
        .values(
            id=data.id,
            tenant_id=principal.tenant_id,
            name=data.name.strip(),
            category=data.category,
            address=data.address.strip(),
            search_terms=search_terms(data.name, data.address),
            phone=data.phone,
            location=point_ewkt(data.location.lat, data.location.lon),
            **claim(principal.user_id, found_at),  # whoever finds a merchant holds it as their lead
            source="field",
            created_by=principal.user_id,
            create_request_hash=request_hash,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        .returning(Poi.id)
    )
    if inserted is None:
        # A concurrent request with the same id won the race: answer as a replay of it.
        replay = await _replay_create(session, principal, data, request_hash)
        if replay is None:  # pragma: no cover - the row exists, so _replay_create returns or raises
            raise not_found("merchant")
        return replay, False
    for index, contact in enumerate(data.contacts):
        session.add(
            PoiContact(
                # Derived from the merchant's client id, so a replay can never add the contacts twice.
                id=UUID(bytes=hashlib.blake2b(data.id.bytes + bytes([index]), digest_size=16).digest()),
                tenant_id=principal.tenant_id,
                poi_id=data.id,
                name=contact.name,
                role=contact.role,
                phone=contact.phone,
            )
        )
    await found_in_the_field(session, principal.tenant_id, data.id, principal.user_id, found_at)
    await record_changes(session, principal.tenant_id, [Change(principal.user_id, "pois", data.id)])
    await session.flush()
    return await get_detail(session, principal, data.id), True


async def _replay_create(
    session: AsyncSession, principal: Principal, data: PoiCreate, request_hash: str
) -> PoiDetail | None:
    existing = await session.scalar(select(Poi).where(Poi.tenant_id == principal.tenant_id, Poi.id == data.id))
    if existing is None:
        return None
    if existing.create_request_hash == request_hash:
        return await get_detail(session, principal, data.id)
    raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT, "This merchant id was already used with different content.")


async def find_duplicates(
    session: AsyncSession, tenant_id: UUID, name: str, lat: float, lon: float, phone: str | None = None
) -> list[DuplicateCandidate]:
    """Merchants of this tenant that are probably the shop being added, judged by `backend.intake.names.judge`
    (brand and branch, every spelling, phone, distance): the one rule imports and the review queue use too."""
    rows = await session.execute(
        text(
            """
            WITH origin AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS g)
            SELECT p.id, p.name, p.address, p.phone, ST_Distance(p.location, origin.g, false) AS distance_m
            FROM pois p, origin
            WHERE p.tenant_id = :tenant_id
              AND ST_DWithin(p.location, origin.g, :radius, false)
              AND (ST_DWithin(p.location, origin.g, :near, false)
                   OR p.search_terms % :terms OR similarity(lower(p.name), lower(:name)) >= 0.3
                   OR (p.phone IS NOT NULL AND p.phone = :phone))
            ORDER BY p.location <-> origin.g
            LIMIT 50
            """
        ),
        {
            "lon": lon,
            "lat": lat,
            "name": name.strip(),
            "terms": search_terms(name),
            "phone": phone,
            "tenant_id": tenant_id,
            "radius": CHAIN_SPACING_M,
            "near": NEAR_M,
        },
    )
    new = MerchantRecord(name, phone)
    judged = [(r, judge(new, MerchantRecord(r.name, r.phone, r.address), r.distance_m)) for r in rows]
    return [
        DuplicateCandidate(
            id=r.id,
            name=r.name,
            address=r.address,
            distance_m=round(r.distance_m, 1),
            similarity=round(j.name_similarity, 3),
            verdict=j.verdict.value,
            reasons=list(j.reasons),
        )
        for r, j in sorted(judged, key=lambda rj: (rj[1].verdict is not merchant_names.Verdict.SAME, rj[0].distance_m))
        if j.verdict is not merchant_names.Verdict.DIFFERENT
    ][:5]

"""Territories: polygons per team (a district, a business circle). A place belongs to the smallest territory
covering it, by the one SQL function `territory_of(tenant_id, location)` (defined in the migration)."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

from shapely.geometry import Polygon
from shapely.validation import explain_validity
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.permissions import require
from backend.auth.tokens import Principal
from backend.errors import DomainError, forbidden, not_found
from mobile_contract.admin import Feature
from mobile_contract.assignment import TerritoryIn, TerritoryView
from mobile_contract.auth import Role
from mobile_contract.errors import ErrorCode
from mobile_contract.location import Point

READERS = (Role.SUPERVISOR, Role.OPS, Role.ADMIN)

# The spelling every caller uses for "the territory of this row's location".
TERRITORY_OF_SQL = "territory_of({table}.tenant_id, {table}.location)"


_MIN_AREA = 1e-10  # square degrees (~1 m2): less is points on a line, up to rounding


def polygon_ewkt(ring: list[tuple[float, float]]) -> str:
    """A validated polygon (ring of (lat, lon) in WGS-84) as EWKT; 422 when it is not a simple polygon."""
    coords = [(lon, lat) for lat, lon in ring]
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    if len(set(coords)) < 3:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "A territory needs at least 3 distinct points.")
    shape = Polygon(coords)
    if shape.is_valid and shape.area < _MIN_AREA:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "A territory must enclose an area (its points are on a line).")
    if not shape.is_valid:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"A territory must be a simple polygon: {explain_validity(shape)}."
        )
    points = ", ".join(f"{lon!r} {lat!r}" for lon, lat in coords)
    return f"SRID=4326;POLYGON(({points}))"


_VIEW_SQL = """
    SELECT id, name, team_id, updated_at, ST_AsGeoJSON(area, 7)::jsonb AS shape FROM territories
    WHERE tenant_id = :tenant_id
"""
_ONE = text(_VIEW_SQL + " AND id = :id")
_ALL = text(_VIEW_SQL + " ORDER BY name, id")


def _view(row: object) -> TerritoryView:
    shape = row.shape  # type: ignore[attr-defined]
    if isinstance(shape, str):
        shape = json.loads(shape)
    ring = [Point(lat=lat, lon=lon) for lon, lat in shape["coordinates"][0]]
    return TerritoryView(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        team_id=row.team_id,  # type: ignore[attr-defined]
        ring=ring,
        updated_at=row.updated_at,  # type: ignore[attr-defined]
    )


async def _check_team(session: AsyncSession, tenant_id: UUID, team_id: UUID | None) -> None:
    if team_id is None:
        return
    found = await session.scalar(
        text("SELECT 1 FROM teams WHERE tenant_id = :tenant_id AND id = :id"), {"tenant_id": tenant_id, "id": team_id}
    )
    if found is None:
        raise not_found("team")


async def get_territory(session: AsyncSession, principal: Principal, territory_id: UUID) -> TerritoryView:
    if not principal.has_role(*READERS):
        raise forbidden("Only supervisors, ops and admins read territories.")
    row = (await session.execute(_ONE, {"tenant_id": principal.tenant_id, "id": territory_id})).first()
    if row is None:
        raise not_found("territory")
    return _view(row)


async def list_territories(session: AsyncSession, principal: Principal) -> list[TerritoryView]:
    if not principal.has_role(*READERS):
        raise forbidden("Only supervisors, ops and admins read territories.")
    return [_view(r) for r in (await session.execute(_ALL, {"tenant_id": principal.tenant_id})).all()]


async def save_territory(
    session: AsyncSession, principal: Principal, data: TerritoryIn, territory_id: UUID | None = None
) -> tuple[TerritoryView, bool]:
    """Create (no `territory_id`) or replace a territory; True when it was created. A create retried with the
    same client id and body answers the stored territory; the same id with another body is an idempotency
    conflict. `data` is in WGS-84 (the route converts the caller's `crs`)."""
    await require(session, principal, Feature.MANAGE_TERRITORIES, "Your role cannot draw territories.")
    area = polygon_ewkt([(p.lat, p.lon) for p in data.ring])
    await _check_team(session, principal.tenant_id, data.team_id)
    params = {"tenant_id": principal.tenant_id, "name": data.name, "team_id": data.team_id, "area": area}
    if territory_id is None:
        territory_id = data.id or uuid4()
        created = await session.scalar(
            text(
                "INSERT INTO territories (tenant_id, id, name, team_id, area)"
                " VALUES (:tenant_id, :id, :name, :team_id, ST_GeogFromText(:area))"
                " ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id"
            ),
            {**params, "id": territory_id},
        )
        if created is None:
            same = await session.scalar(
                text(
                    "SELECT name = :name AND team_id IS NOT DISTINCT FROM :team_id"
                    " AND ST_Equals(area::geometry, ST_GeomFromEWKT(:area))"
                    " FROM territories WHERE tenant_id = :tenant_id AND id = :id"
                ),
                {**params, "id": territory_id},
            )
            if not same:
                raise DomainError(
                    ErrorCode.IDEMPOTENCY_CONFLICT, "This territory id was already used with another name or shape."
                )
        return await get_territory(session, principal, territory_id), created is not None
    if data.id is not None and data.id != territory_id:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "The body's `id` is not the territory's in the path.")
    updated = await session.scalar(
        text(
            "UPDATE territories SET name = :name, team_id = :team_id, area = ST_GeogFromText(:area),"
            " updated_at = now() WHERE tenant_id = :tenant_id AND id = :id RETURNING id"
        ),
        {**params, "id": territory_id},
    )
    if updated is None:
        raise not_found("territory")
    return await get_territory(session, principal, territory_id), False


async def delete_territory(session: AsyncSession, principal: Principal, territory_id: UUID) -> None:
    await require(session, principal, Feature.MANAGE_TERRITORIES, "Your role cannot delete territories.")
    deleted = await session.scalar(
        text("DELETE FROM territories WHERE tenant_id = :tenant_id AND id = :id RETURNING id"),
        {"tenant_id": principal.tenant_id, "id": territory_id},
    )
    if deleted is None:
        raise not_found("territory")


async def territory_of(session: AsyncSession, tenant_id: UUID, lat: float, lon: float) -> UUID | None:
    """The territory a WGS-84 point lies in (the same SQL function the rules use)."""
    found: UUID | None = await session.scalar(
        text("SELECT territory_of(:tenant_id, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"),
        {"tenant_id": tenant_id, "lat": lat, "lon": lon},
    )
    return found

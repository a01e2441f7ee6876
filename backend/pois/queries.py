"""The nearby search: the hottest read path, built once as Core statements and run on asyncpg directly.

Why not the ORM here: building a select() and its cache key per request costs 100-160 us, and the ORM path
keeps ~17% of what PostgreSQL can serve (research/perf-baseline.md). Each variant of the query (pool filter,
scope kind, optional filters, first page or not) is compiled once to asyncpg SQL with numbered parameters;
asyncpg then prepares it once per connection. `NEARBY_BENCH_VARIANT` is the SQL that bench/ runs through
pgbench, so the benchmark compares this endpoint against exactly the SQL it sends.

Ordering is KNN on geography (`<->`, sphere distance, index-assisted) with the id as tie-breaker; the radius
filter uses the sphere too (`use_spheroid => false`), so the order, the filter and the reported distance agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from backend.auth.models import User
from backend.auth.scopes import visible_to
from backend.intake.names import key
from backend.pois.models import Poi
from mobile_contract.auth import DataScope
from mobile_contract.pois import PoolFilter

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """SQL text with $n placeholders and the names of its parameters in order."""

    sql: str
    param_names: tuple[str, ...]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.param_names]


def compile_once(statement: Select[Any]) -> CompiledQuery:
    compiled = statement.compile(dialect=_DIALECT)
    return CompiledQuery(sql=compiled.string, param_names=tuple(compiled.positiontup or ()))


def origin_point() -> ColumnElement[Any]:
    return cast(
        func.ST_SetSRID(
            func.ST_MakePoint(bindparam("lon", type_=Float), bindparam("lat", type_=Float)), literal_column("4326")
        ),
        Geography(srid=4326),
    )


@dataclass(frozen=True, slots=True)
class NearbyVariant:
    pool: PoolFilter
    scope: DataScope | None  # only for pool=team, whose filter depends on the caller's scope kind
    by_category: bool
    by_name: bool
    after_cursor: bool


NEARBY_BENCH_VARIANT = NearbyVariant(PoolFilter.ALL, None, by_category=False, by_name=False, after_cursor=False)


@cache
def nearby_query(variant: NearbyVariant) -> CompiledQuery:
    origin = origin_point()
    distance = Poi.location.op("<->", return_type=Float)(origin)
    conditions: list[ColumnElement[bool]] = [
        Poi.tenant_id == bindparam("tenant_id"),
        func.ST_DWithin(Poi.location, origin, bindparam("radius_m", type_=Float), false()),
    ]
    if variant.pool is PoolFilter.OPEN:
        conditions.append(Poi.holder_id.is_(None))
    elif variant.pool is PoolFilter.MINE:
        conditions.append(Poi.holder_id == bindparam("caller_user_id"))
    elif variant.pool is PoolFilter.TEAM:
        assert variant.scope is not None
        conditions.append(and_(Poi.holder_id.is_not(None), visible_to(variant.scope, Poi.holder_id)))
    if variant.by_category:
        conditions.append(Poi.category == bindparam("category"))
    if variant.by_name:
        # The name as typed, or its folded key among the search terms (pinyin, initials, simplified characters).
        conditions.append(
            or_(
                Poi.name.ilike(bindparam("name_pattern"), escape="\\"),
                Poi.search_terms.like(bindparam("terms_pattern"), escape="\\"),
            )
        )
    if variant.after_cursor:
        conditions.append(tuple_(distance, Poi.id) > tuple_(bindparam("after_distance"), bindparam("after_id")))
    # KNN on PostgreSQL 15 only works when ordering by the distance alone; the id tie-breaker (which keeps pages
    # stable when merchants share a spot) is applied outside. WITH TIES keeps every row tied with the last one,
    # so the outer top-N by (distance, id) is exact.
    nearest = (
        select(Poi.id, Poi.name, Poi.category, Poi.address, Poi.location, Poi.holder_id, distance.label("distance_m"))
        .where(*conditions)
        .order_by(distance)
        .fetch(bindparam("limit"), with_ties=True)
        .subquery("nearest")
    )
    point = cast(nearest.c.location, Geometry(srid=4326))
    statement = (
        select(
            nearest.c.id,
            nearest.c.name,
            nearest.c.category,
            nearest.c.address,
            func.ST_Y(point).label("lat"),
            func.ST_X(point).label("lon"),
            nearest.c.distance_m,
            nearest.c.holder_id,
            User.display_name.label("holder_name"),
        )
        .select_from(nearest.outerjoin(User, User.id == nearest.c.holder_id))
        .order_by(nearest.c.distance_m, nearest.c.id)
        .limit(bindparam("limit"))
    )
    return compile_once(statement)


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE, with the caller's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def nearby_params(
    *,
    tenant_id: UUID,
    caller_user_id: UUID,
    caller_team_id: UUID | None,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int,
    category: str | None,
    name: str | None,
    after: tuple[float, UUID] | None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "caller_user_id": caller_user_id,
        "caller_team_id": caller_team_id,
        "caller_tenant_id": tenant_id,  # the scope's subqueries over users and teams (auth/scopes.py)
        "lat": lat,
        "lon": lon,
        "radius_m": radius_m,
        "limit": limit,
        "category": category,
        "name_pattern": like_pattern(name) if name else None,
        "terms_pattern": like_pattern(key(name)) if name and key(name) else None,
        "after_distance": after[0] if after else None,
        "after_id": after[1] if after else None,
    }

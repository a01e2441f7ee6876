"""HTTP routes of merchants: nearby, the merchant view, adding one from the field."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.coordinates import answer_in, point_to_wgs84, request_in_wgs84
from backend.deps import provide_principal
from backend.errors import problems
from backend.pois import service
from mobile_contract.base import SINGLE_LINE
from mobile_contract.location import CrsName
from mobile_contract.pois import NearbyPage, PoiCreate, PoiDetail, PoolFilter

CrsParam = Annotated[CrsName, Parameter(description="Coordinate system of lat/lon in and out")]


class PoiController(Controller):
    path = "/v1/pois"
    tags = ["merchants"]

    @get(
        "/nearby",
        operation_id="nearbyPois",
        responses=problems(401),
        summary="Merchants nearest first, within a radius",
    )
    async def nearby(
        self,
        request: Request[Any, Any, State],
        lat: Annotated[float, Parameter(ge=-90.0, le=90.0)],
        lon: Annotated[float, Parameter(ge=-180.0, le=180.0)],
        radius_m: Annotated[float, Parameter(gt=0.0, le=50_000.0, description="Search radius, metres")] = 2_000.0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        pool: Annotated[PoolFilter, Parameter(description="Filter by who holds the merchant as a lead")] = (
            PoolFilter.ALL
        ),
        category: Annotated[str | None, Parameter(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")] = None,
        q: Annotated[
            str | None, Parameter(min_length=1, max_length=100, pattern=SINGLE_LINE, description="Part of the name")
        ] = None,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
        crs: CrsParam = CrsName.WGS84,
    ) -> NearbyPage:
        lat, lon = point_to_wgs84(lat, lon, crs)
        search = service.NearbySearch(
            lat=lat,
            lon=lon,
            radius_m=radius_m,
            limit=limit,
            pool=pool,
            category=category,
            name=q.strip() or None if q else None,
            cursor=cursor,
        )
        # The hottest route resolves no dependencies: authentication is the same function the `principal`
        # dependency runs, called directly, which saves Litestar's dependency machinery (~100-200 us a request,
        # measured in bench/).
        principal = provide_principal(request)
        return answer_in(await service.nearby(request.app.state.database.hot, principal, search), crs)

    @get(
        "/{poi_id:uuid}",
        operation_id="getPoi",
        responses=problems(401, 404),
        summary="The merchant view: details, contacts, recent visits",
    )
    async def detail(
        self,
        poi_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> PoiDetail:
        return answer_in(await service.get_detail(session, principal, poi_id), crs)

    @post(
        "/",
        operation_id="createPoi",
        responses=problems(401, 403, 409, 413),
        summary="Add a merchant found in the field (idempotent on the client id)",
    )
    async def create(
        self,
        data: JSONBody[PoiCreate],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> Response[PoiDetail]:
        detail, created = await service.create(session, principal, request_in_wgs84(data, crs))
        await session.commit()
        return Response(answer_in(detail, crs), status_code=201 if created else 200)

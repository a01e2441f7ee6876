"""HTTP routes of visits: check in, check out, look back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.tokens import Principal
from backend.coordinates import answer_in, request_in_wgs84
from backend.errors import problems
from backend.openapi import replayed
from backend.visits import service, verdicts
from mobile_contract.base import SINGLE_LINE
from mobile_contract.location import CrsName
from mobile_contract.visits import CheckIn, CheckOut, VerdictHistory, Visit, VisitPage

CrsParam = Annotated[CrsName, Parameter(description="Coordinate system of lat/lon in and out")]


class VisitController(Controller):
    path = "/v1/visits"
    tags = ["visits"]

    @post(
        "/",
        operation_id="checkIn",
        responses={
            **replayed(Visit, "A retry of the same id: the visit as first checked in, verdict included"),
            **problems(401, 404, 409, 413),
        },
        summary="Check in at a merchant; the answer carries the verdict",
    )
    async def check_in(
        self,
        data: JSONBody[CheckIn],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> Response[Visit]:
        received_at = datetime.now(UTC)
        data = request_in_wgs84(data, crs)
        visit, created = await service.check_in(session, principal, data, received_at=received_at)
        await session.commit()
        return Response(answer_in(visit, crs), status_code=201 if created else 200)

    @post(
        "/{visit_id:uuid}/checkout",
        operation_id="checkOut",
        responses=problems(401, 404, 409, 413),
        status_code=200,
        summary="Check out of a visit",
    )
    async def check_out(
        self,
        visit_id: FromPath[UUID],
        data: JSONBody[CheckOut],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> Visit:
        received_at = datetime.now(UTC)
        data = request_in_wgs84(data, crs)
        visit = await service.check_out(session, principal, visit_id, data, received_at=received_at)
        await session.commit()
        return answer_in(visit, crs)

    @get(
        "/{visit_id:uuid}", operation_id="getVisit", responses=problems(401, 404), summary="One visit with its evidence"
    )
    async def get_visit(
        self,
        visit_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        crs: CrsParam = CrsName.WGS84,
    ) -> Visit:
        return answer_in(await service.get_visit(session, principal, visit_id), crs)

    @get(
        "/{visit_id:uuid}/verdicts",
        operation_id="getVisitVerdicts",
        responses=problems(401, 404),
        summary="How the visit's verdict changed after the fact (late fixes of the trail), oldest first",
    )
    async def get_verdicts(
        self, visit_id: FromPath[UUID], principal: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> VerdictHistory:
        return await verdicts.history(session, principal, visit_id)

    @get(
        "/",
        operation_id="listVisits",
        responses=problems(400, 401),
        summary="Visits in the caller's data scope, newest first",
    )
    async def list_visits(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(min_length=1, max_length=200, pattern=SINGLE_LINE)] = None,
        poi_id: FromQuery[UUID | None] = None,
        user_id: FromQuery[UUID | None] = None,
        crs: CrsParam = CrsName.WGS84,
    ) -> VisitPage:
        page = await service.list_visits(session, principal, limit=limit, cursor=cursor, poi_id=poi_id, user_id=user_id)
        return answer_in(page, crs)

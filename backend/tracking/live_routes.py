"""HTTP routes of the supervisor's view of the field: the live view, its stream of updates (Server-Sent Events),
and the exceptions list. Each answers within the caller's data scope (a BD: only themself; a supervisor: their
team; another tenant never). Thin: parse, call live.py / stream.py / exceptions.py."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import Parameter

from backend.deps import provide_principal
from backend.errors import problems
from backend.tracking import live, service
from mobile_contract import tracking as wire
from mobile_contract.location import CrsName

CrsAnswer = Annotated[CrsName, Parameter(description="Coordinate system of the positions in the answer")]


class LiveController(Controller):
    path = "/v1/tracking"
    tags = ["tracking"]

    @get(
        "/live",
        operation_id="getLiveView",
        responses=problems(401, 422),
        summary="Everyone in the caller's scope: newest position, its age, moving / stopped / offline, battery, "
        "the open visit or job",
    )
    async def live(self, request: Request[Any, Any, State], crs: CrsAnswer = CrsName.WGS84) -> wire.LiveView:
        # A hot read: the principal without dependency injection, one statement on the hot pool.
        principal = await provide_principal(request)
        return await live.live_view(request.app.state.database.hot, principal, now=service.utc_now(), crs=crs)

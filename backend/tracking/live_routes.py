"""HTTP routes of the supervisor's view of the field: the live view, its stream of updates (Server-Sent Events),
and the exceptions list. Each answers within the caller's data scope (a BD: only themself; a supervisor: their
team; another tenant never). Thin: parse, call live.py / stream.py / exceptions.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from backend.auth.tokens import Principal
from backend.auth.userstate import UserStates
from backend.deps import provide_principal
from backend.errors import DomainError, problems
from backend.tracking import exceptions, live, service, stream
from mobile_contract import tracking as wire
from mobile_contract.location import CrsName

KEEPALIVE_S = 15.0  # a comment line this often: proxies close idle streams, and it notices a deactivated user
# A stream ends after this long (event `reconnect`); the client reconnects at once and reloads the view. Bounds how
# long a graceful restart of the server waits for open streams (uvicorn waits for every open response).
MAX_STREAM_S = 300.0

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

    @get(
        "/exceptions",
        operation_id="getTrackingExceptions",
        responses=problems(401, 422),
        summary="The day's exceptions in the caller's scope, most serious first: flagged check-ins, short dwells, "
        "long gaps, reused photos",
    )
    async def exceptions(
        self,
        request: Request[Any, Any, State],
        date: Annotated[
            str | None,
            Parameter(
                description="The local day, YYYY-MM-DD (default: today in `tz`)",
                pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                max_length=10,
            ),
        ] = None,
        tz: Annotated[
            str,
            Parameter(description="IANA time zone of the day", pattern=r"^[A-Za-z0-9_+\-/]+$", max_length=64),
        ] = "UTC",
        crs: CrsAnswer = CrsName.WGS84,
    ) -> wire.ExceptionList:
        principal = await provide_principal(request)
        return await exceptions.exceptions(
            request.app.state.database.hot, principal, day=date, tz=tz, now=service.utc_now(), crs=crs
        )

    @get(
        "/live/stream",
        operation_id="streamLiveView",
        media_type="text/event-stream",
        responses=problems(401, 422, 503),
        summary="Live updates of GET /v1/tracking/live as Server-Sent Events, in the same scope",
        description=(
            "`text/event-stream`. Events: `ready` (subscribed: load GET /v1/tracking/live now, nothing later is "
            "missed), `position` (a LiveUpdate: someone's newest fix moved), `resync` (updates were lost: reload "
            "GET /v1/tracking/live), `expired` (the access token expired: reconnect with a fresh one), `reconnect` "
            "(the stream ends, as each does after 5 minutes: reconnect at once). A comment "
            "line every 15 s keeps proxies from closing the stream. Send the token as `Authorization: Bearer` "
            "(read the stream with fetch(); EventSource cannot send headers, and a token in a URL ends up in logs)."
        ),
    )
    async def stream(self, request: Request[Any, Any, State], crs: CrsAnswer = CrsName.WGS84) -> ServerSentEvent:
        principal = await provide_principal(request)
        state = request.app.state
        audience = await stream.audience_of(state.database.hot, principal)
        hub: stream.LiveHub = state.live_hub
        subscription = await hub.subscribe(audience)
        return ServerSentEvent(_events(hub, subscription, principal, state.user_states, crs), retry_duration=3000)


async def _events(
    hub: stream.LiveHub,
    subscription: stream.Subscription,
    principal: Principal,
    user_states: UserStates,
    crs: CrsName,
) -> AsyncIterator[ServerSentEventMessage]:
    encoder = msgspec.json.Encoder()
    try:
        yield ServerSentEventMessage(event="ready", data="{}")
        ends = time.monotonic() + MAX_STREAM_S
        while True:
            left = principal.expires_at - time.time()
            if left <= 0:
                yield ServerSentEventMessage(event="expired", data="{}")
                return
            lifetime = ends - time.monotonic()
            if lifetime <= 0:
                yield ServerSentEventMessage(event="reconnect", data="{}")
                return
            item = await subscription.next(min(KEEPALIVE_S, left, lifetime))
            if item is None:
                try:
                    await user_states.check(principal)  # deactivated or signed out everywhere: the stream ends
                except DomainError:
                    yield ServerSentEventMessage(event="expired", data="{}")
                    return
                yield ServerSentEventMessage(comment="keep-alive")
            elif item == stream.RESYNC:
                yield ServerSentEventMessage(event="resync", data="{}")
            elif isinstance(item, stream.Notice):
                update = _update(item, service.utc_now(), crs)
                yield ServerSentEventMessage(event="position", data=encoder.encode(update).decode())
    finally:
        hub.unsubscribe(subscription)


def _update(notice: stream.Notice, now: datetime, crs: CrsName) -> wire.LiveUpdate:
    fields = msgspec.structs.asdict(notice)
    position = live.position_out(fields, now, crs)
    return wire.LiveUpdate(
        user_id=notice.user_id,
        state=live.live_state(position.age_s, notice.speed_mps, notice.activity),
        position=position,
        battery=None if notice.battery is None else round(notice.battery, 2),
        charging=notice.charging,
    )

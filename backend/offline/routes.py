"""HTTP routes of offline sync: pull, push, and the WatermelonDB-compatible pair over the same feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.deps import provide_principal
from backend.errors import problems
from backend.offline import watermelon
from backend.offline.fastpull import FastPull
from backend.offline.registry import REGISTRY
from mobile_contract.sync import (
    Changes,
    JobChanges,
    PoiChanges,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    VisitChanges,
    WorkItemChanges,
)
from sync import engine
from sync.cursor import CursorCodec, CursorRefused


def base_xid_of(codec: CursorCodec, cursor: str | None, principal: Principal) -> int | None:
    """What the phone had seen when it queued its edits. A push never fails over its cursor (the queue must
    flow): an unreadable one counts as having seen nothing, so every server change wins its conflicts."""
    if cursor is None:
        return None
    try:
        return codec.decode(cursor, principal.user_id).base
    except CursorRefused:
        return 0


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    """The id the request-id middleware put in `request.state` (None without it), for the log of a failure."""
    value = getattr(request.state, "request_id", None)
    return None if value is None else str(value)


async def pull_response(
    database: Database, codec: CursorCodec, principal: Principal, data: PullRequest
) -> PullResponse:
    """One page of the caller's changes: the pull route's work, shared with its fast path (fastpull.py)."""
    page = await engine.pull(
        hot=database.hot,
        sessions=database.sessions,
        registry=REGISTRY,
        codec=codec,
        actor=principal,
        user_id=principal.user_id,
        cursor=data.cursor,
        limit=data.limit,
    )
    changes = page.changes
    return PullResponse(
        changes=Changes(
            pois=PoiChanges(upserted=changes["pois"].upserted, removed=changes["pois"].removed),
            work_items=WorkItemChanges(upserted=changes["work_items"].upserted, removed=changes["work_items"].removed),
            visits=VisitChanges(upserted=changes["visits"].upserted, removed=changes["visits"].removed),
            jobs=JobChanges(upserted=changes["jobs"].upserted, removed=changes["jobs"].removed),
        ),
        cursor=page.cursor,
        has_more=page.has_more,
    )


class SyncController(Controller):
    path = "/v1/sync"
    tags = ["sync"]

    @post(
        "/pull",
        operation_id="syncPull",
        status_code=200,
        responses=problems(401, 409),
        summary="Changes of everything in the caller's scope since the cursor, collapsed per record, paged",
        middleware=[FastPull],
    )
    async def pull(self, data: JSONBody[PullRequest], request: Request[Any, Any, State]) -> PullResponse:
        # A hot path (a phone polls it): no dependencies to resolve, as on nearby (see pois/routes.py), and the
        # ordinary case never gets here: FastPull answers it without Litestar's argument and response machinery.
        principal = provide_principal(request)
        return await pull_response(request.app.state.database, request.app.state.cursors, principal, data)

    @post(
        "/push",
        operation_id="syncPush",
        status_code=200,
        responses=problems(401, 413),
        summary="Apply queued business commands in order, each exactly once; refusals are per-mutation results",
    )
    async def push(
        self,
        data: JSONBody[PushRequest],
        principal: NamedDependency[Principal],
        database: NamedDependency[Database],
        request: Request[Any, Any, Any],
    ) -> PushResponse:
        results = await engine.push(
            sessions=database.sessions,
            registry=REGISTRY,
            actor=principal,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            client_id=data.client_id,
            base_xid=base_xid_of(request.app.state.cursors, data.cursor, principal),
            mutations=data.mutations,
            received_at=datetime.now(UTC),
            request_id=request_id_of(request),
        )
        return PushResponse(results=results)

    @get(
        "/watermelon",
        operation_id="watermelonPull",
        responses=problems(401, 409),
        summary="WatermelonDB pullChanges: the same feed as rows of the app's tables (sendCreatedAsUpdated)",
    )
    async def watermelon_pull(
        self,
        principal: NamedDependency[Principal],
        database: NamedDependency[Database],
        request: Request[Any, Any, Any],
        last_pulled_at: Annotated[str, Parameter(max_length=32, description="`null` on the first sync")] = "null",
        schema_version: Annotated[int, Parameter(ge=1, le=10_000)] = 1,
        migration: Annotated[str | None, Parameter(max_length=10_000)] = None,
    ) -> watermelon.PullAnswer:
        return await watermelon.pull(
            database, request.app.state.cursors, principal, watermelon.parse_last_pulled_at(last_pulled_at)
        )

    @post(
        "/watermelon",
        operation_id="watermelonPush",
        status_code=200,
        responses=problems(401, 413),
        summary="WatermelonDB pushChanges: rows become the same business commands as /v1/sync/push",
    )
    async def watermelon_push(
        self,
        data: JSONBody[watermelon.PushBody],
        principal: NamedDependency[Principal],
        database: NamedDependency[Database],
        last_pulled_at: Annotated[str, Parameter(max_length=32)] = "null",
    ) -> dict[str, Any]:
        await watermelon.push(database, principal, data, watermelon.parse_last_pulled_at(last_pulled_at))
        return {}

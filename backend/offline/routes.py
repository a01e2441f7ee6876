"""HTTP routes of offline sync: pull, push, and the WatermelonDB-compatible pair over the same feed.

The routes serve whatever collections and mutations the domains registered (`SyncRegistry`), so the controller is
made for a registry by `sync_controller`: the pull's answer shape is built from the registered collections.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from backend.auth.tokens import Principal
from backend.db.engine import Database
from backend.deps import provide_principal
from backend.errors import problems
from backend.offline import watermelon
from backend.offline.registry import SyncRegistry
from mobile_contract.base import SINGLE_LINE
from mobile_contract.sync import (
    Mutation,
    PullRequest,
    PushRequest,
    PushResponse,
    changes_shape,
    pull_response_shape,
    screen,
)
from sync import engine
from sync.cursor import CursorCodec, CursorRefused

# WatermelonDB sends its last timestamp as a number, or `null`/`undefined`; the value is range-checked when parsed.
LastPulledAt = Annotated[str, Parameter(max_length=32, pattern=SINGLE_LINE, description="`null` on the first sync")]


def base_xid_of(codec: CursorCodec, cursor: str | None, principal: Principal) -> int | None:
    """What the phone had seen when it queued its edits. A push never fails over its cursor (the queue must
    flow): an unreadable one counts as having seen nothing, so every server change wins its conflicts."""
    if cursor is None:
        return None
    try:
        return codec.decode(cursor, principal.user_id).base
    except CursorRefused:
        return 0


# The pull's answer shape exists only once the domains registered their collections. The handler is annotated with
# this name: Litestar resolves it through the controller's `signature_namespace` (which wins over module names),
# so the OpenAPI document shows the real shape; for mypy it is Any.
PullResponse: TypeAlias = Any


def sync_controller(registry: SyncRegistry) -> type[Controller]:
    changes_type = changes_shape(registry.shapes)
    response_type = pull_response_shape(changes_type)
    delta_types = {f.name: f.type for f in msgspec.structs.fields(changes_type)}

    class SyncController(Controller):
        path = "/v1/sync"
        tags = ["sync"]
        signature_namespace = {"PullResponse": response_type}

        @post(
            "/pull",
            operation_id="syncPull",
            status_code=200,
            responses=problems(400, 401, 410),
            summary="Changes of everything in the caller's scope since the cursor, collapsed per record, paged",
        )
        async def pull(self, data: JSONBody[PullRequest], request: Request[Any, Any, State]) -> PullResponse:
            # A hot path (a phone polls it): no dependencies to resolve, as on nearby (see pois/routes.py).
            principal = provide_principal(request)
            database: Database = request.app.state.database
            page = await engine.pull(
                hot=database.hot,
                sessions=database.sessions,
                registry=registry,
                codec=request.app.state.cursors,
                actor=principal,
                user_id=principal.user_id,
                cursor=data.cursor,
                limit=data.limit,
            )
            changes = changes_type(
                **{
                    name: delta_types[name](upserted=delta.upserted, removed=delta.removed)
                    for name, delta in page.changes.items()
                }
            )
            return response_type(changes=changes, cursor=page.cursor, has_more=page.has_more)

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
            # Each mutation is bounded on its own: one the contract refuses is answered `rejected` here (it cannot
            # be stored as sent), and the rest go to the engine in their order.
            screened = [screen(queued) for queued in data.mutations]
            applied = await engine.push(
                sessions=database.sessions,
                registry=registry,
                actor=principal,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                client_id=data.client_id,
                base_xid=base_xid_of(request.app.state.cursors, data.cursor, principal),
                mutations=[m for m in screened if isinstance(m, Mutation)],
                received_at=datetime.now(UTC),
            )
            results = iter(applied)
            return PushResponse(results=[next(results) if isinstance(m, Mutation) else m for m in screened])

        @get(
            "/watermelon",
            operation_id="watermelonPull",
            responses=problems(400, 401, 410),
            summary="WatermelonDB pullChanges: the same feed as rows of the app's tables (sendCreatedAsUpdated)",
        )
        async def watermelon_pull(
            self,
            principal: NamedDependency[Principal],
            database: NamedDependency[Database],
            request: Request[Any, Any, Any],
            last_pulled_at: LastPulledAt = "null",
            schema_version: Annotated[int, Parameter(ge=1, le=10_000)] = 1,
            migration: Annotated[str | None, Parameter(max_length=10_000, pattern=SINGLE_LINE)] = None,
        ) -> watermelon.PullAnswer:
            return await watermelon.pull(
                database,
                registry,
                request.app.state.cursors,
                principal,
                watermelon.parse_last_pulled_at(last_pulled_at),
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
            last_pulled_at: LastPulledAt = "null",
        ) -> dict[str, Any]:
            # A push never fails over its base (the queue must flow): an unusable one counts as having seen nothing.
            base = watermelon.parse_last_pulled_at(last_pulled_at, lenient=True)
            await watermelon.push(database, registry, principal, data, base)
            return {}

    return SyncController

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
from backend.limits import Call, UserConcurrency
from backend.offline import watermelon
from backend.offline.registry import SyncRegistry
from backend.settings import Settings
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


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    """The id the request-id middleware put in `request.state` (None without it), for the log of a failure."""
    value = getattr(request.state, "request_id", None)
    return None if value is None else str(value)


# The pull's answer shape exists only once the domains registered their collections. The handler is annotated with
# this name: Litestar resolves it through the controller's `signature_namespace` (which wins over module names),
# so the OpenAPI document shows the real shape; for mypy it is Any.
PullResponse: TypeAlias = Any


_ENCODER = msgspec.json.Encoder()
_CURSOR_SLOT = "\x00cursor\x00"  # stands for the cursor in the encoded empty page; a cursor is base64url text


class PullPages:
    """One page of the caller's changes in the registered collections' shapes: the pull route's work, shared with
    its fast path (fastpull.py)."""

    def __init__(self, registry: SyncRegistry) -> None:
        self.registry = registry
        self.changes_type = changes_shape(registry.shapes)
        self.response_type = pull_response_shape(self.changes_type)
        self._delta_types = {f.name: f.type for f in msgspec.structs.fields(self.changes_type)}
        # Most pulls are polls that find nothing: their answer is this byte string with the cursor in the middle,
        # encoded once here by the same encoder instead of four empty deltas built and encoded per request.
        empty = self.response_type(
            changes=self.changes_type(
                **{name: delta(upserted=[], removed=[]) for name, delta in self._delta_types.items()}
            ),
            cursor=_CURSOR_SLOT,
            has_more=False,
        )
        head, slot, tail = _ENCODER.encode(empty).partition(msgspec.json.encode(_CURSOR_SLOT))
        assert slot, "the cursor's place in the empty page"
        self._empty_head = head + b'"'
        self._empty_tail = b'"' + tail

    async def page(self, database: Database, codec: CursorCodec, principal: Principal, data: PullRequest) -> Any:
        return await engine.pull(
            hot=database.hot,
            sessions=database.sessions,
            registry=self.registry,
            codec=codec,
            actor=principal,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            cursor=data.cursor,
            limit=data.limit,
        )

    async def __call__(self, database: Database, codec: CursorCodec, principal: Principal, data: PullRequest) -> Any:
        return self.response(await self.page(database, codec, principal, data))

    def response(self, page: engine.PullPage) -> Any:
        changes = self.changes_type(
            **{
                name: self._delta_types[name](upserted=delta.upserted, removed=delta.removed)
                for name, delta in page.changes.items()
            }
        )
        return self.response_type(changes=changes, cursor=page.cursor, has_more=page.has_more)

    async def encoded(self, database: Database, codec: CursorCodec, principal: Principal, data: PullRequest) -> bytes:
        """The answer as JSON bytes, byte for byte what encoding `__call__`'s answer gives."""
        page = await self.page(database, codec, principal, data)
        return self.encode(page)

    def encode(self, page: engine.PullPage) -> bytes:
        if not page.has_more and page.changes.keys() == self._delta_types.keys():
            for delta in page.changes.values():
                if delta.upserted or delta.removed:
                    break
            else:
                return self._empty_head + page.cursor.encode("ascii") + self._empty_tail
        return _ENCODER.encode(self.response(page))


def sync_controller(registry: SyncRegistry, pages: PullPages | None = None) -> type[Controller]:
    """The sync routes over `registry`. `pages`: the pull's PullPages, shared with the app's FastPull front door
    (backend/app.py), which answers the ordinary pull before it reaches this controller."""
    pull_pages = pages or PullPages(registry)
    response_type = pull_pages.response_type

    class SyncController(Controller):
        path = "/v1/sync"
        tags = ["sync"]
        signature_namespace = {"PullResponse": response_type}

        @post(
            "/pull",
            operation_id="syncPull",
            status_code=200,
            responses=problems(400, 401, 410, 429),
            summary="Changes of everything in the caller's scope since the cursor, collapsed per record, paged",
        )
        async def pull(self, data: JSONBody[PullRequest], request: Request[Any, Any, State]) -> PullResponse:
            # A hot path (a phone polls it): no dependencies to resolve, as on nearby (see pois/routes.py), and the
            # ordinary case never gets here: FastPull answers it without Litestar's argument and response machinery.
            principal = await provide_principal(request)
            limits: UserConcurrency = request.app.state.limits
            with limits.hold(Call.SYNC, principal.user_id):
                return await pull_pages(request.app.state.database, request.app.state.cursors, principal, data)

        @post(
            "/push",
            operation_id="syncPush",
            status_code=200,
            responses=problems(401, 413, 429),
            summary="Apply queued business commands in order, each exactly once; refusals are per-mutation results",
        )
        async def push(
            self,
            data: JSONBody[PushRequest],
            principal: NamedDependency[Principal],
            database: NamedDependency[Database],
            limits: NamedDependency[UserConcurrency],
            settings: NamedDependency[Settings],
            request: Request[Any, Any, Any],
        ) -> PushResponse:
            # Each mutation is bounded on its own: one the contract refuses is answered `rejected` here (it cannot
            # be stored as sent), and the rest go to the engine in their order.
            screened = [screen(queued) for queued in data.mutations]
            with limits.hold(Call.SYNC, principal.user_id):
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
                    request_id=request_id_of(request),
                    context=settings,
                )
            results = iter(applied)
            return PushResponse(results=[next(results) if isinstance(m, Mutation) else m for m in screened])

        @get(
            "/watermelon",
            operation_id="watermelonPull",
            responses=problems(400, 401, 410, 429),
            summary="WatermelonDB pullChanges: the same feed as rows of the app's tables (sendCreatedAsUpdated)",
        )
        async def watermelon_pull(
            self,
            principal: NamedDependency[Principal],
            database: NamedDependency[Database],
            limits: NamedDependency[UserConcurrency],
            request: Request[Any, Any, Any],
            last_pulled_at: LastPulledAt = "null",
            schema_version: Annotated[int, Parameter(ge=1, le=10_000)] = 1,
            migration: Annotated[str | None, Parameter(max_length=10_000, pattern=SINGLE_LINE)] = None,
        ) -> watermelon.PullAnswer:
            with limits.hold(Call.SYNC, principal.user_id):
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
            responses=problems(400, 401, 413, 429),
            summary="WatermelonDB pushChanges: rows become the same business commands as /v1/sync/push",
        )
        async def watermelon_push(
            self,
            data: JSONBody[watermelon.PushBody],
            principal: NamedDependency[Principal],
            database: NamedDependency[Database],
            limits: NamedDependency[UserConcurrency],
            settings: NamedDependency[Settings],
            request: Request[Any, Any, Any],
            last_pulled_at: LastPulledAt = "null",
        ) -> dict[str, Any]:
            # A push never fails over its base (the queue must flow): an unusable one counts as having seen nothing.
            base = watermelon.parse_last_pulled_at(last_pulled_at, lenient=True)
            with limits.hold(Call.SYNC, principal.user_id):
                await watermelon.push(
                    database, registry, principal, data, base, settings=settings, request_id=request_id_of(request)
                )
            return {}

    return SyncController

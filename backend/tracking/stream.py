"""Live updates for the supervisor's view: PostgreSQL NOTIFY in, Server-Sent Events out.

The ingest statement sends a NOTIFY on `queries.LIVE_CHANNEL` whenever a person's newest fix moves (inside its
transaction, so only committed fixes are announced; queries.INGEST_SQL). Each process holds ONE listening
connection of its own (not from a pool: LISTEN is session state, and a connection per browser tab would run the
pool dry), started with the first subscriber. Its callback decodes each notification once and hands it to every
subscriber whose scope covers the person (`Audience.sees`): a bounded queue per subscriber, so a slow browser
never slows the others nor the database; one that falls behind gets a `resync` (reload GET /v1/tracking/live)
instead of an unbounded backlog. If the listening connection drops (a database restart), it reconnects with
backoff and tells every subscriber to resync, since notifications sent meanwhile are lost.

The scope is judged on what the notification carries: the person's tenant, id, team and team path as of the fix
(the ingest reads them in the same statement). Self: the caller only; team: the caller's team; team and below:
a team path under the caller's; all: the caller's tenant. Never another tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from backend.auth.scopes import effective_scope
from backend.auth.tokens import Principal
from backend.db.hotpool import PoolTimeout
from backend.tracking.queries import LIVE_CHANNEL, Fetcher
from mobile_contract.auth import DataScope

log = logging.getLogger("groundwork.tracking.stream")

QUEUE_SIZE = 256  # updates a subscriber may be behind before it is told to resync
RECONNECT_MAX_S = 10.0
SUBSCRIBE_TIMEOUT_S = 10.0  # a subscriber waits this long for the listener; then 503 (the database is away)


class Notice(msgspec.Struct, frozen=True):
    """What the ingest's NOTIFY carries (queries.INGEST_SQL)."""

    tenant_id: UUID
    user_id: UUID
    team_id: UUID | None
    team_path: str | None
    recorded_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    speed_mps: float | None
    bearing_deg: float | None
    battery: float | None
    charging: bool | None
    activity: str | None
    source: str


RESYNC = "resync"  # put in a subscriber's queue instead of a Notice: reload the whole view


@dataclass(frozen=True, slots=True)
class Audience:
    """Whom a subscriber may see: their tenant and data scope, resolved once when they subscribe."""

    tenant_id: UUID
    user_id: UUID
    scope: DataScope
    team_id: UUID | None
    team_path: str | None  # for team_and_below

    def sees(self, notice: Notice) -> bool:
        if notice.tenant_id != self.tenant_id:
            return False
        if self.scope is DataScope.ALL:
            return True
        if self.scope is DataScope.SELF:
            return notice.user_id == self.user_id
        if self.scope is DataScope.TEAM:
            return self.team_id is not None and notice.team_id == self.team_id
        return (
            self.team_path is not None and notice.team_path is not None and notice.team_path.startswith(self.team_path)
        )


_TEAM_PATH_SQL = "SELECT path FROM teams WHERE tenant_id = $1 AND id = $2"


async def audience_of(conn: Fetcher, principal: Principal) -> Audience:
    scope = effective_scope(principal)
    path = None
    if scope is DataScope.TEAM_AND_BELOW and principal.team_id is not None:
        rows = await conn.fetch(_TEAM_PATH_SQL, principal.tenant_id, principal.team_id)
        path = rows[0]["path"] if rows else None
    return Audience(principal.tenant_id, principal.user_id, scope, principal.team_id, path)


@dataclass(eq=False, slots=True)
class Subscription:
    audience: Audience
    queue: asyncio.Queue[Notice | str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagging: bool = False

    def offer(self, item: Notice | str) -> None:
        if self.lagging:
            return  # a resync is already waiting; what it reloads includes this
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too far behind: drop the backlog, tell it to reload the view.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)
            self.lagging = True

    async def next(self, timeout_s: float) -> Notice | str | None:
        """The next update, RESYNC, or None when nothing came for `timeout_s` (time for a keep-alive)."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None
        if item == RESYNC:
            self.lagging = False
        return item


class LiveHub:
    """The process's one listening connection and its subscribers."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, audience: Audience) -> Subscription:
        """A new subscriber; returns once the listener is listening, so nothing committed after this is missed."""
        if self._closed:
            raise RuntimeError("the live hub is closed")
        subscription = Subscription(audience)
        self._subscribers.add(subscription)
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._listen(), name="tracking-live-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            self._subscribers.discard(subscription)
            raise PoolTimeout("the live listener is not connected") from None
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @contextlib.asynccontextmanager
    async def subscription(self, audience: Audience) -> AsyncIterator[Subscription]:
        subscription = await self.subscribe(audience)
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)

    def _deliver(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = msgspec.json.decode(payload, type=Notice)
        except msgspec.DecodeError:
            log.warning("tracking: an unreadable live notification was skipped")
            return
        for subscription in list(self._subscribers):
            if subscription.audience.sees(notice):
                subscription.offer(notice)

    async def _listen(self) -> None:
        delay = 0.2
        first = True
        while not self._closed:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, server_settings={"application_name": "groundwork-live"})
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("tracking: the live listener cannot connect (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(LIVE_CHANNEL, self._deliver)
                delay = 0.2
                if not first:
                    for subscription in list(self._subscribers):
                        subscription.offer(RESYNC)  # what was sent while we were away is lost
                first = False
                self._ready.set()
                await lost.wait()
                log.warning("tracking: the live listener lost its connection; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._subscribers.clear()

"""Connections: a SQLAlchemy async engine for ordinary reads and writes, and a lean pool of asyncpg
connections for the hot reads (see hotpool.py for why not asyncpg's own pool).

Both pools bound their waits (`GROUNDWORK_POOL_TIMEOUT_S`) and both recover by themselves when PostgreSQL
restarts: the hot pool replaces a connection it finds closed, and the SQLAlchemy pool drops a connection the
server closed while it was idle before handing it out (a check of the socket's state, no round trip: a
`pool_pre_ping` would add one to every request), and invalidates itself on the first disconnect error it sees.
`database_unavailable` tells the error handlers which exceptions mean "the database is busy or away" (503,
retry later) rather than a bug (500).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

from backend.db.hotpool import HotPool, PoolTimeout
from backend.db.shares import TenantShares, current_key
from backend.settings import Settings

# Told which pool ("orm" or "hot") waited how long for a connection, and whether it gave up (metrics).
PoolWaitObserver = Callable[[str, float, bool], None]


_ORM_OVERFLOW = 4  # connections the ORM pool may open past its size
_SHARE = "groundwork_share"  # key of a checked-out record's info: the share it counts against


class TimedQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool, telling an observer how long a checkout waited when no connection was idle."""

    observe_wait: Callable[[float, bool], None] | None = None
    shares: TenantShares | None = None  # a tenant's share of the pool (shares.py), when the app sets one

    def _do_get(self) -> ConnectionPoolEntry:
        shares = self.shares
        key = current_key() if shares is not None and in_greenlet() else None
        if shares is None or key is None:
            return self._get_observed()
        await_only(shares.acquire(key))  # waits (bounded) before a connection is taken, not while holding one
        try:
            entry = self._get_observed()
        except BaseException:
            shares.release(key)
            raise
        entry.info[_SHARE] = key
        return entry

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        key = record.info.pop(_SHARE, None)
        try:
            super()._do_return_conn(record)
        finally:
            if key is not None and self.shares is not None:
                self.shares.release(key)

    def _get_observed(self) -> ConnectionPoolEntry:
        observe = self.observe_wait
        if observe is None or self.checkedin() > 0 or self.overflow() < self._max_overflow:
            return super()._do_get()  # a connection is idle, or one may be opened: no queueing
        started = time.perf_counter()
        try:
            entry = super()._do_get()
        except exc.TimeoutError:
            observe(time.perf_counter() - started, True)
            raise
        observe(time.perf_counter() - started, False)
        return entry


def _drop_closed_on_checkout(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """A connection the server closed while idle (a restart) is noticed here, before a request gets it.
    DisconnectionError makes the pool discard it and try another (SQLAlchemy's documented pattern)."""
    raw = getattr(dbapi_connection, "driver_connection", None)
    if raw is not None and raw.is_closed():
        raise exc.DisconnectionError("the server closed this connection while it was idle")


@dataclass(slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hot: HotPool
    # The settings it was connected with: how periodic tasks, handed the worker's Database, get theirs passed in.
    settings: Settings

    @classmethod
    async def connect(cls, settings: Settings, observe_wait: PoolWaitObserver | None = None) -> Database:
        engine = create_async_engine(
            settings.sqlalchemy_url,
            poolclass=TimedQueuePool,
            pool_size=settings.orm_pool_size,
            max_overflow=_ORM_OVERFLOW,
            pool_timeout=settings.pool_timeout_s,
            pool_pre_ping=False,
            # Error messages and logs never carry bound values (token hashes, phone numbers, codes).
            hide_parameters=True,
            connect_args={"server_settings": {"application_name": "groundwork"}},
        )
        pool = engine.sync_engine.pool
        event.listen(pool, "checkout", _drop_closed_on_checkout)
        if isinstance(pool, TimedQueuePool):
            pool.shares = TenantShares(settings.tenant_share_of(_ORM_OVERFLOW), settings.pool_timeout_s)
        if observe_wait is not None and isinstance(pool, TimedQueuePool):
            pool.observe_wait = lambda waited, timed_out: observe_wait("orm", waited, timed_out)
        hot = await HotPool.open(
            settings.database_url,
            settings.hot_pool_size,
            acquire_timeout_s=settings.pool_timeout_s,
            observe_wait=(lambda waited, timed_out: observe_wait("hot", waited, timed_out)) if observe_wait else None,
            server_settings={"application_name": "groundwork-hot"},
        )
        return cls(
            engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False), hot=hot, settings=settings
        )

    async def close(self) -> None:
        await self.hot.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session


# asyncpg's classes of "the server is not there or not taking work": connection failures (SQLSTATE 08),
# operator intervention (57: shutdown, restart, "cannot connect now", statement timeout), insufficient
# resources (53: too many connections).
_UNAVAILABLE_SERVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


def database_unavailable(error: BaseException) -> bool:
    """Does this exception (or one it was raised from) mean the database is saturated or away, so that the
    client should retry later (503), rather than a bug (500)?"""
    stack: list[BaseException] = [error]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _unavailable(current):
            return True
        stack.extend(
            linked
            for linked in (getattr(current, "orig", None), current.__cause__, current.__context__)
            if isinstance(linked, BaseException)
        )
    return False


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, (PoolTimeout, exc.TimeoutError, *_UNAVAILABLE_SERVER_ERRORS)):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, asyncpg.InternalClientError):
        # "cannot switch to state 11; another operation (2) is in progress": the server's "terminating
        # connection" arrived while the connection sat idle, and the driver's protocol state is left behind
        # (seen in tests/ops/test_faults.py). The connection is replaced; the request may be retried.
        return True
    if isinstance(error, asyncpg.InterfaceError):
        # "connection is closed", "connection was closed in the middle of operation"; not misuse errors
        return isinstance(error, asyncpg.ConnectionDoesNotExistError) or "closed" in str(error)
    if isinstance(error, ConnectionError | socket.gaierror | asyncio.TimeoutError):
        return True
    # asyncio's connect to several addresses (localhost: ::1 and 127.0.0.1) fails with a plain OSError.
    return isinstance(error, OSError) and "Connect call failed" in str(error)

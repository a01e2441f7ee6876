"""A lean connection pool for the hot read paths (nearby, sync pull).

asyncpg's own pool costs ~70-100 us of CPU per query on this machine (acquire and release bookkeeping, a task
per release, and the reset query we already turn off): as much as the rest of a nearby request's Python work.
The hot paths need far less from a pool: a fixed set of connections in autocommit, each used for one statement
at a time, never holding session state. So: idle connections in a deque, waiters served first in, first out.

A connection whose statement was interrupted (cancelled, or a network error) may be mid-protocol, so it is
closed and replaced, never reused; an ordinary SQL error leaves it usable. A connection the server closed while
it sat idle (a restart) is noticed when it is taken and replaced then, so the request waits for a fresh one
instead of failing on a dead one. Waiting is bounded (`acquire_timeout_s`): past it `PoolTimeout`, which the app
answers with 503 and Retry-After, so a dry pool sheds load instead of queueing every request for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from geo.postgis import KNN_WITHOUT_INDEX_ORDER, is_knn_order_error

log = logging.getLogger("groundwork.db")

Connect = Callable[[], Coroutine[Any, Any, asyncpg.Connection]]
# Told how long an acquisition that found no idle connection waited, and whether it gave up (metrics).
WaitObserver = Callable[[float, bool], None]


class PoolTimeout(Exception):
    """No connection became free within the pool's bound: the database is saturated or away."""


class HotPool:
    def __init__(
        self,
        connect: Connect,
        size: int,
        *,
        acquire_timeout_s: float | None = None,
        observe_wait: WaitObserver | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self._connect = connect
        self._size = size
        self.acquire_timeout_s = acquire_timeout_s
        self.observe_wait = observe_wait
        self._idle: deque[asyncpg.Connection] = deque()
        self._waiters: deque[asyncio.Future[asyncpg.Connection]] = deque()
        self._closed = False
        self._replacing: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        dsn: str,
        size: int,
        *,
        acquire_timeout_s: float | None = None,
        observe_wait: WaitObserver | None = None,
        **connect_kwargs: Any,
    ) -> HotPool:
        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(dsn, **connect_kwargs)

        pool = cls(connect, size, acquire_timeout_s=acquire_timeout_s, observe_wait=observe_wait)
        connections = await asyncio.gather(*(connect() for _ in range(size)))
        pool._idle.extend(connections)
        return pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await self._acquire()
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
        except asyncpg.PostgresError:
            if connection.is_closed():  # e.g. "terminating connection due to administrator command"
                self._replace(connection)
            else:
                self._release(connection)  # the server refused the statement; the connection is fine
            raise
        except BaseException:
            self._replace(connection)
            raise
        self._release(connection)
        return rows

    async def fetch_knn(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """`fetch` for a nearest-first (`<->`) query: rerun without the index ordering when PostGIS's KNN fails
        on a query point that (nearly) coincides with a stored one (geo.postgis.is_knn_order_error)."""
        try:
            return await self.fetch(query, *args)
        except asyncpg.PostgresError as exc:
            if not is_knn_order_error(exc):
                raise
        connection = await self._acquire()
        try:
            async with connection.transaction(readonly=True):
                await connection.execute(KNN_WITHOUT_INDEX_ORDER)
                # Another statement text: asyncpg keeps the first one prepared, and a cached plan ignores the SET.
                rows: list[asyncpg.Record] = await connection.fetch(query + "\n-- knn without index order", *args)
        except asyncpg.PostgresError:
            self._release(connection)
            raise
        except BaseException:
            self._replace(connection)
            raise
        self._release(connection)
        return rows

    async def _acquire(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the hot pool is closed")
        while self._idle:
            connection = self._idle.popleft()
            if not connection.is_closed():
                return connection
            self._replace(connection)  # the server went away while it was idle
        return await self._wait()

    async def _wait(self) -> asyncpg.Connection:
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiter: asyncio.Future[asyncpg.Connection] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.acquire_timeout_s):
                connection = await waiter
        except TimeoutError:
            self._give_up(waiter)
            self._observe(loop.time() - started, timed_out=True)
            raise PoolTimeout(f"no database connection became free within {self.acquire_timeout_s} s") from None
        except asyncio.CancelledError:
            self._give_up(waiter)
            raise
        self._observe(loop.time() - started, timed_out=False)
        if connection.is_closed():  # handed over by a release just before the server went away
            self._replace(connection)
            return await self._acquire()
        return connection

    def _give_up(self, waiter: asyncio.Future[asyncpg.Connection]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._release(waiter.result())  # handed over just as we gave up: pass it on
            return
        with contextlib.suppress(ValueError):  # rare (timeouts, cancellations): a dry pool's queue must not grow
            self._waiters.remove(waiter)

    def _observe(self, waited_s: float, *, timed_out: bool) -> None:
        if self.observe_wait is not None:
            self.observe_wait(waited_s, timed_out)

    @property
    def size(self) -> int:
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _release(self, connection: asyncpg.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if self._closed:
            connection.terminate()
        else:
            self._idle.append(connection)

    def _replace(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        if self._closed:
            return

        async def reconnect() -> None:
            delay = 0.1
            while not self._closed:
                try:
                    self._release(await self._connect())
                    return
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("hot pool: reconnecting failed (%s); retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

        task = asyncio.get_running_loop().create_task(reconnect())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._replacing):
            task.cancel()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the hot pool is closed"))
        self._waiters.clear()
        while self._idle:
            await self._idle.popleft().close()

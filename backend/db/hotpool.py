"""A lean connection pool for the hot read paths (nearby, sync pull).

asyncpg's own pool costs ~70-100 us of CPU per query on this machine (acquire and release bookkeeping, a task
per release, and the reset query we already turn off): as much as the rest of a nearby request's Python work.
The hot paths need far less from a pool: a fixed set of connections in autocommit, each used for one statement
at a time, never holding session state. So: idle connections in a deque, waiters served first in, first out.

A connection whose statement was interrupted (cancelled, or a network error) may be mid-protocol, so it is
closed and replaced, never reused; an ordinary SQL error leaves it usable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from geo.postgis import KNN_WITHOUT_INDEX_ORDER, is_knn_order_error

log = logging.getLogger("groundwork.db")

Connect = Callable[[], Coroutine[Any, Any, asyncpg.Connection]]


class HotPool:
    def __init__(self, connect: Connect, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self._connect = connect
        self._size = size
        self._idle: deque[asyncpg.Connection] = deque()
        self._waiters: deque[asyncio.Future[asyncpg.Connection]] = deque()
        self._closed = False
        self._replacing: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, dsn: str, size: int, **connect_kwargs: Any) -> HotPool:
        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(dsn, **connect_kwargs)

        pool = cls(connect, size)
        connections = await asyncio.gather(*(connect() for _ in range(size)))
        pool._idle.extend(connections)
        return pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await self._acquire()
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
        except asyncpg.PostgresError:
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
                rows: list[asyncpg.Record] = await connection.fetch(query, *args)
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
        if self._idle:
            return self._idle.popleft()
        waiter: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as we were cancelled: pass it on
            raise

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

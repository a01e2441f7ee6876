"""The lean hot pool: waiting, handing over, surviving SQL errors, replacing interrupted connections."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from backend.db.hotpool import HotPool
from backend.settings import Settings


async def test_more_callers_than_connections_all_get_served_in_turn(settings: Settings) -> None:
    pool = await HotPool.open(settings.database_url, 2)
    try:
        results = await asyncio.gather(*(pool.fetch("SELECT $1::int AS n, pg_sleep(0.01)", i) for i in range(20)))
        assert sorted(rows[0]["n"] for rows in results) == list(range(20))
        backends = await asyncio.gather(*(pool.fetch("SELECT pg_backend_pid() AS pid") for _ in range(10)))
        assert len({rows[0]["pid"] for rows in backends}) <= 2
    finally:
        await pool.close()


async def test_an_sql_error_keeps_the_connection(settings: Settings) -> None:
    pool = await HotPool.open(settings.database_url, 1)
    try:
        before = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        with pytest.raises(asyncpg.PostgresError):
            await pool.fetch("SELECT 1/0")
        assert (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"] == before
    finally:
        await pool.close()


async def test_a_cancelled_statement_replaces_its_connection(settings: Settings) -> None:
    pool = await HotPool.open(settings.database_url, 1)
    try:
        before = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        slow = asyncio.ensure_future(pool.fetch("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        # The next caller waits for the replacement and gets a fresh, working connection.
        after = (await asyncio.wait_for(pool.fetch("SELECT pg_backend_pid() AS pid"), 10))[0]["pid"]
        assert after != before
    finally:
        await pool.close()


async def test_a_closed_pool_refuses_and_fails_its_waiters(settings: Settings) -> None:
    pool = await HotPool.open(settings.database_url, 1)
    busy = asyncio.ensure_future(pool.fetch("SELECT pg_sleep(0.3)"))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(pool.fetch("SELECT 1"))
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError):
        await waiting
    await busy  # the statement under way finishes; its connection is closed on release
    with pytest.raises(asyncpg.InterfaceError):
        await pool.fetch("SELECT 1")
    with pytest.raises(ValueError, match="at least one"):
        HotPool(pool._connect, 0)

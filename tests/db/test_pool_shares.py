"""A tenant's share of the ORM pool (backend/db/shares.py): past its share a tenant's checkout waits without a
connection, in arrival order, while another tenant is served at once. Driven by events, nothing timed."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import exc, text

from backend.db.engine import Database
from backend.db.shares import NO_TENANT, TenantShares, bound, current_key, note_tenant
from backend.settings import Settings


async def _until(condition: Any) -> None:
    """Let the other tasks run until `condition` holds (a bounded number of turns of the loop, not a time)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail("the condition never held")


def test_the_share_defaults_to_half_the_pool_and_can_be_set() -> None:
    settings = Settings.__new__(Settings)  # only the two fields the rule reads
    object.__setattr__(settings, "orm_pool_size", 8)
    object.__setattr__(settings, "tenant_pool_share", 0)
    assert settings.tenant_share_of(4) == 6
    object.__setattr__(settings, "orm_pool_size", 1)
    assert settings.tenant_share_of(0) == 1
    object.__setattr__(settings, "tenant_pool_share", 3)
    assert settings.tenant_share_of(4) == 3


def test_the_key_is_the_requests_tenant_or_no_tenant_and_none_outside_a_request() -> None:
    assert current_key() is None
    state: dict[str, Any] = {}
    with bound(state):
        assert current_key() is NO_TENANT  # login, refresh: no tenant named yet
        tenant = uuid.uuid4()
        note_tenant(state, tenant)
        assert current_key() == tenant
    assert current_key() is None


async def test_shares_are_per_key_in_arrival_order_and_leave_no_entry_behind() -> None:
    shares = TenantShares(2, timeout_s=60)
    a, b = uuid.uuid4(), uuid.uuid4()
    await shares.acquire(a)
    await shares.acquire(a)
    order: list[int] = []

    async def wait(n: int) -> None:
        await shares.acquire(a)
        order.append(n)

    waiting = [asyncio.ensure_future(wait(n)) for n in range(2)]
    await asyncio.sleep(0)
    assert order == []  # a holds its share: its next checkouts wait
    await shares.acquire(b)  # another tenant is not held up
    assert shares.holding(b) == 1
    shares.release(a)
    await _until(lambda: order == [0])
    shares.release(a)
    await _until(lambda: order == [0, 1])
    await asyncio.gather(*waiting)
    for key in (a, a, b):
        shares.release(key)
    assert shares._shares == {}


async def test_a_wait_past_the_bound_gives_up_like_a_pool_wait() -> None:
    shares = TenantShares(1, timeout_s=0.01)
    a = uuid.uuid4()
    await shares.acquire(a)
    with pytest.raises(exc.TimeoutError):  # answered 503 with Retry-After, like a dry pool
        await shares.acquire(a)
    shares.release(a)
    assert shares._shares == {}


async def test_one_tenant_past_its_share_waits_without_a_connection_while_another_is_served(
    settings: Settings,
) -> None:
    database = await Database.connect(replace(settings, orm_pool_size=4, tenant_pool_share=2))
    pool: Any = database.engine.sync_engine.pool
    a, b = uuid.uuid4(), uuid.uuid4()
    release = asyncio.Event()
    inside: list[str] = []

    async def request(tenant: uuid.UUID, name: str) -> None:
        state: dict[str, Any] = {}
        note_tenant(state, tenant)
        with bound(state):  # as RequestScope and the principal dependency do for a request
            async with database.sessions() as session:
                await session.execute(text("SELECT 1"))
                inside.append(name)
                await release.wait()

    try:
        storm = [asyncio.ensure_future(request(a, f"a{n}")) for n in range(3)]
        await _until(lambda: len(inside) == 2)
        assert pool.checkedout() == 2  # the third of tenant a waits for a's share, holding nothing
        calm = asyncio.ensure_future(request(b, "b"))
        await _until(lambda: "b" in inside)  # served at once: two connections of the pool are still free for it
        assert pool.checkedout() == 3
        assert database.engine.sync_engine.pool.shares.holding(a) == 2
        release.set()
        await asyncio.gather(*storm, calm)
        assert sorted(inside) == ["a0", "a1", "a2", "b"]
        assert pool.checkedout() == 0
        assert pool.shares._shares == {}
    finally:
        release.set()
        await database.close()


async def test_outside_a_request_nothing_is_shared(settings: Settings) -> None:
    database = await Database.connect(replace(settings, orm_pool_size=2, tenant_pool_share=1))
    try:
        sessions = [database.sessions() for _ in range(2)]
        for session in sessions:
            await session.execute(text("SELECT 1"))  # two at once though the share is one: not a request
        assert database.engine.sync_engine.pool.checkedout() == 2
        for session in sessions:
            await session.close()
    finally:
        await database.close()

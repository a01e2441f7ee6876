"""Bounded waits and per-user limits: a dry pool answers 503 with Retry-After, one user's burst answers 429 beyond
the limit while other users are served. Bursts are `asyncio.gather`ed requests; nothing here measures time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from sqlalchemy import exc as sa_exc

from backend.app import create_app
from backend.db.engine import database_unavailable
from backend.db.hotpool import HotPool, PoolTimeout
from backend.limits import Call, UserConcurrency
from backend.settings import Settings
from tests.factories import PASSWORD, Factory, FieldUser
from tests.ops.inloop import served_in_loop


def _assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-request-id"]


# -- the classifier: which exceptions mean "retry later" ----------------------------------------------------------

UNAVAILABLE = [
    PoolTimeout("dry"),
    sa_exc.TimeoutError("QueuePool limit reached"),
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"),
    ConnectionResetError(104, "reset by peer"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432)"),
    TimeoutError(),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress"),
]
BUGS = [
    RuntimeError("a bug"),
    ValueError("bad"),
    KeyError("x"),
    asyncpg.UniqueViolationError("duplicate key"),
    asyncpg.ForeignKeyViolationError("fk"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    FileNotFoundError(2, "No such file"),
]


def _wrap(error: BaseException, layers: list[int]) -> BaseException:
    """Wrap as the layers between asyncpg and a handler do: SQLAlchemy's DBAPIError (`orig`), `raise ... from`,
    and exceptions raised while handling another (`__context__`)."""
    for layer in layers:
        if layer == 0:
            wrapped: BaseException = sa_exc.DBAPIError("SELECT 1", None, error)
        elif layer == 1:
            wrapped = RuntimeError("while talking to the database")
            wrapped.__cause__ = error
        else:
            wrapped = ValueError("during handling")
            wrapped.__context__ = error
        error = wrapped
    return error


@given(st.sampled_from(UNAVAILABLE), st.lists(st.integers(0, 2), max_size=4))
def test_a_lost_or_saturated_database_is_recognised_however_deeply_wrapped(
    error: BaseException, layers: list[int]
) -> None:
    assert database_unavailable(_wrap(error, layers))


@given(st.sampled_from(BUGS), st.lists(st.integers(0, 2), max_size=4))
def test_bugs_and_refusals_are_not_taken_for_an_unavailable_database(error: BaseException, layers: list[int]) -> None:
    assert not database_unavailable(_wrap(error, layers))


def test_an_invalidated_connection_is_unavailable() -> None:
    error = sa_exc.DBAPIError("SELECT 1", None, RuntimeError("gone"), connection_invalidated=True)
    assert database_unavailable(error)


# -- the hot pool's bounded wait -----------------------------------------------------------------------------------


async def test_the_hot_pool_gives_up_waiting_and_tells_its_observer(settings: Settings) -> None:
    seen: list[bool] = []
    pool = await HotPool.open(
        settings.database_url, 1, acquire_timeout_s=0.05, observe_wait=lambda _w, timed_out: seen.append(timed_out)
    )
    try:
        held = await pool._acquire()
        with pytest.raises(PoolTimeout):
            await pool.fetch("SELECT 1")
        assert seen == [True]
        assert pool.waiting == 0  # the timed-out waiter left the queue
        pool._release(held)
        assert (await pool.fetch("SELECT 1 AS one"))[0]["one"] == 1  # served at once: no wait observed
        assert seen == [True]
    finally:
        await pool.close()


async def test_a_connection_closed_while_idle_is_replaced_before_a_caller_gets_it(settings: Settings) -> None:
    pool = await HotPool.open(settings.database_url, 1, acquire_timeout_s=10)
    try:
        before = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        admin = await asyncpg.connect(settings.database_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", before)
        finally:
            await admin.close()
        # The server closed it; the caller waits for a fresh connection instead of failing on the dead one.
        for _ in range(50):
            await asyncio.sleep(0.02)  # let the client notice the closed socket (not a timing assertion)
            if pool._idle and pool._idle[0].is_closed():
                break
        after = (await pool.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"]
        assert after != before
    finally:
        await pool.close()


# -- 503 through the app -------------------------------------------------------------------------------------------


@pytest.fixture
async def small_app(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """The app with one connection per pool and a short bound on waiting for one."""
    app = create_app(replace(settings, hot_pool_size=1, orm_pool_size=1, pool_timeout_s=0.1, retry_after_s=3))
    async with AsyncTestClient(app=app, base_url="http://groundwork.test") as test_client:
        yield test_client


async def test_a_dry_hot_pool_answers_503_with_retry_after_then_serves_again(
    small_app: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    hot: HotPool = small_app.app.state.database.hot
    nearby = "/v1/pois/nearby?lat=31.23&lon=121.47"
    held = await hot._acquire()
    try:
        response = await small_app.get(nearby, headers=bd.headers)
        _assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "3"
        ready = await small_app.get("/readyz")
        _assert_problem(ready, 503, "service_unavailable")
    finally:
        hot._release(held)
    assert (await small_app.get(nearby, headers=bd.headers)).status_code == 200
    assert (await small_app.get("/readyz")).status_code == 200
    metrics = (await small_app.get("/metrics")).text
    assert 'groundwork_db_pool_timeouts_total{pool="hot"}' in metrics
    assert "groundwork_unavailable_total 2.0" in metrics or "groundwork_unavailable_total" in metrics


async def test_a_dry_orm_pool_answers_503_with_retry_after_then_serves_again(
    small_app: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
) -> None:
    tenant = await factory.tenant()
    bd = await factory.user(tenant)
    engine = small_app.app.state.database.engine
    held = [await engine.connect() for _ in range(1 + 4)]  # pool_size + max_overflow: every connection taken
    try:
        response = await small_app.get("/v1/me", headers=bd.headers)
        _assert_problem(response, 503, "service_unavailable")
    finally:
        for connection in held:
            # Made on the test's event loop, not the app's: discarded instead of going back to the app's pool.
            await connection.invalidate()
            await connection.close()
    assert (await small_app.get("/v1/me", headers=bd.headers)).status_code == 200


# -- per-user limits -----------------------------------------------------------------------------------------------


def test_the_limit_counts_per_call_and_per_user_and_forgets_finished_calls() -> None:
    limits = UserConcurrency(2, retry_after_s=1)
    with limits.hold(Call.SYNC, "a"), limits.hold(Call.SYNC, "a"):
        with pytest.raises(Exception, match="already have 2") as refused:
            limits.hold(Call.SYNC, "a")
        assert getattr(refused.value, "status", None) == 429
        with limits.hold(Call.SYNC, "b"), limits.hold(Call.PHOTO_UPLOAD, "a"):  # others are not affected
            pass
    assert limits.running(Call.SYNC, "a") == 0
    assert limits._running == {}  # no entry kept per user who ever called
    with pytest.raises(RuntimeError), limits.hold(Call.SYNC, "a"):
        raise RuntimeError("a failing call still gives its slot back")
    assert limits._running == {}


def _limited_requests(user: FieldUser) -> dict[Call, tuple[str, str, dict[str, Any]]]:
    job = uuid.uuid4()
    return {
        Call.SYNC: ("POST", "/v1/sync/pull", {"json": {}}),
        Call.PHOTO_UPLOAD: (
            "PUT",
            f"/v1/photos/{uuid.uuid4()}?job_id={job}",
            {"content": b"\xff\xd8\xff", "headers": {"Content-Type": "image/jpeg"}},
        ),
        Call.DISPATCH: ("POST", f"/v1/jobs/{job}/dispatch", {"json": {"dry_run": True}}),
        Call.JOB_CODE: ("POST", f"/v1/jobs/{job}/code", {"json": {"code": "123456"}}),
        Call.LOGIN: (
            "POST",
            "/v1/auth/token",
            {"json": {"username": user.username, "password": PASSWORD, "device_id": "d1"}},
        ),
    }


@pytest.mark.parametrize("call", list(Call))
async def test_each_expensive_call_answers_429_past_the_users_limit_and_others_are_served(
    client: AsyncTestClient,  # type: ignore[type-arg]
    factory: Factory,
    call: Call,
) -> None:
    tenant = await factory.tenant()
    other_tenant = await factory.tenant()
    user = await factory.user(tenant)
    other = await factory.user(other_tenant)
    limits: UserConcurrency = client.app.state.limits
    key = user.username.casefold() if call is Call.LOGIN else user.id
    method, path, kwargs = _limited_requests(user)[call]
    with ExitStack() as held:
        for _ in range(limits.limit):
            held.enter_context(limits.hold(call, key))  # the user's calls still running
        extra_headers = kwargs.pop("headers", {})
        refused = await client.request(method, path, headers={**user.headers, **extra_headers}, **kwargs)
        _assert_problem(refused, 429, "too_many_concurrent")
        # Another tenant's user is not held up by this one's burst.
        other_method, other_path, other_kwargs = _limited_requests(other)[call]
        other_extra = other_kwargs.pop("headers", {})
        other_headers = {**other.headers, **other_extra}
        served = await client.request(other_method, other_path, headers=other_headers, **other_kwargs)
        assert served.status_code != 429, served.text
    # Once the running calls end, the same request is let through (whatever the service then answers).
    again = await client.request(method, path, headers={**user.headers, **extra_headers}, **kwargs)
    assert again.status_code != 429, again.text


@pytest.fixture
async def concurrent(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the test's loop: gathered requests really run at once (see inloop.py)."""
    app = create_app(settings)
    async with served_in_loop(app) as in_loop:
        in_loop.app = app  # type: ignore[attr-defined]
        yield in_loop


async def test_a_burst_of_pulls_is_cut_at_the_limit_while_another_user_is_served(
    concurrent: httpx.AsyncClient,
    factory: Factory,
) -> None:
    client = concurrent
    tenant = await factory.tenant()
    bursting = await factory.user(tenant)
    calm = await factory.user(tenant)
    limits: UserConcurrency = client.app.state.limits  # type: ignore[attr-defined]
    burst = [client.post("/v1/sync/pull", json={}, headers=bursting.headers) for _ in range(4 * limits.limit)]
    answers = await asyncio.gather(*burst, client.post("/v1/sync/pull", json={}, headers=calm.headers))
    *mine, theirs = answers
    assert theirs.status_code == 200
    statuses = [a.status_code for a in mine]
    assert set(statuses) <= {200, 429}
    assert statuses.count(429) > 0  # every pull awaits the database, so the burst overlaps: some are refused
    assert statuses.count(200) >= limits.limit
    for refused in (a for a in mine if a.status_code == 429):
        _assert_problem(refused, 429, "too_many_concurrent")
    assert limits.running(Call.SYNC, bursting.id) == 0


async def test_a_burst_of_code_entries_on_many_jobs_is_cut_at_the_limit_and_another_tenant_is_served_meanwhile(
    concurrent: httpx.AsyncClient,
    factory: Factory,
) -> None:
    """The reported stall: 40 parallel code entries ran the pool dry. Entries of one job now take their turn
    without a connection (tests/ops/test_tarpit.py); entries on many jobs at once are cut at the user's limit
    before they take a connection, and the pool keeps serving another tenant during the burst."""
    client = concurrent
    tenant = await factory.tenant()
    other_tenant = await factory.tenant()
    technician = await factory.user(tenant)
    other = await factory.user(other_tenant)
    # Jobs the technician cannot see: each admitted entry still costs a database lookup.
    entries = [
        client.post(f"/v1/jobs/{uuid.uuid4()}/code", json={"code": "123456"}, headers=technician.headers)
        for _ in range(40)
    ]
    answers = await asyncio.gather(*entries, client.get("/v1/me", headers=other.headers))
    *mine, theirs = answers
    assert theirs.status_code == 200
    statuses = [a.status_code for a in mine]
    assert set(statuses) <= {404, 429}, statuses
    assert statuses.count(429) > 0


async def test_entries_of_one_job_past_its_queue_are_refused_before_their_turn(
    concurrent: httpx.AsyncClient,
    factory: Factory,
) -> None:
    client = concurrent
    technician = await factory.user(await factory.tenant())
    client.app.state.limits = UserConcurrency(3, 2, turn_queue=4)  # type: ignore[attr-defined]
    job = uuid.uuid4()
    entries = [
        client.post(f"/v1/jobs/{job}/code", json={"code": "123456"}, headers=technician.headers) for _ in range(40)
    ]
    statuses = [a.status_code for a in await asyncio.gather(*entries)]
    assert set(statuses) <= {404, 429}, statuses
    assert statuses.count(404) >= 5  # one running and four waiting got their turn
    assert statuses.count(429) > 0

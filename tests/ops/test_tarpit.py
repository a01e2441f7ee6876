"""Storms on one tenant cost the others little (issue 8, bench/logins.py): refusals are cheap and early, held in a
tarpit that holds no connection, and one job's code entries take their turn without a connection.

The tarpit's sleep is replaced by one that records what it was asked to wait and how many database connections
were checked out meanwhile: nothing here waits or measures time. Bursts run on the test's own loop
(`served_in_loop`), so gathered requests really overlap.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event, text

from backend.app import create_app
from backend.errors import RetryLater
from backend.jobs.codelocks import KnownCodeLocks
from backend.jobs.service import CODE_ATTEMPTS
from backend.limits import Call, UserConcurrency
from backend.settings import Settings
from backend.tarpit import HELD, Holds, _jitter
from mobile_contract.errors import ErrorCode
from tests.factories import PASSWORD, Factory
from tests.jobs.helpers import arrived_job, sent_code
from tests.ops.inloop import served_in_loop

WRONG = "not the password"


@dataclass
class Held:
    """What the tarpit was asked to hold: each wait's seconds and the ORM connections checked out meanwhile."""

    app: Litestar
    waits: list[tuple[float, int]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        pool: Any = self.app.state.database.engine.sync_engine.pool
        self.waits.append((seconds, pool.checkedout()))
        await asyncio.sleep(0)  # a real suspension point, as a wait is: other requests run meanwhile


@dataclass
class Tarpitted:
    client: httpx.AsyncClient
    app: Litestar
    held: Held


@pytest.fixture
async def tarpitted(settings: Settings) -> AsyncIterator[Tarpitted]:
    """The app with its tarpit on (the suite's settings turn it off), on the test's loop, its sleep recorded."""
    app = create_app(replace(settings, refusal_delay_s=1.0))
    held = Held(app)
    holds: Holds = app.state.holds
    holds.sleep = held.sleep
    holds.jitter = lambda: 1.5  # the top of the jitter: the wait is delay x jitter
    async with served_in_loop(app) as client:
        yield Tarpitted(client, app, held)


class Statements:
    """Counts the statements the app's ORM engine sends."""

    def __init__(self, app: Litestar) -> None:
        self.engine = app.state.database.engine.sync_engine
        self.sent: list[str] = []

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(statement)

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


class MostCheckedOut:
    """The most ORM connections checked out at once."""

    def __init__(self, app: Litestar) -> None:
        self.pool = app.state.database.engine.sync_engine.pool
        self.now = 0
        self.most = 0

    def _out(self, *_: Any) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def _in(self, *_: Any) -> None:
        self.now -= 1

    def __enter__(self) -> MostCheckedOut:
        event.listen(self.pool, "checkout", self._out)
        event.listen(self.pool, "checkin", self._in)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.pool, "checkout", self._out)
        event.remove(self.pool, "checkin", self._in)


def _login(username: str, password: str) -> dict[str, Any]:
    return {"json": {"username": username, "password": password, "device_id": "phone"}}


async def test_a_locked_login_is_refused_from_memory_before_any_statement_and_held_without_a_connection(
    tarpitted: Tarpitted, factory: Factory
) -> None:
    client, held = tarpitted.client, tarpitted.held
    user = await factory.user(await factory.tenant(), login=False)
    for _ in range(5):  # verified and wrong: answers that did work are not held
        wrong = await client.post("/v1/auth/token", **_login(user.username, WRONG))
        assert wrong.status_code == 401, wrong.text
    assert held.waits == []
    locking = await client.post("/v1/auth/token", **_login(user.username, WRONG))
    assert locking.status_code == 429
    assert locking.json()["code"] == "too_many_attempts"
    assert int(locking.headers["retry-after"]) >= 1
    assert held.waits == [(1.5, 0)]  # held, with no connection checked out

    # Sixteen at once, even with the right password: refused from the process's memory of the lock, before the
    # per-user slot (none is answered too_many_concurrent), without a statement, each held with no connection.
    with Statements(tarpitted.app) as statements:
        answers = await asyncio.gather(
            *(client.post("/v1/auth/token", **_login(user.username, PASSWORD)) for _ in range(16))
        )
    assert [a.json()["code"] for a in answers] == ["too_many_attempts"] * 16
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
    assert statements.sent == []
    assert held.waits[1:] == [(1.5, 0)] * 16
    # The lock is still in PostgreSQL, for the other processes: the memory only spared the table the work.
    assert await factory.count(
        "SELECT count(*) FROM login_throttles WHERE key = :k AND locked_until > now()", k=f"account:{user.username}"
    )


async def test_forty_parallel_wrong_codes_take_their_turn_on_one_connection_and_every_compared_code_counts(
    tarpitted: Tarpitted, factory: Factory, client: AsyncTestClient[Litestar]
) -> None:
    _, tech, job_id = await arrived_job(factory, client)
    right = await sent_code(factory.database, tech.tenant_id)
    wrong = "000000" if right != "000000" else "111111"
    concurrent, held = tarpitted.client, tarpitted.held
    with MostCheckedOut(tarpitted.app) as connections:
        answers = await asyncio.gather(
            *(concurrent.post(f"/v1/jobs/{job_id}/code", json={"code": wrong}, headers=tech.headers) for _ in range(40))
        )
    assert connections.most == 1  # forty entries of one job used one connection at a time: the others waited
    codes = [a.json()["code"] for a in answers]
    assert codes.count("code_invalid") == CODE_ATTEMPTS - 1
    assert codes.count("code_attempts_exceeded") == 40 - (CODE_ATTEMPTS - 1)  # none refused as a burst
    left = sorted(a.json()["attempts_left"] for a in answers if a.status_code == 422)
    assert left == list(range(1, CODE_ATTEMPTS))  # each saw the ones before it: in turn
    job = uuid.UUID(job_id)
    # Every compared code was counted, in order, up to the lock; the entries after it waited their turn and were
    # then refused from the route's memory of the lock (jobs/codelocks.py), without a transaction.
    attempts = "SELECT attempts FROM job_codes WHERE tenant_id = :t AND job_id = :j"
    assert await factory.count(attempts, t=tech.tenant_id, j=job) == CODE_ATTEMPTS
    # Every locked answer was held, with no connection checked out; the wrong codes (counted) were not.
    assert held.waits == [(1.5, 0)] * (40 - (CODE_ATTEMPTS - 1))
    code_locks: KnownCodeLocks = tarpitted.app.state.code_locks
    assert code_locks.locked(tech.tenant_id, job, tech.id)
    # Refused from memory: no statement, no connection.
    with Statements(tarpitted.app) as statements:
        again = await concurrent.post(f"/v1/jobs/{job_id}/code", json={"code": right}, headers=tech.headers)
    assert again.status_code == 423
    assert statements.sent == []
    limits: UserConcurrency = tarpitted.app.state.limits
    assert limits.waiting_turn(Call.JOB_CODE, (tech.tenant_id, job)) == 0
    assert limits.running(Call.JOB_CODE, tech.id) == 0


async def test_a_per_user_burst_refusal_is_held_too(tarpitted: Tarpitted, factory: Factory) -> None:
    user = await factory.user(await factory.tenant())
    limits: UserConcurrency = tarpitted.app.state.limits
    with limits.hold(Call.SYNC, user.id), limits.hold(Call.SYNC, user.id), limits.hold(Call.SYNC, user.id):
        refused = await tarpitted.client.post("/v1/sync/pull", json={}, headers=user.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_concurrent"
    assert tarpitted.held.waits == [(1.5, 0)]
    served = await tarpitted.client.post("/v1/sync/pull", json={}, headers=user.headers)
    assert served.status_code == 200
    assert tarpitted.held.waits == [(1.5, 0)]  # an answer is not held


async def test_ordinary_errors_are_not_held(tarpitted: Tarpitted, factory: Factory) -> None:
    user = await factory.user(await factory.tenant())
    missing = await tarpitted.client.get(f"/v1/jobs/{uuid.uuid4()}", headers=user.headers)
    assert missing.status_code == 404
    bad = await tarpitted.client.post("/v1/auth/token", json={"username": 1})
    assert bad.status_code == 422
    assert tarpitted.held.waits == []


# -- the parts --------------------------------------------------------------------------------------------------


class Gate:
    """A sleep that waits until the test opens it: holds that stay held while the test looks."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.asked: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        await self.opened.wait()


async def test_the_tarpit_holds_at_most_max_held_answers_and_the_rest_go_at_once() -> None:
    gate = Gate()
    holds = Holds(2.0, max_held=2, sleep=gate.sleep, jitter=lambda: 0.5)
    first, second = asyncio.ensure_future(holds.wait()), asyncio.ensure_future(holds.wait())
    await asyncio.sleep(0)
    assert holds.held == 2
    assert await holds.wait() is False  # full: answered at once
    gate.opened.set()
    assert await first is True
    assert await second is True
    assert gate.asked == [1.0, 1.0]
    assert holds.held == 0
    assert await Holds(0.0, sleep=gate.sleep).wait() is False  # off


def test_the_jitter_spreads_waits_between_half_and_one_and_a_half() -> None:
    spread = {_jitter() for _ in range(2000)}
    assert min(spread) >= 0.5
    assert max(spread) <= 1.5
    assert len(spread) > 100


def test_only_repeated_refusals_are_held() -> None:
    assert ErrorCode.CODE_INVALID not in HELD  # a wrong code is a counted attempt, answered at once
    assert ErrorCode.INVALID_CREDENTIALS not in HELD  # a wrong password was verified
    assert {ErrorCode.TOO_MANY_ATTEMPTS, ErrorCode.CODE_ATTEMPTS_EXCEEDED, ErrorCode.TOO_MANY_CONCURRENT} <= HELD


async def test_turns_are_one_at_a_time_in_arrival_order_and_the_queue_is_bounded() -> None:
    limits = UserConcurrency(3, 2, turn_queue=2)
    order: list[int] = []
    release = asyncio.Event()

    async def entry(n: int) -> None:
        async with limits.in_turn(Call.JOB_CODE, "job"):
            order.append(n)
            await release.wait()

    running = [asyncio.ensure_future(entry(n)) for n in range(3)]  # one runs, two wait
    await asyncio.sleep(0)
    assert order == [0]
    assert limits.waiting_turn(Call.JOB_CODE, "job") == 3
    with pytest.raises(RetryLater) as refused:
        async with limits.in_turn(Call.JOB_CODE, "job"):
            pytest.fail("past the queue: refused before its turn")
    assert refused.value.code is ErrorCode.TOO_MANY_CONCURRENT
    assert refused.value.retry_after_s == 2
    async with limits.in_turn(Call.JOB_CODE, "another job"):  # another key does not wait
        assert order == [0]
    release.set()
    await asyncio.gather(*running)
    assert order == [0, 1, 2]
    assert limits.waiting_turn(Call.JOB_CODE, "job") == 0
    assert limits._turns == {}  # no entry kept per record ever touched


@given(st.lists(st.booleans(), min_size=1, max_size=8))
async def test_a_failing_turn_still_lets_the_next_one_in(failures: list[bool]) -> None:
    limits = UserConcurrency(3, 2, turn_queue=8)
    done: list[int] = []

    async def entry(n: int, fail: bool) -> None:
        async with limits.in_turn(Call.JOB_CODE, "job"):
            await asyncio.sleep(0)
            if fail:
                raise RuntimeError("a failing entry")
            done.append(n)

    results = await asyncio.gather(*(entry(n, fail) for n, fail in enumerate(failures)), return_exceptions=True)
    assert [n for n, fail in enumerate(failures) if not fail] == done
    assert sum(isinstance(r, RuntimeError) for r in results) == sum(failures)
    assert limits._turns == {}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_memory_of_a_locked_code_ends_after_its_ttl_is_per_technician_and_forgets_on_resend() -> None:
    clock = Clock()
    memory = KnownCodeLocks(5.0, clock=clock)
    tenant, job, tech, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert not memory.locked(tenant, job, tech)
    memory.remember(tenant, job, tech)
    assert memory.locked(tenant, job, tech)
    assert not memory.locked(tenant, job, other)  # nobody else learns from it that the job exists
    assert not memory.locked(uuid.uuid4(), job, tech)  # nor under another tenant
    clock.now += 4.9
    assert memory.locked(tenant, job, tech)
    clock.now += 0.1
    assert not memory.locked(tenant, job, tech)  # then the table judges again (and the memory is refreshed)
    memory.remember(tenant, job, tech)
    memory.forget(tenant, job)
    assert not memory.locked(tenant, job, tech)


async def test_a_resend_forgets_the_lock_and_the_new_code_is_judged_by_the_table(
    factory: Factory, client: AsyncTestClient[Litestar]
) -> None:
    ops, tech, job_id = await arrived_job(factory, client)
    right = await sent_code(factory.database, tech.tenant_id)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(CODE_ATTEMPTS):
        await client.post(f"/v1/jobs/{job_id}/code", json={"code": wrong}, headers=tech.headers)
    code_locks: KnownCodeLocks = client.app.state.code_locks
    job = uuid.UUID(job_id)
    assert code_locks.locked(tech.tenant_id, job, tech.id)
    async with factory.database.sessions() as session:  # the resend interval has passed
        await session.execute(
            text(
                "UPDATE job_codes SET issued_at = issued_at - interval '2 minutes' WHERE tenant_id = :t AND job_id = :j"
            ),
            {"t": tech.tenant_id, "j": job},
        )
        await session.commit()
    resent = await client.post(f"/v1/jobs/{job_id}/code/resend", headers=ops.headers)
    assert resent.status_code == 204, resent.text
    assert not code_locks.locked(tech.tenant_id, job, tech.id)
    fresh = await sent_code(factory.database, tech.tenant_id)
    entered = await client.post(f"/v1/jobs/{job_id}/code", json={"code": fresh}, headers=tech.headers)
    assert entered.status_code == 200, entered.text


async def test_the_start_up_objects_are_frozen_out_of_the_cyclic_gc(settings: Settings) -> None:
    import gc

    assert gc.get_freeze_count() == 0  # the suite runs with GROUNDWORK_GC_FREEZE=0
    app = create_app(replace(settings, gc_freeze=True))
    try:
        async with served_in_loop(app) as client:
            assert gc.get_freeze_count() > 10_000  # routes, schemas, mappers: out of every full collection
            assert (await client.get("/healthz")).status_code == 200
    finally:
        gc.unfreeze()

"""The background job queue: after-commit only, retries with backoff, failures kept, one runner per job.

Each test uses a job kind of its own (and its own tenant), so it never runs another test's jobs.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from backend.db.engine import Database
from backend.queue.service import Job, PermanentFailure, Registry, enqueue
from backend.queue.worker import Worker, backoff, run_due
from tests.factories import Factory
from tests.push.helpers import jobs


def kind() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


def registry_of(job_kind: str, handler: Any) -> Registry:
    registry = Registry()
    registry.register(job_kind, handler)
    return registry


async def put(database: Database, job_kind: str, tenant: UUID, count: int = 1, **options: Any) -> list[int]:
    async with database.sessions() as session:
        ids = [await enqueue(session, job_kind, {"n": n}, tenant_id=tenant, **options) for n in range(count)]
        await session.commit()
    return ids


async def test_a_job_queued_in_a_rolled_back_transaction_never_runs(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    seen: list[dict[str, Any]] = []

    async def handler(_: Database, job: Job) -> None:
        seen.append(job.payload)

    async with database.sessions() as session:
        await enqueue(session, job_kind, {"n": "rolled back"}, tenant_id=tenant)
        await session.rollback()
    async with database.sessions() as session:
        await enqueue(session, job_kind, {"n": "committed"}, tenant_id=tenant)
        await session.commit()

    assert await run_due(database, registry_of(job_kind, handler), tenant_id=tenant) == 1
    assert seen == [{"n": "committed"}]
    [job] = await jobs(database, tenant)
    assert job["done_at"] is not None
    assert await run_due(database, registry_of(job_kind, handler), tenant_id=tenant) == 0


async def test_failures_back_off_then_fail_and_are_kept(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    attempts: list[int] = []

    async def handler(_: Database, job: Job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError(f"broken on attempt {job.attempt}")

    registry = registry_of(job_kind, handler)
    [job_id] = await put(database, job_kind, tenant, max_attempts=3)
    now = datetime.now(UTC)
    for attempt in (1, 2):
        assert await run_due(database, registry, tenant_id=tenant, now=now) == 1
        [job] = await jobs(database, tenant)
        assert (job["attempts"], job["done_at"], job["failed_at"], job["locked_until"]) == (attempt, None, None, None)
        assert f"broken on attempt {attempt}" in job["last_error"]
        assert "Traceback" in job["last_error"]  # an unforeseen error keeps its traceback for whoever inspects it
        assert job["run_at"] > now
        assert await run_due(database, registry, tenant_id=tenant, now=now) == 0  # not yet due
        now = job["run_at"]
    assert await run_due(database, registry, tenant_id=tenant, now=now) == 1
    [job] = await jobs(database, tenant)
    assert job["id"] == job_id
    assert job["failed_at"] is not None
    assert job["done_at"] is None
    assert "broken on attempt 3" in job["last_error"]
    assert attempts == [1, 2, 3]
    assert await run_due(database, registry, tenant_id=tenant, now=now + timedelta(days=1)) == 0  # given up for good


async def test_a_permanent_failure_is_not_retried(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()

    async def handler(_: Database, job: Job) -> None:
        raise PermanentFailure("the remote side refused this for good")

    await put(database, job_kind, tenant)
    assert await run_due(database, registry_of(job_kind, handler), tenant_id=tenant) == 1
    [job] = await jobs(database, tenant)
    assert job["failed_at"] is not None
    assert job["attempts"] == 1
    assert job["last_error"] == "PermanentFailure: the remote side refused this for good"


async def test_two_workers_never_run_the_same_job(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    runs: list[tuple[str, int]] = []

    def handler_for(worker: str) -> Any:
        async def handler(_: Database, job: Job) -> None:
            runs.append((worker, job.id))
            await asyncio.sleep(0)  # let the other worker claim while this one holds jobs

        return handler

    ids = await put(database, job_kind, tenant, count=30)
    workers = [Worker(database, registry_of(job_kind, handler_for(name)), name=name) for name in ("a", "b", "c")]
    while sum(await asyncio.gather(*(w.run_due(4, tenant_id=tenant) for w in workers))):
        pass
    assert sorted(job_id for _, job_id in runs) == ids  # every job once, none twice
    assert {worker for worker, _ in runs} == {"a", "b", "c"}
    assert all(job["done_at"] is not None and job["attempts"] == 1 for job in await jobs(database, tenant))


async def test_a_job_another_worker_is_claiming_is_skipped_not_waited_for(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    seen: list[int] = []

    async def handler(_: Database, job: Job) -> None:
        seen.append(job.id)

    registry = registry_of(job_kind, handler)
    first, second = await put(database, job_kind, tenant, count=2)
    async with database.sessions() as other_worker:
        # Another worker's claim transaction holds the row lock on the first job.
        await other_worker.execute(text("SELECT id FROM background_jobs WHERE id = :id FOR UPDATE"), {"id": first})
        # Without SKIP LOCKED this would wait for the other transaction; the bound only turns a hang into a failure.
        assert await asyncio.wait_for(run_due(database, registry, tenant_id=tenant), timeout=60) == 1
        assert seen == [second]
        await other_worker.rollback()
    assert await run_due(database, registry, tenant_id=tenant) == 1
    assert seen == [second, first]


async def test_a_leased_job_waits_for_its_lease_and_a_late_worker_cannot_overwrite(
    factory: Factory, database: Database
) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[tuple[int, int]] = []

    async def handler(_: Database, job: Job) -> None:
        runs.append((job.id, job.attempt))
        started.set()
        await release.wait()
        if job.attempt == 1:
            raise RuntimeError("the first worker overran its lease")

    registry = registry_of(job_kind, handler)
    [job_id] = await put(database, job_kind, tenant)
    first, second = Worker(database, registry, name="first"), Worker(database, registry, name="second")
    running = asyncio.create_task(first.run_due(10, tenant_id=tenant))
    await started.wait()
    assert await second.run_due(10, tenant_id=tenant) == 0  # leased to the first worker

    # The first worker hangs past its lease: the second takes the job over.
    started.clear()
    after_lease = datetime.now(UTC) + first.lease + timedelta(seconds=1)
    taking_over = asyncio.create_task(second.run_due(10, tenant_id=tenant, now=after_lease))
    await started.wait()
    release.set()
    assert await running == 1
    assert await taking_over == 1
    assert runs == [(job_id, 1), (job_id, 2)]
    [job] = await jobs(database, tenant)
    # The first worker's late failure was not recorded over the second worker's success.
    assert job["done_at"] is not None
    assert (job["locked_by"], job["attempts"], job["last_error"]) == ("second", 2, None)


async def test_a_last_attempt_that_never_finished_is_failed_not_rerun(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    calls: list[int] = []

    async def handler(_: Database, job: Job) -> None:
        calls.append(job.attempt)

    registry = registry_of(job_kind, handler)
    await put(database, job_kind, tenant, max_attempts=1)
    crashed = Worker(database, registry, name="crashed")
    assert len(await crashed.claim(10, tenant_id=tenant)) == 1  # ... and the process died here
    later = datetime.now(UTC) + crashed.lease + timedelta(seconds=1)
    assert await run_due(database, registry, tenant_id=tenant, now=later) == 1
    [job] = await jobs(database, tenant)
    assert calls == []
    assert job["failed_at"] is not None
    assert "lease ran out" in job["last_error"]


async def test_a_worker_only_takes_kinds_it_knows(factory: Factory, database: Database) -> None:
    tenant, known, unknown = await factory.tenant(), kind(), kind()

    async def handler(_: Database, job: Job) -> None:
        pass

    await put(database, unknown, tenant)
    assert await run_due(database, registry_of(known, handler), tenant_id=tenant) == 0
    [job] = await jobs(database, tenant)
    assert (job["attempts"], job["done_at"], job["failed_at"]) == (0, None, None)  # waits for a worker that knows it
    assert await run_due(database, registry_of(unknown, handler), tenant_id=tenant) == 1


async def test_run_forever_runs_jobs_and_stops_gracefully(factory: Factory, database: Database) -> None:
    tenant, job_kind = await factory.tenant(), kind()
    ran = asyncio.Event()

    async def handler(_: Database, job: Job) -> None:
        ran.set()

    worker = Worker(database, registry_of(job_kind, handler), poll_interval_s=0.05)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run_forever(stop))
    await put(database, job_kind, tenant)  # queued while the worker is already waiting
    await ran.wait()
    stop.set()
    await loop
    [job] = await jobs(database, tenant)
    assert job["done_at"] is not None  # the job in hand was finished and recorded before the worker stopped


async def test_enqueue_refuses_nonsense(factory: Factory, database: Database) -> None:
    async with database.sessions() as session:
        with pytest.raises(ValueError, match="max_attempts"):
            await enqueue(session, kind(), {}, max_attempts=0)
        with pytest.raises(ValueError, match="kind"):
            await enqueue(session, "", {})


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    assert [backoff(n, rand=lambda: 1.0).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert [backoff(n, rand=lambda: 0.0).total_seconds() for n in (1, 2)] == [5, 10]
    assert backoff(30, rand=lambda: 1.0) == timedelta(hours=1)

"""The worker: claims due jobs, runs their handlers, and records the outcome (done, retry later, or failed).

Each step is its own short transaction: claiming (`FOR UPDATE SKIP LOCKED`, then a lease in `locked_until`) and
recording the outcome. No transaction stays open while a handler talks to the outside world, because an open
writing transaction holds every sync cursor back (ARCHITECTURE.md, Sync). A worker that dies mid-job loses nothing:
when its lease ends the job is due again and another worker takes it.

Times come from the database's clock, so workers on many machines agree on what is due; tests pin `now` instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, DateTime, func, literal, or_, select, update
from sqlalchemy.exc import DBAPIError

from backend.db.engine import Database
from backend.queue.models import BackgroundJob
from backend.queue.scheduler import Periodic, Scheduler
from backend.queue.service import Handler, Job, PermanentFailure, Registry, RetryLater
from backend.settings import Settings

log = logging.getLogger("groundwork.queue")

BACKOFF_BASE_S = 10.0
BACKOFF_CAP_S = 3600.0
_ERROR_LIMIT = 4000  # characters of a failure kept in last_error


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after failed attempt `attempt`: 10 s, 20 s, 40 s ... capped at an hour, each cut to a random 50-100%.
    The jitter spreads out the jobs that failed together (APNs down), so they do not all come back at once."""
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(attempt - 1, 20))
    return timedelta(seconds=delay * (0.5 + rand() / 2))


def _clock(now: datetime | None) -> ColumnElement[datetime]:
    return literal(now, DateTime(timezone=True)) if now is not None else func.now()


class Worker:
    """Runs the jobs of the kinds in `registry`. `lease` is how long a claimed job stays ours; a handler gets half
    of it, so a handler that hangs is cut off while no other worker can have started the same job."""

    def __init__(
        self,
        database: Database,
        registry: Registry,
        *,
        name: str | None = None,
        concurrency: int = 8,
        lease: timedelta = timedelta(minutes=2),
        poll_interval_s: float = 1.0,
    ) -> None:
        self.database = database
        self.registry = registry
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval_s = poll_interval_s

    async def claim(self, limit: int, *, now: datetime | None = None, tenant_id: UUID | None = None) -> list[Job]:
        """Take up to `limit` due jobs: lock them (skipping rows another worker is claiming right now), count the
        attempt and set our lease, in one short transaction."""
        kinds = self.registry.kinds
        if limit < 1 or not kinds:
            return []
        at = _clock(now)
        due = select(BackgroundJob.id).where(
            BackgroundJob.done_at.is_(None),
            BackgroundJob.failed_at.is_(None),
            BackgroundJob.run_at <= at,
            or_(BackgroundJob.locked_until.is_(None), BackgroundJob.locked_until <= at),
            BackgroundJob.kind.in_(kinds),
        )
        if tenant_id is not None:
            due = due.where(BackgroundJob.tenant_id == tenant_id)
        picked = due.order_by(BackgroundJob.run_at, BackgroundJob.id).limit(limit).with_for_update(skip_locked=True)
        picked_cte = picked.cte("due")
        statement = (
            update(BackgroundJob)
            .where(BackgroundJob.id == picked_cte.c.id)
            .values(attempts=BackgroundJob.attempts + 1, locked_until=at + self.lease, locked_by=self.name)
            .returning(
                BackgroundJob.id,
                BackgroundJob.kind,
                BackgroundJob.payload,
                BackgroundJob.tenant_id,
                BackgroundJob.attempts,
                BackgroundJob.max_attempts,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.database.sessions() as session:
            rows = (await session.execute(statement)).all()
            await session.commit()
        jobs = [Job(r.id, r.kind, r.payload, r.tenant_id, r.attempts, r.max_attempts) for r in rows]
        return sorted(jobs, key=lambda job: job.id)

    async def run_due(self, limit: int, *, now: datetime | None = None, tenant_id: UUID | None = None) -> int:
        """Claim up to `limit` due jobs, run them concurrently and record each outcome. Returns how many ran.
        `now` pins the clock (tests); `tenant_id` limits the run to one tenant's jobs (tests, one-off drains)."""
        jobs = await self.claim(limit, now=now, tenant_id=tenant_id)
        outcomes = await asyncio.gather(*(self._run(job, now) for job in jobs), return_exceptions=True)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Recording the outcome failed (the database went away): the job runs again when its lease ends.
                log.error("job %d (%s): could not record its outcome: %r", job.id, job.kind, outcome)
        return len(jobs)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run jobs until `stop` is set. A stop lets the jobs in hand finish; it never abandons them mid-run."""
        log.info("worker %s running kinds %s", self.name, ", ".join(self.registry.kinds))
        failures = 0
        while not stop.is_set():
            pause = self.poll_interval_s
            try:
                ran = await self.run_due(self.concurrency)
                failures = 0
            except (OSError, DBAPIError) as exc:
                # The database is down, or not migrated: keep the worker alive, and wait longer each time.
                failures += 1
                pause = min(30.0, self.poll_interval_s * 2**failures)
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                log.warning("worker %s: the database failed (%s); trying again in %.0f s", self.name, cause, pause)
                ran = 0
            if ran < self.concurrency:  # a full batch means more may be waiting: go again at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        log.info("worker %s stopped", self.name)

    async def _run(self, job: Job, now: datetime | None) -> None:
        if job.attempt > job.max_attempts:
            # The previous holder of the last attempt died or hung past its lease: do not start it yet again.
            await self._record(job, now, failed=True, error="the last attempt never finished (its lease ran out)")
            return
        handler = self.registry.handler(job.kind)
        timeout_s = self.lease.total_seconds() / 2
        try:
            async with asyncio.timeout(timeout_s):
                await handler(self.database, job)
        except PermanentFailure as exc:
            log.warning("job %d (%s) failed for good: %s", job.id, job.kind, exc)
            await self._record(job, now, failed=True, error=_describe(exc))
        except RetryLater as exc:
            log.warning("job %d (%s) attempt %d/%d: %s", job.id, job.kind, job.attempt, job.max_attempts, exc)
            await self._record(job, now, failed=job.attempt >= job.max_attempts, error=_describe(exc))
        except TimeoutError:
            log.warning("job %d (%s) attempt %d timed out after %.0f s", job.id, job.kind, job.attempt, timeout_s)
            error = f"timed out after {timeout_s:.0f} s"
            await self._record(job, now, failed=job.attempt >= job.max_attempts, error=error)
        except Exception as exc:
            # The queue's boundary: any other error is a bug or an outage we did not foresee. It must not stop the
            # worker or lose the job, so it is logged with its traceback, kept in last_error and retried.
            log.exception("job %d (%s) attempt %d/%d raised", job.id, job.kind, job.attempt, job.max_attempts)
            await self._record(job, now, failed=job.attempt >= job.max_attempts, error=_describe(exc, trace=True))
        else:
            await self._record(job, now)

    async def _record(self, job: Job, now: datetime | None, *, failed: bool = False, error: str | None = None) -> None:
        at = _clock(now)
        values: dict[str, Any] = {"locked_until": None}
        if error is None:
            values["done_at"] = at
        else:
            values["last_error"] = error[-_ERROR_LIMIT:]
            if failed:
                values["failed_at"] = at
            else:
                values["run_at"] = at + backoff(job.attempt)
        # Only the holder of this very attempt may record it: a worker that overran its lease and lost the job to
        # another one must not overwrite that one's outcome.
        statement = (
            update(BackgroundJob)
            .where(
                BackgroundJob.id == job.id,
                BackgroundJob.locked_by == self.name,
                BackgroundJob.attempts == job.attempt,
                BackgroundJob.done_at.is_(None),
                BackgroundJob.failed_at.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self.database.sessions() as session:
            result = await session.execute(statement)
            await session.commit()
        if result.rowcount == 0:  # type: ignore[attr-defined]
            log.warning("job %d (%s): lease lost before attempt %d finished", job.id, job.kind, job.attempt)


def _describe(exc: BaseException, *, trace: bool = False) -> str:
    if trace:
        return "".join(traceback.format_exception(exc)).strip()
    return f"{type(exc).__name__}: {exc}"


async def run_due(
    database: Database,
    registry: Registry,
    *,
    limit: int = 100,
    now: datetime | None = None,
    tenant_id: UUID | None = None,
    worker_name: str | None = None,
) -> int:
    """Run, once, the jobs due now (or at `now`): what a test or a one-off command needs. Returns how many ran."""
    worker = Worker(database, registry, name=worker_name)
    return await worker.run_due(limit, now=now, tenant_id=tenant_id)


# A domain's queue handlers, for as long as a worker runs (they may hold clients to close): its tasks.py's
# `handlers(settings)`, listed in backend/app.py.
HandlerProvider = Callable[[Settings], AbstractAsyncContextManager[dict[str, Handler]]]


async def serve(
    settings: Settings,
    *,
    handlers: Sequence[HandlerProvider],
    periodic: Sequence[Periodic],
    concurrency: int = 8,
) -> None:
    """`groundwork worker`: run every kind of job the domains handle, and their periodic work, until SIGINT or
    SIGTERM. Both loops stop on the same signal, each after finishing what it has in hand."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    database = await Database.connect(settings)
    registry = Registry()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with contextlib.AsyncExitStack() as resources:
            for provide in handlers:
                for kind, handler in (await resources.enter_async_context(provide(settings))).items():
                    registry.register(kind, handler)
            worker = Worker(database, registry, concurrency=concurrency)
            scheduler = Scheduler(database, list(periodic), name=worker.name, poll_interval_s=settings.scheduler_poll_s)
            # If either loop dies of a bug, the group cancels the other and the process exits: its supervisor
            # restarts it, and nothing is lost (an unfinished job or periodic run is due again when its lease ends).
            async with asyncio.TaskGroup() as group:
                group.create_task(worker.run_forever(stop))
                group.create_task(scheduler.run_forever(stop))
    finally:
        await database.close()

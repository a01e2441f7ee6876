"""Periodic work: what a domain declares, and the scheduler in `groundwork worker` that runs it.

A domain declares its periodic work in its own `tasks.py` as `PERIODIC: list[Periodic]`; backend/app.py
collects those lists in one place. Every worker process runs a scheduler, and any number of them, on any number
of machines, start each task at most once per period: the state lives in PostgreSQL (`scheduled_runs`, one row
per task), and a worker starts a task only after it has moved the task's `last_started_at` to now in one atomic
statement that succeeds only when the previous start is at least a period old and no other worker holds a live
lease on it. PostgreSQL's row lock makes two such statements at the same moment take turns, and the second one
then sees the first one's start and fails its condition. Times come from the database's clock (workers on many
machines agree on what is due); tests pin `now` instead of sleeping.

A task opens its own short sessions on the `Database` it is given: the scheduler holds no transaction open while a
task runs, because an open writing transaction holds every sync cursor back (ARCHITECTURE.md, Sync). Its lease
covers twice its timeout, and the run is cut off at the timeout, so a run that is still going cannot be started a
second time; a worker that dies mid-run leaves the lease to run out, and the task is due again. So a task must be
safe to run twice, and it is: every one does work that is still to be done, whoever did the rest.

A task that fails is recorded as failed (its error kept, its traceback in the log) and is tried again a period
later; it never stops the scheduler or the other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import uuid4

from sqlalchemy import ColumnElement, DateTime, and_, func, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from backend.db.engine import Database
from backend.queue.models import ScheduledRun

log = logging.getLogger("groundwork.scheduler")

_ERROR_LIMIT = 4000  # characters of a failure kept in last_error

# The task's own work, at the clock's `now`: it opens its own sessions on the database, commits in short
# transactions, and returns a short JSON summary for the record ({"collected": 12}), or None.
PeriodicRun = Callable[[Database, datetime], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    """One periodic task. `name` is "<domain>.<what>" and is the task's identity in `scheduled_runs`: renaming it
    starts a new record. `every` is the least time between two starts; `timeout` cuts off a run that hangs."""

    name: str
    every: timedelta
    run: PeriodicRun
    timeout: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a periodic task needs a name")
        if self.every <= timedelta(0):
            raise ValueError(f"{self.name}: `every` must be positive")
        if self.timeout <= timedelta(0):
            raise ValueError(f"{self.name}: `timeout` must be positive")

    @property
    def lease(self) -> timedelta:
        return self.timeout * 2


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this worker has started: only the holder of this very start may record its outcome."""

    periodic: Periodic
    started_at: datetime
    run_number: int


Status = Literal["running", "ok", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    status: Status
    started_at: datetime
    result: dict[str, Any] | None = None
    error: str | None = None
    recorded: bool = True  # False when the lease ran out before the run finished and someone else took over


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task as `groundwork schedule status` shows it."""

    name: str
    every: timedelta | None  # None for a record whose task is no longer declared
    declared: bool
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_result: dict[str, Any] | None
    last_error: str | None
    last_worker: str | None
    lease_until: datetime | None
    runs: int
    next_due: datetime | None  # None: due now (never run) or not declared


class AlreadyRunning(Exception):
    """`run_now` found the task running under another worker's live lease."""

    def __init__(self, name: str, worker: str | None, started_at: datetime | None, lease_until: datetime | None):
        self.name, self.worker, self.started_at, self.lease_until = name, worker, started_at, lease_until
        super().__init__(f"{name} is running on worker {worker} since {started_at} (its lease ends {lease_until})")


def _finished(running: set[asyncio.Task[Outcome]]) -> Callable[[asyncio.Task[Outcome]], None]:
    def done(task: asyncio.Task[Outcome]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Recording the outcome failed (the database went away): the task runs again when its lease ends.
            log.error("%s: could not record its outcome: %r", task.get_name(), task.exception())

    return done


def _clock(now: datetime | None) -> ColumnElement[datetime]:
    return literal(now, DateTime(timezone=True)) if now is not None else func.now()


class Scheduler:
    """Runs the `periodics` when they are due. Make one per worker process; give each a distinct `name`."""

    def __init__(
        self,
        database: Database,
        periodics: Sequence[Periodic],
        *,
        name: str | None = None,
        poll_interval_s: float = 15.0,
    ) -> None:
        names = [p.name for p in periodics]
        if len(set(names)) != len(names):
            raise ValueError(f"periodic task names must be unique: {sorted(names)}")
        self.database = database
        # Sorted, so that every worker's claim locks the rows in the same order and two claims never deadlock.
        self.periodics = sorted(periodics, key=lambda p: p.name)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
        self.poll_interval_s = poll_interval_s

    def periodic(self, name: str) -> Periodic:
        for periodic in self.periodics:
            if periodic.name == name:
                return periodic
        raise KeyError(name)

    async def claim(
        self, *, now: datetime | None = None, only: Sequence[str] | None = None, force: bool = False
    ) -> list[Claim]:
        """Start the due tasks (or the ones in `only`): one statement, one short transaction, whatever the number
        of tasks. A task's row is created by its first claim. `force` ignores the period but never a live lease."""
        periodics = [p for p in self.periodics if only is None or p.name in only]
        if not periodics:
            return []
        at = _clock(now)
        rows = [
            {
                "name": p.name,
                "every": p.every,
                "last_started_at": at,
                "last_status": "running",
                "last_worker": self.name,
                "lease_until": at + p.lease,
                "runs": 1,
            }
            for p in periodics
        ]
        values = insert(ScheduledRun).values(rows)
        new = values.excluded
        not_held = or_(
            ScheduledRun.last_status.is_distinct_from("running"), ScheduledRun.lease_until <= new.last_started_at
        )
        due = or_(
            ScheduledRun.last_started_at.is_(None), ScheduledRun.last_started_at <= new.last_started_at - new.every
        )
        statement = values.on_conflict_do_update(
            index_elements=[ScheduledRun.name],
            set_={
                "every": new.every,
                "last_started_at": new.last_started_at,
                "last_status": new.last_status,
                "last_worker": new.last_worker,
                "lease_until": new.lease_until,
                "runs": ScheduledRun.runs + 1,
            },
            where=not_held if force else and_(not_held, due),
        ).returning(ScheduledRun.name, ScheduledRun.last_started_at, ScheduledRun.runs)
        async with self.database.sessions() as session:
            claimed = (await session.execute(statement)).all()
            await session.commit()
        by_name = {p.name: p for p in periodics}
        return [Claim(by_name[row.name], row.last_started_at, row.runs) for row in claimed]

    async def tick(self, *, now: datetime | None = None) -> list[Outcome]:
        """Start every due task, run them side by side and record each outcome. Returns what ran."""
        claims = await self.claim(now=now)
        return list(await asyncio.gather(*(self.run(claim, now) for claim in claims)))

    async def run_now(self, name: str, *, now: datetime | None = None) -> Outcome:
        """Run one task now, whatever its period (`groundwork schedule run`), recorded like any other run. Raises
        KeyError for an unknown name and AlreadyRunning when another worker holds the task's lease."""
        self.periodic(name)
        claims = await self.claim(now=now, only=[name], force=True)
        if not claims:
            async with self.database.sessions() as session:
                row = await session.get(ScheduledRun, name)
            raise AlreadyRunning(
                name,
                row.last_worker if row else None,
                row.last_started_at if row else None,
                row.lease_until if row else None,
            )
        return await self.run(claims[0], now)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set. Runs go on in the background, so a long one never delays the others' ticks
        (its lease keeps it from being claimed again meanwhile). A stop lets the runs in hand finish; it never
        abandons one mid-run."""
        log.info("scheduler %s running %s", self.name, ", ".join(f"{p.name} every {p.every}" for p in self.periodics))
        running: set[asyncio.Task[Outcome]] = set()
        failures = 0
        while not stop.is_set():
            pause = self.poll_interval_s
            try:
                for claim in await self.claim():
                    task = asyncio.create_task(self.run(claim), name=f"periodic {claim.periodic.name}")
                    running.add(task)
                    task.add_done_callback(_finished(running))
                failures = 0
            except (OSError, DBAPIError) as exc:
                # The database is down, or not migrated: keep the scheduler alive, and wait longer each time.
                failures += 1
                pause = min(60.0, self.poll_interval_s * 2**failures)
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                log.warning("scheduler %s: the database failed (%s); trying again in %.0f s", self.name, cause, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        if running:
            log.info("scheduler %s: waiting for %d run(s) in hand", self.name, len(running))
            await asyncio.gather(*running, return_exceptions=True)
        log.info("scheduler %s stopped", self.name)

    async def run(self, claim: Claim, now: datetime | None = None) -> Outcome:
        """Run a claimed task and record its outcome (unless the claim was lost: `recorded` is then False)."""
        periodic = claim.periodic
        # The task's clock: the pinned one, or the database's at the claim (so every machine's tasks agree).
        clock = now or claim.started_at
        timeout_s = periodic.timeout.total_seconds()
        log.info("%s: run %d started by %s", periodic.name, claim.run_number, self.name)
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(timeout_s):
                result = await periodic.run(self.database, clock)
            if result is not None:
                json.dumps(result)  # the record is JSON: refuse a summary that is not, as the task's fault
        except TimeoutError:
            log.error("%s: run %d timed out after %.0f s", periodic.name, claim.run_number, timeout_s)
            error = f"timed out after {timeout_s:.0f} s"
        except Exception as exc:
            # The scheduler's boundary: a failing task is a bug or an outage we did not foresee. It must not stop
            # the scheduler or the other tasks, so it is logged with its traceback, recorded, and tried next period.
            log.exception("%s: run %d failed", periodic.name, claim.run_number)
            error = "".join(traceback.format_exception_only(exc)).strip()
        status: Status = "failed" if error is not None else "ok"
        if error is None:
            log.info("%s: run %d ok: %s", periodic.name, claim.run_number, result)
        recorded = await self._record(claim, now, status, result if error is None else None, error)
        return Outcome(periodic.name, status, claim.started_at, result, error, recorded)

    async def _record(
        self, claim: Claim, now: datetime | None, status: Status, result: dict[str, Any] | None, error: str | None
    ) -> bool:
        # Only the holder of this very start may record it: a run that overran its lease and lost the task to another
        # worker must not overwrite that one's state.
        statement = (
            update(ScheduledRun)
            .where(
                ScheduledRun.name == claim.periodic.name,
                ScheduledRun.last_worker == self.name,
                ScheduledRun.last_started_at == claim.started_at,
                ScheduledRun.last_status == "running",
            )
            .values(
                last_finished_at=_clock(now),
                last_status=status,
                last_result=null() if result is None else result,  # SQL NULL, not JSON null
                last_error=None if error is None else error[-_ERROR_LIMIT:],
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.database.sessions() as session:
            updated = await session.execute(statement)
            await session.commit()
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            log.warning("%s: lease lost before run %d finished", claim.periodic.name, claim.run_number)
            return False
        return True


async def status(database: Database, periodics: Sequence[Periodic]) -> tuple[datetime, list[TaskStatus]]:
    """The database's clock, and every declared task with its latest run, then any recorded task that is no longer
    declared."""
    async with database.sessions() as session:
        now = (await session.execute(select(func.now()))).scalar_one()
        rows = {row.name: row for row in await session.scalars(select(ScheduledRun))}
    answer = []
    for periodic in sorted(periodics, key=lambda p: p.name):
        row = rows.pop(periodic.name, None)
        answer.append(_status(periodic.name, periodic.every, row))
    answer.extend(_status(name, None, row) for name, row in sorted(rows.items()))
    return now, answer


def _status(name: str, every: timedelta | None, row: ScheduledRun | None) -> TaskStatus:
    next_due = None
    if every is not None and row is not None and row.last_started_at is not None:
        next_due = row.last_started_at + every
        if row.last_status == "running" and row.lease_until is not None:
            next_due = max(next_due, row.lease_until)
    return TaskStatus(
        name=name,
        every=every,
        declared=every is not None,
        last_started_at=row.last_started_at if row else None,
        last_finished_at=row.last_finished_at if row else None,
        last_status=row.last_status if row else None,
        last_result=row.last_result if row else None,
        last_error=row.last_error if row else None,
        last_worker=row.last_worker if row else None,
        lease_until=row.lease_until if row else None,
        runs=row.runs if row else 0,
        next_due=next_due,
    )


def render_status(now: datetime, tasks: Sequence[TaskStatus], poll_interval_s: float) -> list[str]:
    """`groundwork schedule status`, a few lines per task, in the database's clock (UTC)."""
    lines = [f"{len(tasks)} periodic tasks; times in UTC by the database's clock, now {_time(now)}"]
    for task in tasks:
        every = f"every {_span(task.every)}" if task.every is not None else "no longer declared by any domain"
        lines.append("")
        lines.append(f"{task.name}  ({every}, {task.runs} run{'' if task.runs == 1 else 's'})")
        if task.last_started_at is None:
            lines.append(
                f"  never run: due now; a running `groundwork worker` starts it within {poll_interval_s:.0f} s"
            )
            continue
        if task.last_status == "running":
            lease = task.lease_until
            if lease is not None and lease <= now:
                lines.append(
                    f"  running    since {_time(task.last_started_at)} on {task.last_worker}, but its lease ran out at "
                    f"{_time(lease)}: that worker probably died; the task runs again when due"
                )
            else:
                lines.append(
                    f"  running    since {_time(task.last_started_at)} on {task.last_worker} "
                    f"(no other worker starts it before {_time(lease) if lease else '?'})"
                )
            if task.last_finished_at is not None:
                lines.append(f"  previous   finished {_time(task.last_finished_at)}")
        else:
            took = ""
            if task.last_finished_at is not None:
                took = f", took {(task.last_finished_at - task.last_started_at).total_seconds():.1f} s"
            lines.append(
                f"  last run   {task.last_status}: started {_time(task.last_started_at)}, finished "
                f"{_time(task.last_finished_at) if task.last_finished_at else '?'}{took}, on {task.last_worker}"
            )
            if task.last_status == "ok":
                lines.append(f"  result     {json.dumps(task.last_result, sort_keys=True)}")
            if task.last_error is not None:
                lines.append(f"  error      {task.last_error.strip().splitlines()[-1]}")
                lines.append(
                    f"             (the traceback is in that worker's log; after a fix, "
                    f"`groundwork schedule run {task.name}` runs it at once)"
                )
        if task.next_due is not None:
            when = "now" if task.next_due <= now else f"in {_span(task.next_due - now)}"
            lines.append(f"  next due   {_time(task.next_due)} ({when})")
    return lines


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"
    return f"{seconds // 86400} days"
